// What the load benches (load.ts, responsive.ts) share: synthetic samples, and the service under test on a
// fresh PostgreSQL database (created next to DATABASE_URL's, dropped by stop()) with its first ADMIN key
// made as an operator makes it, a server and W worker processes, one product, and multipart submissions.

import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { encodeImagePng } from '../src/io/image.ts';
import { encodeNpy } from '../src/io/npy.ts';
import { syntheticSample } from '../src/synthetic.ts';
import { ROOT, TSX, freePort, startProcess as start, type Proc } from '../test/helpers/processes.ts';

export interface Sample {
  png: Uint8Array;
  npy: Uint8Array;
}

export const SUBMIT = `mutation($input: SubmitInspectionInput!) { submitInspection(input: $input) {
  __typename ... on SubmitInspectionSuccess { inspection { id status } } ... on Error { code message } } }`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The p-th percentile of the values (nearest rank), rounded to a millisecond. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN);
}

/** n synthetic size x size samples: image PNG + float32 score map .npy. */
export async function samples(n: number, size: number): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let k = 0; k < n; k++) {
    const s = syntheticSample({ width: size, height: size, seed: 1000 + k });
    out.push({ png: await encodeImagePng(s.image), npy: encodeNpy(s.scoreMap.data, [s.image.height, s.image.width]) });
  }
  return out;
}

export interface ServiceUnderLoad {
  /** The fresh database's connection string. */
  url: string;
  productId: string;
  procs: Proc[];
  post(body: BodyInit, json?: boolean): Promise<Response>;
  gql(body: BodyInit, json?: boolean): Promise<any>;
  /** A multipart submitInspection of the sample. */
  submit(sample: Sample): Promise<Response>;
  /** SIGTERM to every process (their exit codes), then the database is dropped. */
  stop(): Promise<(number | null)[]>;
}

async function waitFor(what: string, ready: () => boolean, output: () => string): Promise<void> {
  for (const t = Date.now(); !ready(); await sleep(100)) {
    if (Date.now() - t > 60_000) throw new Error(`${what} did not start: ${output()}`);
  }
}

export async function startServiceUnderLoad(options: {
  base: string;
  /** Prefix of the database's name. */
  name: string;
  /** Separate `npm run worker` processes; 0 with embeddedWorker for the default deployment. */
  workers: number;
  embeddedWorker: boolean;
  maxQueueDepth: number;
}): Promise<ServiceUnderLoad> {
  const name = `${options.name}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: options.base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(options.base);
  u.pathname = `/${name}`;
  const url = u.toString();
  const port = await freePort();
  const env = {
    DATABASE_URL: url,
    PORT: String(port),
    EMBEDDED_WORKER: String(options.embeddedWorker),
    LOG_LEVEL: 'warn',
    MAX_QUEUE_DEPTH: String(options.maxQueueDepth),
    RATE_LIMIT_PER_MINUTE: '1000000000',
    RATE_LIMIT_BURST: '1000000000',
  };
  // The first admin key, as an operator makes it (`ttt keys create`; it applies the migrations first).
  const secret = execFileSync(TSX, ['src/cli/main.ts', 'keys', 'create', '--role', 'admin', '--name', `${options.name} bench`], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' }).trim();
  const server = start('src/server/main.ts', { ...env, LOG_LEVEL: 'info' });
  await waitFor('the server', () => server.output.join('').includes('"listening"'), () => server.output.join(''));
  const procs = [server, ...Array.from({ length: options.workers }, () => start('src/worker/main.ts', { ...env, LOG_LEVEL: 'info' }))];
  const workers = procs.slice(1);
  await waitFor('the workers', () => workers.every((p) => p.output.join('').includes('"worker ready"')), () => procs.map((p) => p.output.join('')).join('\n'));

  const endpoint = `http://127.0.0.1:${port}/graphql`;
  const post = (body: BodyInit, json = false) =>
    fetch(endpoint, { method: 'POST', body, headers: { authorization: `Bearer ${secret}`, ...(json ? { 'content-type': 'application/json' } : {}) } });
  const gql = async (body: BodyInit, json = false) => (await (await post(body, json)).json()) as any;
  const product = await gql(JSON.stringify({ query: 'mutation { createProduct(input: {name: "load"}) { ... on CreateProductSuccess { product { id } } } }' }), true);
  const productId: string = product.data.createProduct.product.id;
  return {
    url,
    productId,
    procs,
    post,
    gql,
    submit(sample) {
      const form = new FormData();
      form.set('operations', JSON.stringify({ query: SUBMIT, variables: { input: { productId, image: null, scoreMap: null } } }));
      form.set('map', JSON.stringify({ 0: ['variables.input.image'], 1: ['variables.input.scoreMap'] }));
      form.set('0', new File([sample.png as Uint8Array<ArrayBuffer>], 'part.png'));
      form.set('1', new File([sample.npy as Uint8Array<ArrayBuffer>], 'part-map.npy'));
      return post(form);
    },
    async stop() {
      for (const p of procs) p.child.kill('SIGTERM');
      const codes = await Promise.all(procs.map((p) => p.exited));
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
      return codes;
    },
  };
}
