// Whole inspections per second through the service's own path on PGlite: GraphQL multipart
// submitInspection (decode, validation, the QUEUED row and its blobs) -> the in-process processor (decode,
// built-in scoring when the product has no uploaded maps, segment, mask PNG, results stored) -> SUCCEEDED.
// Two products: one with uploaded score maps (default options), one with the built-in scorer (a memory bank
// from nominal images). Each round submits `count` inspections at once and times until all are done.
//
//   npx tsx bench/inspection.ts [--size 256] [--count 20] [--rounds 3] [--concurrency 2] [--skip builtin]
//                               [--set key=value ...]   (product options, e.g. compute.stages=gpu)

import { parseArgs } from 'node:util';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { openDatabase } from '../src/db.ts';
import { encodeImagePng } from '../src/io/image.ts';
import { encodeNpy } from '../src/io/npy.ts';
import { migrate } from '../src/migrate.ts';
import { registerMobileNet } from '../src/models/mobilenet.ts';
import { registerResnet50 } from '../src/models/resnet50.ts';
import { createInProcessProcessor } from '../src/processing/processor.ts';
import { jobLimits } from '../src/processing/start.ts';
import { defaultConfig } from '../src/service/config.ts';
import { createInspectionEvents } from '../src/service/events.ts';
import { memoryLogger } from '../src/service/log.ts';
import { createApp, type App } from '../src/server/yoga.ts';
import { createApiKey } from '../src/service/keys.ts';
import { syntheticSample } from '../src/synthetic.ts';
import { median } from '../src/cli/benchmarks/ttt.ts';

const ORIGIN = 'http://bench.local';

const CREATE = `mutation($input: CreateProductInput!) { createProduct(input: $input) {
  __typename ... on CreateProductSuccess { product { id } } ... on Error { code message } } }`;
const ADD = `mutation($id: ID!, $images: [File!]) { addNominalSamples(productId: $id, images: $images) {
  __typename ... on Error { code message } } }`;
const SUBMIT = `mutation($input: SubmitInspectionInput!) { submitInspection(input: $input) {
  __typename ... on SubmitInspectionSuccess { inspection { id } } ... on Error { code message } } }`;

interface Request {
  gql(query: string, variables: Record<string, unknown>): Promise<any>;
  upload(query: string, variables: Record<string, unknown>, files: Record<string, File | File[]>): Promise<any>;
}

function client(app: App, secret: string): Request {
  const headers = { authorization: `Bearer ${secret}`, accept: 'application/json' };
  const post = async (body: BodyInit, extra: Record<string, string> = {}) => {
    const res = await app.yoga.fetch(`${ORIGIN}/graphql`, { method: 'POST', body, headers: { ...headers, ...extra } });
    const json = (await res.json()) as { data?: any; errors?: unknown };
    if (json.errors) throw new Error(JSON.stringify(json.errors));
    return json.data;
  };
  return {
    gql: (query, variables) => post(JSON.stringify({ query, variables }), { 'content-type': 'application/json' }),
    upload(query, variables, files) {
      const form = new FormData();
      const map: Record<string, string[]> = {};
      const list: File[] = [];
      for (const [path, f] of Object.entries(files)) {
        for (const [k, file] of (Array.isArray(f) ? f : [f]).entries()) {
          map[String(list.length)] = [Array.isArray(f) ? `variables.${path}.${k}` : `variables.${path}`];
          list.push(file);
        }
      }
      form.set('operations', JSON.stringify({ query, variables }));
      form.set('map', JSON.stringify(map));
      list.forEach((file, k) => form.set(String(k), file));
      return post(form);
    },
  };
}

export interface InspectionBench {
  mode: 'uploaded' | 'builtin';
  size: number;
  count: number;
  /** Inspections per second per round (submit of the first to completion of the last). */
  rates: number[];
  /** Median milliseconds per stage over all timed inspections; `store`: total minus the timed stages. */
  stageMs: Record<string, number>;
  placement: Record<string, string>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '256' },
      count: { type: 'string', default: '20' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '2' },
      skip: { type: 'string', default: '' },
      set: { type: 'string', multiple: true, default: [] },
    },
  });
  const size = Number(values.size);
  const count = Number(values.count);
  const rounds = Number(values.rounds);
  const options = values.set.map((a) => {
    const eq = a.indexOf('=');
    return { key: a.slice(0, eq), value: a.slice(eq + 1) };
  });
  registerMobileNet();
  registerResnet50(); // the built-in scorer's default network, as src/server/main.ts registers it
  const db = await openDatabase({ dataDir: 'memory://' });
  await migrate(db);
  const events = createInspectionEvents();
  const logger = memoryLogger();
  const config = defaultConfig({});
  const processor = createInProcessProcessor({ db: db.prisma, events, logger, concurrency: Number(values.concurrency), limits: jobLimits(config) });
  const app = createApp({ db: db.prisma, processor, events, config, logger });
  const { secret } = await createApiKey(db.prisma, { role: 'ADMIN', productIds: [], name: 'bench' });
  const c = client(app, secret);
  const samples = Array.from({ length: 8 }, (_, k) => syntheticSample({ width: size, height: size, seed: 100 + k, defects: 2 + (k % 3) }));
  const pngs = await Promise.all(samples.map((s) => encodeImagePng(s.image)));
  const maps = samples.map((s) => encodeNpy(s.scoreMap.data, [size, size]));
  const file = (bytes: Uint8Array, name: string) => new File([new Uint8Array(bytes)], name);

  const results: InspectionBench[] = [];
  for (const mode of ['uploaded', 'builtin'] as const) {
    if (values.skip.split(',').includes(mode)) continue;
    const created = await c.gql(CREATE, { input: { name: `bench-${mode}`, options, ...(mode === 'builtin' && { scorer: 'BUILTIN' }) } });
    if (created.createProduct.__typename !== 'CreateProductSuccess') throw new Error(JSON.stringify(created));
    const productId = created.createProduct.product.id;
    if (mode === 'builtin') {
      const nominal = await Promise.all(Array.from({ length: 6 }, (_, k) => encodeImagePng(syntheticSample({ width: size, height: size, seed: 500 + k, defects: 0 }).image)));
      const added = await c.upload(ADD, { id: productId, images: nominal.map(() => null) }, { images: nominal.map((p, k) => file(p, `nominal-${k}.png`)) });
      if (added.addNominalSamples.__typename !== 'AddNominalSamplesSuccess') throw new Error(JSON.stringify(added));
    }
    const submit = async (k: number) => {
      const files: Record<string, File> = { 'input.image': file(pngs[k % pngs.length], 'part.png') };
      if (mode === 'uploaded') files['input.scoreMap'] = file(maps[k % maps.length], 'part.npy');
      const r = await c.upload(SUBMIT, { input: { productId, image: null, ...(mode === 'uploaded' && { scoreMap: null }) } }, files);
      if (r.submitInspection.__typename !== 'SubmitInspectionSuccess') throw new Error(JSON.stringify(r));
      return decodeGlobalID(r.submitInspection.inspection.id as string).id;
    };
    // Warm-up: pipeline compilation, the scorer's bank, the JIT.
    for (let k = 0; k < 3; k++) await submit(k);
    await processor.drain();
    const rates: number[] = [];
    const ids: string[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      // Two submitters at a time: the server admits at most MAX_CONCURRENT_UPLOADS (2 or more) uploads at
      // once and answers the rest 429 BUSY; processing runs behind the submissions as they are queued.
      let next = 0;
      const submitter = async () => {
        while (next < count) ids.push(await submit(next++));
      };
      await Promise.all([submitter(), submitter()]);
      await processor.drain();
      rates.push((count * 1000) / (performance.now() - t0));
    }
    const rows = await db.prisma.inspection.findMany({ where: { id: { in: ids } }, select: { status: true, stageMs: true, totalMs: true } });
    const failed = rows.filter((x) => x.status !== 'SUCCEEDED');
    if (failed.length) throw new Error(`${failed.length} inspections did not succeed`);
    const perStage: Record<string, number[]> = {};
    let placement: Record<string, string> = {};
    for (const row of rows) {
      const stored = row.stageMs as Record<string, unknown>;
      placement = (stored.placement ?? {}) as Record<string, string>;
      let sum = 0;
      for (const [stage, ms] of Object.entries(stored)) {
        if (typeof ms !== 'number') continue;
        (perStage[stage] ??= []).push(ms);
        sum += ms;
      }
      (perStage.store ??= []).push(row.totalMs! - sum);
    }
    const stageMs = Object.fromEntries(Object.entries(perStage).map(([k, v]) => [k, median(v)]));
    results.push({ mode, size, count, rates, stageMs, placement });
  }
  await processor.close();
  await db.close();
  for (const r of results) {
    const stages = Object.entries(r.stageMs)
      .map(([k, v]) => `${k} ${v.toFixed(1)}${r.placement[k] ? ` (${r.placement[k]})` : ''}`)
      .join(', ');
    console.log(`${r.mode} maps, ${r.size}x${r.size}, ${r.count} inspections per round: ${r.rates.map((x) => x.toFixed(2)).join(' / ')} inspections/s (median ${median(r.rates).toFixed(2)})`);
    console.log(`  median ms per inspection: ${stages}`);
  }
}

await main();
