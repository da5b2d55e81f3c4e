// The operations endpoints on the real service: /healthz without dependencies, /readyz that turns 503 when
// the database is closed or unreachable (PostgreSQL through a TCP proxy that is stopped and started again)
// and back, /metrics for ADMIN keys only on the main port and without a key on the METRICS_PORT listener,
// and counters that move by exactly the inspections a test submits.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { openDatabase, type Database } from '../../src/db.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { createQueueProcessor, type QueueProcessor } from '../../src/processing/queue.ts';
import { jobLimits } from '../../src/processing/start.ts';
import { configFromEnv, defaultConfig } from '../../src/service/config.ts';
import { createSharedInspectionEvents, type SharedInspectionEvents } from '../../src/service/events.ts';
import { listen } from '../../src/server/http.ts';
import { memoryLogger } from '../../src/service/log.ts';
import { createMetricsServer, MAX_OPERATION_LABELS } from '../../src/server/operations.ts';
import { createApp, type App } from '../../src/server/yoga.ts';
import { createApiKey } from '../../src/service/keys.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { freePort, startProcess, until } from '../helpers/processes.ts';
import { BACKENDS, ORIGIN, POSTGRES_URL, SUBMIT, client, createProduct, destroyMidRun, openTestDatabase, sampleFiles, startService, type TestDatabase, type TestService } from './helpers.ts';

/** Prometheus text format -> one entry per series: its name, labels and value. */
function parseMetrics(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
      return { name: m[1], labels, value: Number(m[3]) };
    });
}

/** The sum of a metric's series whose labels include `where`. */
function total(text: string, name: string, where: Record<string, string> = {}): number {
  return parseMetrics(text)
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(s: TestService): Promise<string> {
  const res = await s.get('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

const NAMED_SUBMIT = SUBMIT.replace('mutation(', 'mutation SubmitPart(');

async function ready(app: App): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> {
  const res = await app.yoga.fetch(`${ORIGIN}/readyz`);
  return { status: res.status, body: await res.json() };
}

describe.each(BACKENDS)('operations endpoints on %s', (backend) => {
  let s: TestService;
  let productId: string;

  beforeAll(async () => {
    s = await startService(backend);
    productId = await createProduct(s, 'gasket');
  });
  afterAll(async () => s?.close());

  it('/healthz answers 200 without a key; /readyz names each check, 200 when all pass', async () => {
    const health = await s.as(null).get('/healthz');
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const r = await ready(s.app);
    expect(r).toEqual({ status: 200, body: { status: 'ready', checks: { database: 'ok', migrations: 'ok', gpu: 'ok' } } });
    expect((await s.yoga.fetch(`${ORIGIN}/readyz`, { method: 'POST' })).status).toBe(405);
  });

  it('/readyz is 503 naming a migration the database lacks, and the WebGPU adapter when none is obtained', async () => {
    const [last] = await s.prisma.$queryRawUnsafe<{ migration_name: string }[]>('SELECT migration_name FROM "_prisma_migrations" ORDER BY migration_name DESC LIMIT 1');
    await s.prisma.$executeRawUnsafe('UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1', last.migration_name);
    try {
      const r = await ready(s.app);
      expect(r.status).toBe(503);
      expect(r.body).toEqual({ status: 'not ready', checks: { database: 'ok', migrations: `not applied: ${last.migration_name}`, gpu: 'ok' } });
    } finally {
      await s.prisma.$executeRawUnsafe('UPDATE "_prisma_migrations" SET rolled_back_at = NULL WHERE migration_name = $1', last.migration_name);
    }
    const noAdapter = createApp({
      db: s.prisma,
      processor: s.processor,
      config: defaultConfig(),
      logger: memoryLogger(),
      gpuReady: () => Promise.reject(new Error('no WebGPU adapter found: run `npm run setup`')),
    });
    const r = await ready(noAdapter);
    expect(r.status).toBe(503);
    expect(r.body.checks).toEqual({ database: 'ok', migrations: 'ok', gpu: 'no WebGPU adapter found: run `npm run setup`' });
  });

  it('/metrics: 401 without a key, 403 for VIEWER and STATION keys, 200 for ADMIN', async () => {
    expect((await s.as(null).get('/metrics')).status).toBe(401);
    for (const role of ['VIEWER', 'STATION'] as const) {
      const res = await s.as((await s.createKey(role)).secret).get('/metrics');
      expect(res.status).toBe(403);
      expect(((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code).toBe('FORBIDDEN');
    }
    expect(await scrape(s)).toMatch(/^# HELP ttt_inspections_total /m);
  });

  it('the counters move by exactly the inspections submitted, with stage histograms and the queue gauges', async () => {
    const before = await scrape(s);
    const n = 3;
    const ids: string[] = [];
    for (let k = 0; k < n; k++) {
      const r = await s.upload(NAMED_SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 48, height: 48, seed: 40 + k })));
      expect(r.data!.submitInspection.__typename).toBe('SubmitInspectionSuccess');
      ids.push(decodeGlobalID(r.data!.submitInspection.inspection.id).id);
    }
    await s.processor.drain();
    const rows = await s.prisma.inspection.findMany({ where: { id: { in: ids } }, select: { status: true, verdict: true, stageMs: true } });
    expect(rows.map((r) => r.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    const after = await scrape(s);
    const delta = (name: string, where: Record<string, string> = {}) => total(after, name, where) - total(before, name, where);

    expect(delta('ttt_inspections_total')).toBe(n);
    for (const verdict of ['NOMINAL', 'DEFECTIVE']) {
      expect(delta('ttt_inspections_total', { status: 'SUCCEEDED', verdict })).toBe(rows.filter((r) => r.verdict === verdict).length);
    }
    expect(delta('ttt_inspections_total', { status: 'FAILED' })).toBe(0);
    expect(delta('ttt_inspection_duration_seconds_count')).toBe(n);
    // One observation per stage of each inspection's stored stageMs.
    // stageMs also holds where each stage ran (`placement`), which is no duration.
    const stages = new Set(rows.flatMap((r) => Object.entries(r.stageMs as Record<string, unknown>).filter(([, v]) => typeof v === 'number').map(([k]) => k)));
    expect(stages.has('decode') && stages.has('encode')).toBe(true);
    for (const stage of stages) {
      const times = rows.filter((r) => stage in (r.stageMs as Record<string, number>)).length;
      expect(delta('ttt_inspection_stage_duration_seconds_count', { stage })).toBe(times);
      const seconds = rows.reduce((sum, r) => sum + ((r.stageMs as Record<string, number>)[stage] ?? 0) / 1000, 0);
      expect(delta('ttt_inspection_stage_duration_seconds_sum', { stage })).toBeCloseTo(seconds, 6);
    }
    // Requests by operation name, never by query text.
    expect(delta('ttt_http_requests_total', { route: 'graphql', operation: 'SubmitPart', status: '200' })).toBe(n);
    expect(delta('ttt_http_request_duration_seconds_count', { route: 'graphql', operation: 'SubmitPart' })).toBe(n);
    expect(delta('ttt_http_requests_total', { route: 'metrics', operation: 'none', status: '200' })).toBe(1);
    expect(after).not.toContain('submitInspection');
    expect(total(after, 'ttt_queue_depth', { status: 'QUEUED' })).toBe(0);
    expect(total(after, 'ttt_queue_depth', { status: 'RUNNING' })).toBe(0);
    expect(total(after, 'ttt_queue_oldest_age_seconds')).toBe(0);
    expect(delta('ttt_inspection_retries_total')).toBe(0);
  });

  it('the queue gauges count QUEUED inspections and the age of the oldest', async () => {
    const [id] = await s.prisma.inspection.findMany({ where: { productId: decodeGlobalID(productId).id }, select: { id: true }, take: 1 }).then((r) => r.map((x) => x.id));
    await s.prisma.$executeRawUnsafe(`UPDATE "Inspection" SET status = 'QUEUED', "updatedAt" = now() - interval '90 seconds' WHERE id = $1::uuid`, id);
    try {
      const text = await scrape(s);
      expect(total(text, 'ttt_queue_depth', { status: 'QUEUED' })).toBe(1);
      const age = total(text, 'ttt_queue_oldest_age_seconds');
      expect(age).toBeGreaterThanOrEqual(90);
      expect(age).toBeLessThan(150);
    } finally {
      await s.prisma.$executeRawUnsafe(`UPDATE "Inspection" SET status = 'SUCCEEDED' WHERE id = $1::uuid`, id);
    }
  });

  it('anonymous operations share one label, requests refused before parsing another, and names past the limit "other"', async () => {
    const before = await scrape(s);
    await s.gql('{ products(first: 1) { totalCount } }');
    await s.as(null).gql('query Secret { products { totalCount } }');
    for (let k = 0; k <= MAX_OPERATION_LABELS; k++) await s.gql(`query Probe${k} { __typename }`);
    const after = await scrape(s);
    const delta = (where: Record<string, string>) => total(after, 'ttt_http_requests_total', where) - total(before, 'ttt_http_requests_total', where);
    expect(delta({ route: 'graphql', operation: 'anonymous', status: '200' })).toBe(1);
    // Refused without a key: its document is never parsed, so its name is not a label.
    expect(delta({ route: 'graphql', operation: 'unknown', status: '401' })).toBe(1);
    expect(after).not.toContain('operation="Secret"');
    const labels = new Set(parseMetrics(after).filter((x) => x.name === 'ttt_http_requests_total').map((x) => x.labels.operation));
    expect(labels.size).toBeLessThanOrEqual(MAX_OPERATION_LABELS + 4);
    expect(delta({ route: 'graphql', operation: 'other' })).toBeGreaterThanOrEqual(1);
  });

  it('the METRICS_PORT listener serves /metrics without a key on 127.0.0.1 by default, and nothing else', async () => {
    const config = configFromEnv({ METRICS_PORT: '9464' });
    expect([config.metricsPort, config.metricsHost]).toEqual([9464, '127.0.0.1']);
    expect(configFromEnv({}).metricsPort).toBeNull();
    expect(() => configFromEnv({ PORT: '4000', METRICS_PORT: '4000' })).toThrow('METRICS_PORT (4000) must differ from PORT (4000)');
    expect(() => configFromEnv({ METRICS_PORT: 'x' })).toThrow('METRICS_PORT must be a positive integer, got "x"');

    const server = createMetricsServer(s.prisma);
    await listen(server, { port: 0, host: config.metricsHost });
    try {
      const { address, port } = server.address() as AddressInfo;
      expect(address).toBe('127.0.0.1');
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(total(text, 'ttt_queue_depth', { status: 'QUEUED' })).toBe(0);
      expect(text).toMatch(/^ttt_inspections_total\{status="SUCCEEDED",verdict="(NOMINAL|DEFECTIVE)"\} \d+$/m);
      expect((await fetch(`http://127.0.0.1:${port}/graphql`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe.each(BACKENDS)('retries and device losses on %s', (backend) => {
  let s: TestService;
  const devices: Gpu[] = [];
  beforeAll(async () => {
    s = await startService(backend, {
      inProcessRetries: { retryLimit: 1, retryDelayMs: 20 },
      acquireGpu: async () => {
        const { gpu } = await createNodeGpu();
        devices.push(gpu);
        // The first and third devices are destroyed in the middle of the GPU work of the job they get.
        if (devices.length === 1 || devices.length === 3) destroyMidRun(gpu);
        return gpu;
      },
    });
  });
  afterAll(async () => s?.close());

  it('a device lost mid-run counts one device loss and one retry, then one SUCCEEDED inspection', async () => {
    const productId = await createProduct(s, 'spring');
    const before = await scrape(s);
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 48, height: 48, seed: 8 })));
    const id = decodeGlobalID(r.data!.submitInspection.inspection.id).id;
    await s.processor.drain();
    const attempts = await s.prisma.inspectionAttempt.findMany({ where: { inspectionId: id }, orderBy: { attempt: 'asc' }, select: { outcome: true } });
    expect(attempts.map((a) => a.outcome)).toEqual(['RETRY', 'SUCCEEDED']);
    const after = await scrape(s);
    const delta = (name: string, where: Record<string, string> = {}) => total(after, name, where) - total(before, name, where);
    expect(delta('ttt_inspection_retries_total')).toBe(1);
    expect(delta('ttt_gpu_device_losses_total')).toBe(1);
    expect(delta('ttt_inspections_total', { status: 'SUCCEEDED' })).toBe(1);
    expect(delta('ttt_inspections_total', { status: 'FAILED' })).toBe(0);
  });

  it('every attempt losing its device: one retry, then one FAILED inspection (verdict none)', async () => {
    const productId = await createProduct(s, 'ring');
    const before = await scrape(s);
    // The second device, which the previous job succeeded on, dies in this job; its retry gets the third, doomed too.
    destroyMidRun(devices[1]);
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 48, height: 48, seed: 9 })));
    const id = decodeGlobalID(r.data!.submitInspection.inspection.id).id;
    await s.processor.drain();
    const row = await s.prisma.inspection.findUniqueOrThrow({ where: { id }, select: { status: true, errorCode: true } });
    expect(row).toEqual({ status: 'FAILED', errorCode: 'DEVICE_LOST' });
    const after = await scrape(s);
    const delta = (name: string, where: Record<string, string> = {}) => total(after, name, where) - total(before, name, where);
    expect(delta('ttt_inspections_total', { status: 'FAILED', verdict: 'none' })).toBe(1);
    expect(delta('ttt_inspections_total', { status: 'SUCCEEDED' })).toBe(0);
    expect(delta('ttt_inspection_retries_total')).toBe(1);
    // The second device is found lost (and replaced) at the retry; the third is not needed again.
    expect(delta('ttt_gpu_device_losses_total')).toBe(1);
    expect(delta('ttt_inspection_duration_seconds_count')).toBe(0);
  });
});

describe('built-in scorer bank builds', () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startService('pglite');
  });
  afterAll(async () => s?.close());

  it('each stored bank build counts once, in ttt_scorer_bank_builds_total{result="stored"}', async () => {
    const ADD = `mutation Nominal($id: ID!, $images: [File!]) { addNominalSamples(productId: $id, images: $images) { __typename ... on Error { code message } } }`;
    const created = await s.gql(`mutation { createProduct(input: { name: "tile", scorer: BUILTIN }) { ... on CreateProductSuccess { product { id } } } }`);
    const id = created.data!.createProduct.product.id;
    const png = (seed: number) => sampleFiles(syntheticSample({ width: 64, height: 48, seed })).then((f) => f['input.image']);
    const before = await scrape(s);
    for (const seed of [1, 2]) {
      const r = await s.upload(ADD, { id, images: [null] }, { images: [await png(seed)] });
      expect(r.data!.addNominalSamples.__typename).toBe('AddNominalSamplesSuccess');
    }
    const after = await scrape(s);
    expect(total(after, 'ttt_scorer_bank_builds_total', { result: 'stored' }) - total(before, 'ttt_scorer_bank_builds_total', { result: 'stored' })).toBe(2);
    expect(total(after, 'ttt_scorer_bank_builds_total', { result: 'superseded' }) - total(before, 'ttt_scorer_bank_builds_total', { result: 'superseded' })).toBe(0);
  });
});

describe.runIf(POSTGRES_URL)('a separate worker (PostgreSQL)', () => {
  it('serves its own counters on METRICS_PORT, without a key: they move by exactly the inspections it processed', async () => {
    const s = await startService('postgres', { queue: { work: false } });
    const port = await freePort();
    const worker = startProcess('src/worker/main.ts', { DATABASE_URL: s.database.url!, METRICS_PORT: String(port), PROCESSING_CONCURRENCY: '1', LOG_LEVEL: 'warn' });
    try {
      const metricsOf = async () => {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => null);
        return res?.status === 200 ? res.text() : null;
      };
      const workerBefore = await until('the worker\'s metrics listener', metricsOf, 90_000, 250);
      const serverBefore = await scrape(s);
      expect(await ready(s.app)).toEqual({ status: 200, body: { status: 'ready', checks: { database: 'ok', migrations: 'ok', gpu: 'ok', queue: 'ok' } } });
      const productId = await createProduct(s, 'washer');
      const ids: string[] = [];
      for (const seed of [61, 62]) {
        const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 48, height: 48, seed })));
        ids.push(decodeGlobalID(r.data!.submitInspection.inspection.id).id);
      }
      await until('both inspections processed', async () => (await s.prisma.inspection.count({ where: { id: { in: ids }, status: 'SUCCEEDED' } })) === 2, 90_000, 100);
      const workerAfter = await until('the worker counting both', async () => {
        const text = await metricsOf();
        return text && total(text, 'ttt_inspections_total') - total(workerBefore, 'ttt_inspections_total') === 2 ? text : null;
      }, 10_000, 100);
      expect(total(workerAfter, 'ttt_inspections_total', { status: 'SUCCEEDED' }) - total(workerBefore, 'ttt_inspections_total', { status: 'SUCCEEDED' })).toBe(2);
      expect(total(workerAfter, 'ttt_inspection_duration_seconds_count') - total(workerBefore, 'ttt_inspection_duration_seconds_count')).toBe(2);
      // The server only queued them: its own inspection counters did not move; the queue gauges are the database's.
      const serverAfter = await scrape(s);
      expect(total(serverAfter, 'ttt_inspections_total') - total(serverBefore, 'ttt_inspections_total')).toBe(0);
      expect(total(serverAfter, 'ttt_queue_depth', { status: 'QUEUED' })).toBe(0);
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
      await s.close();
    }
  }, 180_000);
});

describe('readiness when the database goes away', () => {
  it('PGlite: /readyz is 503 naming the database once it is closed; /healthz stays 200', async () => {
    const s = await startService('pglite');
    try {
      expect((await ready(s.app)).status).toBe(200);
      await s.processor.close();
      await s.database.db.close();
      const r = await ready(s.app);
      expect(r.status).toBe(503);
      expect(r.body.status).toBe('not ready');
      expect(r.body.checks.database).toBe('PGlite is closed');
      expect(r.body.checks.migrations).toBe('not checked: the database does not answer');
      expect(r.body.checks.gpu).toBe('ok');
      expect((await s.yoga.fetch(`${ORIGIN}/healthz`)).status).toBe(200);
    } finally {
      await s.database.close().catch(() => undefined);
    }
  });

  /** A TCP proxy to the PostgreSQL server that can be stopped (every connection cut) and started again on its port. */
  class Proxy {
    private server: Server | null = null;
    private sockets = new Set<Socket>();
    port = 0;
    constructor(private readonly target: { host: string; port: number }) {}
    async start(): Promise<void> {
      const server = createServer((down) => {
        const up = connect(this.target.port, this.target.host);
        for (const sock of [down, up]) {
          this.sockets.add(sock);
          sock.on('close', () => this.sockets.delete(sock));
          sock.on('error', () => undefined);
        }
        down.pipe(up).pipe(down);
      });
      await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
      this.port = (server.address() as AddressInfo).port;
      this.server = server;
    }
    async stop(): Promise<void> {
      const server = this.server!;
      this.server = null;
      const closed = new Promise((r) => server.close(r));
      for (const sock of this.sockets) sock.destroy();
      await closed;
    }
  }

  it.runIf(POSTGRES_URL)('PostgreSQL: /readyz is 503 naming the database and the job queue while the server is unreachable, 200 again once it is back', async () => {
    const test: TestDatabase = await openTestDatabase('postgres');
    const target = new URL(test.url!);
    const proxy = new Proxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
    const proxied = new URL(test.url!);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    let db: Database | null = null;
    let queue: QueueProcessor | null = null;
    let events: SharedInspectionEvents | null = null;
    try {
      db = await openDatabase({ url: proxied.toString() });
      const logger = memoryLogger();
      events = await createSharedInspectionEvents(test.url!);
      queue = await createQueueProcessor({
        db: db.prisma,
        url: proxied.toString(),
        events,
        logger,
        settings: { jobTimeoutSeconds: 60, retryLimit: 0, retryDelaySeconds: 1, shutdownTimeoutSeconds: 5 },
        limits: jobLimits(defaultConfig()),
        work: false,
      });
      const app = createApp({ db: db.prisma, processor: queue, events, config: defaultConfig(), logger });
      const admin = client(app, (await createApiKey(db.prisma, { role: 'ADMIN', productIds: [], name: 'ops' })).secret);
      expect(await ready(app)).toEqual({ status: 200, body: { status: 'ready', checks: { database: 'ok', migrations: 'ok', gpu: 'ok', queue: 'ok' } } });

      await proxy.stop();
      const down = await ready(app);
      expect(down.status).toBe(503);
      expect(down.body.status).toBe('not ready');
      // The pool's own words: the connection was cut, or refused while the proxy is down.
      expect(down.body.checks.database).toMatch(/Connection terminated|ECONNREFUSED|connect/i);
      expect(down.body.checks.queue).toMatch(/Connection terminated|ECONNREFUSED|connect/i);
      expect(down.body.checks.migrations).toBe('not checked: the database does not answer');
      expect(down.body.checks.gpu).toBe('ok');
      expect((await app.yoga.fetch(`${ORIGIN}/healthz`)).status).toBe(200);

      await proxy.start();
      const deadline = Date.now() + 15_000;
      let up = await ready(app);
      while (up.status !== 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        up = await ready(app);
      }
      expect(up).toEqual({ status: 200, body: { status: 'ready', checks: { database: 'ok', migrations: 'ok', gpu: 'ok', queue: 'ok' } } });
      expect((await admin.get('/metrics')).status).toBe(200);
    } finally {
      await queue?.close().catch(() => undefined);
      await events?.close().catch(() => undefined);
      await db?.close().catch(() => undefined);
      await proxy.stop().catch(() => undefined);
      await test.close();
    }
  }, 60_000);
});
