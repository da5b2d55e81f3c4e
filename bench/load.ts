// Load figures of the durable queue: one server (EMBEDDED_WORKER=false) and W worker processes on a fresh
// PostgreSQL database (created next to DATABASE_URL's, dropped afterwards); S simulated stations on
// loopback each submit a 256x256 sample (image PNG + score map .npy) through GraphQL multipart, wait for
// its completion, and submit the next, for the given duration (closed loop: the workers stay saturated
// while the backlog stays bounded). Reports sustained inspections/s, p50/p99 submit -> completion latency
// (seen by the station), the queue depth (QUEUED + RUNNING) sampled every second, and submitted vs
// completed (every submission must complete SUCCEEDED).
// Usage: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test npx tsx bench/load.ts [--workers 1,2] [--seconds 60] [--stations 4] [--size 256]

import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { encodeImagePng } from '../src/io/image.ts';
import { encodeNpy } from '../src/io/npy.ts';
import { syntheticSample } from '../src/synthetic.ts';
import { ROOT, TSX, freePort, startProcess as start } from '../test/helpers/processes.ts';

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2' },
    seconds: { type: 'string', default: '60' },
    stations: { type: 'string', default: '4' },
    size: { type: 'string', default: '256' },
  },
});
const BASE = process.env.DATABASE_URL;
if (!BASE) throw new Error('bench/load.ts needs DATABASE_URL (a PostgreSQL server; a fresh database is created next to it)');
const SECONDS = Number(args.seconds);
const STATIONS = Number(args.stations);
const SIZE = Number(args.size);

const SUBMIT = `mutation($input: SubmitInspectionInput!) { submitInspection(input: $input) {
  __typename ... on SubmitInspectionSuccess { inspection { id status } } ... on Error { code message } } }`;
const STATUS = 'query($id: ID!) { inspection(id: $id) { status } }';

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function samples(n: number): Promise<{ png: Uint8Array; npy: Uint8Array }[]> {
  const out = [];
  for (let k = 0; k < n; k++) {
    const s = syntheticSample({ width: SIZE, height: SIZE, seed: 1000 + k });
    out.push({ png: await encodeImagePng(s.image), npy: encodeNpy(s.scoreMap.data, [s.image.height, s.image.width]) });
  }
  return out;
}

async function run(workers: number, files: { png: Uint8Array; npy: Uint8Array }[]) {
  const name = `ttt_load_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: BASE });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(BASE!);
  u.pathname = `/${name}`;
  const url = u.toString();
  const port = await freePort();
  const env = {
    DATABASE_URL: url,
    PORT: String(port),
    EMBEDDED_WORKER: 'false',
    LOG_LEVEL: 'warn',
    MAX_QUEUE_DEPTH: '100000',
    RATE_LIMIT_PER_MINUTE: '1000000000',
    RATE_LIMIT_BURST: '1000000000',
  };
  // The first admin key, as an operator makes it (`ttt keys create`; it applies the migrations first).
  const secret = execFileSync(TSX, ['src/cli/main.ts', 'keys', 'create', '--role', 'admin', '--name', 'load bench'], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' }).trim();
  const server = start('src/server/main.ts', { ...env, LOG_LEVEL: 'info' });
  for (let t = Date.now(); !server.output.join('').includes('"listening"'); ) {
    if (Date.now() - t > 60_000) throw new Error(`server did not start: ${server.output.join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const procs = [server, ...Array.from({ length: workers }, () => start('src/worker/main.ts', { ...env, LOG_LEVEL: 'info' }))];
  for (let t = Date.now(); !procs.slice(1).every((p) => p.output.join('').includes('"worker ready"')); ) {
    if (Date.now() - t > 60_000) throw new Error(`workers did not start: ${procs.map((p) => p.output.join('')).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const endpoint = `http://127.0.0.1:${port}/graphql`;
  const gql = async (body: BodyInit, json = false) =>
    (await (await fetch(endpoint, { method: 'POST', body, headers: { authorization: `Bearer ${secret}`, ...(json ? { 'content-type': 'application/json' } : {}) } })).json()) as any;
  const product = await gql(JSON.stringify({ query: 'mutation { createProduct(input: {name: "load"}) { ... on CreateProductSuccess { product { id } } } }' }), true);
  const productId = product.data.createProduct.product.id;

  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const depth: { t: number; depth: number }[] = [];
  const t0 = performance.now();
  const sampler = setInterval(async () => {
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM "Inspection" WHERE status IN ('QUEUED', 'RUNNING')`);
    depth.push({ t: Math.round((performance.now() - t0) / 1000), depth: rows[0].n });
  }, 1000);

  const latencies: number[] = [];
  const completedAt: number[] = [];
  let submitted = 0;
  let failed = 0;
  let k = 0;
  const deadline = t0 + SECONDS * 1000;
  const station = async () => {
    while (performance.now() < deadline) {
      const f = files[k++ % files.length];
      const form = new FormData();
      form.set('operations', JSON.stringify({ query: SUBMIT, variables: { input: { productId, image: null, scoreMap: null } } }));
      form.set('map', JSON.stringify({ 0: ['variables.input.image'], 1: ['variables.input.scoreMap'] }));
      form.set('0', new File([f.png as Uint8Array<ArrayBuffer>], 'part.png'));
      form.set('1', new File([f.npy as Uint8Array<ArrayBuffer>], 'part-map.npy'));
      const ts = performance.now();
      const r = await gql(form);
      const id = r.data?.submitInspection?.inspection?.id;
      if (!id) throw new Error(`submit failed: ${JSON.stringify(r)}`);
      submitted++;
      for (;;) {
        await new Promise((res) => setTimeout(res, 50));
        const s = (await gql(JSON.stringify({ query: STATUS, variables: { id } }), true)).data.inspection.status;
        if (s === 'SUCCEEDED' || s === 'FAILED') {
          if (s === 'FAILED') failed++;
          const tc = performance.now();
          latencies.push(tc - ts);
          completedAt.push(tc - t0);
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: STATIONS }, station));
  const wall = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  const { rows } = await db.query(`SELECT status::text, count(*)::int AS n FROM "Inspection" GROUP BY status ORDER BY status`);
  const attempts = await db.query(`SELECT count(*)::int AS n FROM "InspectionAttempt"`);
  await db.end();
  for (const p of procs) p.child.kill('SIGTERM');
  const codes = await Promise.all(procs.map((p) => p.exited));
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();

  const sorted = [...latencies].sort((a, b) => a - b);
  // Sustained rate: completions after the first 10 % of the run (start-up: pipeline compilation, first device use).
  const warm = SECONDS * 100;
  const steady = completedAt.filter((t) => t >= warm);
  const rate = steady.length / ((Math.max(...completedAt) - warm) / 1000);
  return {
    workers,
    stations: STATIONS,
    wallSeconds: Math.round(wall * 10) / 10,
    submitted,
    completed: latencies.length,
    failed,
    statuses: Object.fromEntries(rows.map((r) => [r.status, r.n])),
    attempts: attempts.rows[0].n,
    inspectionsPerSecond: Math.round(rate * 100) / 100,
    p50ms: Math.round(pct(sorted, 50)),
    p99ms: Math.round(pct(sorted, 99)),
    queueDepth: depth,
    exitCodes: codes,
  };
}

const files = await samples(8);
console.log(`load: ${SIZE}x${SIZE} samples (image PNG + score map), ${STATIONS} stations, ${SECONDS} s per run, default product options`);
for (const w of args.workers!.split(',').map(Number)) {
  const r = await run(w, files);
  const depthLine = r.queueDepth.filter((_, i) => i % 5 === 0).map((d) => `${d.t}s:${d.depth}`).join(' ');
  console.log(JSON.stringify({ ...r, queueDepth: undefined }));
  console.log(`queue depth (every 5 s): ${depthLine}`);
  console.log(`| ${r.workers} | ${r.inspectionsPerSecond} | ${r.p50ms} | ${r.p99ms} | ${Math.max(...r.queueDepth.map((d) => d.depth))} | ${r.submitted} | ${r.completed} (${r.failed} failed) |`);
}
