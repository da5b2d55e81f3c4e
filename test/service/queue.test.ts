// Durable processing, in one process on the real GPU and databases: idempotent completion under a
// redelivered job and backpressure (both databases); on the PostgreSQL server, the pg-boss queue itself:
// one job per inspection, transient failures retried with back-off (a device destroyed mid-run, an adapter
// that keeps failing), typed input errors final at once. The multi-process crash test is queue-e2e.test.ts.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { runInspection, type JobContext } from '../../src/processing/job.ts';
import { createScorerCache } from '../../src/processing/scorers.ts';
import { jobLimits } from '../../src/processing/start.ts';
import { defaultConfig } from '../../src/service/config.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { QUEUE_RETRY_AFTER_SECONDS, retryAfterWithJitter } from '../../src/service/inspections.ts';
import { UPLOAD_RETRY_AFTER_SECONDS } from '../../src/server/uploadGate.ts';
import { BACKENDS, INSPECTION, ORIGIN, POSTGRES_URL, REPROCESS, SUBMIT, createProduct, destroyMidRun, rowCounts, sampleFiles, startService, type TestService } from './helpers.ts';

const FILTERBANK = [{ key: 'features.extractor', value: 'filterbank' }];
const sample = (seed: number) => syntheticSample({ width: 48, height: 48, seed });
const localId = (globalId: string) => decodeGlobalID(globalId).id;

async function submit(s: TestService, productId: string, seed: number, extra: Record<string, unknown> = {}) {
  const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null, options: FILTERBANK, ...extra } }, await sampleFiles(sample(seed)));
  return r.data!.submitInspection;
}

async function attemptLog(s: TestService, inspectionId: string) {
  return s.prisma.inspectionAttempt.findMany({ where: { inspectionId }, orderBy: { attempt: 'asc' }, select: { attempt: true, outcome: true, errorCode: true } });
}

describe.each(BACKENDS)('idempotent completion on %s', (backend) => {
  let s: TestService;
  let productId: string;
  beforeAll(async () => {
    s = await startService(backend);
    productId = await createProduct(s, 'valve');
  });
  afterAll(async () => s?.close());

  it('a job delivered twice at once completes the inspection once, with one set of regions', async () => {
    const sub = await submit(s, productId, 3);
    await s.processor.drain();
    const id = localId(sub.inspection.id);
    const first = (await s.gql(INSPECTION, { id: sub.inspection.id })).data!.inspection;
    expect(first.status).toBe('SUCCEEDED');
    expect(first.regions.length).toBeGreaterThan(0);

    // As a queue would hand it over: the inspection owned by job J, QUEUED again (a reprocess).
    expect((await s.gql(REPROCESS, { id: sub.inspection.id })).data!.reprocessInspection.__typename).toBe('ReprocessInspectionSuccess');
    await s.processor.drain();
    const jobId = '0190a000-0000-7000-8000-00000000000a';
    await s.prisma.inspection.update({ where: { id }, data: { status: 'QUEUED', jobId } });
    // Two deliveries of J (the first one's worker presumed dead): both claim before either reaches the
    // GPU, so the second takes the lease from the first, which finishes first and must store nothing.
    let entered = 0;
    let release!: () => void;
    const bothClaimed = new Promise<void>((r) => (release = r));
    const lane = s.processor.withGpu.bind(s.processor);
    const ctx: JobContext = {
      db: s.prisma,
      events: s.app.events,
      logger: s.logger,
      scorers: createScorerCache(),
      worker: 'test',
      limits: jobLimits(defaultConfig()),
      withGpu: async (fn) => {
        if (++entered === 2) release();
        await bothClaimed;
        return lane(fn);
      },
    };
    const outcomes = await Promise.all([
      runInspection(ctx, id, { jobId, retriesLeft: true }),
      new Promise((r) => setTimeout(r, 50)).then(() => runInspection(ctx, id, { jobId, retriesLeft: true })),
    ]);
    expect(outcomes).toEqual(['SKIPPED', 'SUCCEEDED']);
    const after = await s.prisma.inspection.findUniqueOrThrow({ where: { id }, select: { status: true, regionCount: true, attempts: true } });
    expect(after.status).toBe('SUCCEEDED');
    expect(await s.prisma.region.count({ where: { inspectionId: id } })).toBe(after.regionCount);
    expect(after.regionCount).toBe(first.regionCount);
    expect(await s.prisma.inspectionBlob.count({ where: { inspectionId: id, kind: 'MASK' } })).toBe(1);
    const log = await attemptLog(s, id);
    expect(log.map((a) => a.outcome)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUPERSEDED', 'SUCCEEDED']);
    expect(after.attempts).toBe(4);

    // A late third delivery of the finished job changes nothing; another job's delivery neither.
    expect(await runInspection(ctx, id, { jobId, retriesLeft: true })).toBe('SKIPPED');
    expect(await runInspection(ctx, id, { jobId: '0190a000-0000-7000-8000-00000000000b', retriesLeft: true })).toBe('SKIPPED');
    expect((await attemptLog(s, id)).length).toBe(4);
  });
});

describe.each(BACKENDS)('backpressure on %s', (backend) => {
  let s: TestService;
  let productId: string;
  let releaseGpu!: () => void;
  const gpuReady = new Promise<void>((r) => (releaseGpu = r));
  beforeAll(async () => {
    // The device arrives only when the test says so: the first inspections stay RUNNING until then.
    s = await startService(backend, {
      config: { maxQueueDepth: 2 },
      acquireGpu: async () => {
        await gpuReady;
        return (await createNodeGpu()).gpu;
      },
    });
    productId = await createProduct(s, 'bolt');
  });
  afterAll(async () => s?.close());

  it('answers QueueFullError at MAX_QUEUE_DEPTH queued + running, storing nothing, and accepts again once drained', async () => {
    expect((await submit(s, productId, 1)).__typename).toBe('SubmitInspectionSuccess');
    expect((await submit(s, productId, 2)).__typename).toBe('SubmitInspectionSuccess');
    const before = await rowCounts(s);
    const full = await submit(s, productId, 3, { externalId: 'L1-0003' });
    expect(full).toEqual({
      __typename: 'QueueFullError',
      code: 'QUEUE_FULL',
      message: 'the processing queue is full (2 inspections queued or running, limit 2): nothing was stored; retry later',
    });
    expect(await rowCounts(s)).toEqual(before);
    // The HTTP answer is 429 with Retry-After, with the same typed result in its body.
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: SUBMIT, variables: { input: { productId, image: null, scoreMap: null, options: FILTERBANK } } }));
    form.set('map', JSON.stringify({ 0: ['variables.input.image'], 1: ['variables.input.scoreMap'] }));
    const files = await sampleFiles(sample(4));
    form.set('0', files['input.image']);
    form.set('1', files['input.scoreMap']);
    const res = await s.yoga.fetch(`${ORIGIN}/graphql`, { method: 'POST', body: form, headers: { accept: 'application/json', ...s.headers } });
    expect(res.status).toBe(429);
    // Retry-After around QUEUE_RETRY_AFTER_SECONDS (5): 3 to 7 s, so that stations refused together come back apart.
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(3);
    expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(7);
    expect(((await res.json()) as any).data.submitInspection.__typename).toBe('QueueFullError');
    // Other operations answer 200 meanwhile.
    expect((await s.gql('{ __typename }')).status).toBe(200);
    expect(await rowCounts(s)).toEqual(before);
    releaseGpu();
    await s.processor.drain();
    const again = await submit(s, productId, 3, { externalId: 'L1-0003' });
    expect(again.__typename).toBe('SubmitInspectionSuccess');
    await s.processor.drain();
    expect(await s.prisma.inspection.count({ where: { status: 'SUCCEEDED' } })).toBe(3);
  });
});

describe('Retry-After with jitter', () => {
  it('draws whole seconds uniformly from [ceil(base / 2), base + floor(base / 2)], at least 1', () => {
    expect(retryAfterWithJitter(5, () => 0)).toBe(3);
    expect(retryAfterWithJitter(5, () => 0.9999)).toBe(7);
    expect(retryAfterWithJitter(2, () => 0)).toBe(1);
    expect(retryAfterWithJitter(2, () => 0.9999)).toBe(3);
    expect(retryAfterWithJitter(1, () => 0.5)).toBe(1);
    const draws = Array.from({ length: 2000 }, () => retryAfterWithJitter(QUEUE_RETRY_AFTER_SECONDS));
    expect(new Set(draws)).toEqual(new Set([3, 4, 5, 6, 7]));
    // Uniform: each of the 5 values about 400 times (binomial sd 18; 6 sd either way).
    for (const v of [3, 4, 5, 6, 7]) expect(Math.abs(draws.filter((d) => d === v).length - 400)).toBeLessThan(110);
  });
});

describe.each(BACKENDS)('upload admission on %s', (backend) => {
  let s: TestService;
  let productId: string;
  beforeAll(async () => {
    s = await startService(backend, { config: { maxConcurrentUploads: 1 } });
    productId = await createProduct(s, 'gear');
  });
  afterAll(async () => s?.close());

  /** A submission's multipart body as a stream that sends nothing until `send()`; `pulled` counts reads. */
  async function heldSubmission(seed: number) {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: SUBMIT, variables: { input: { productId, image: null, scoreMap: null, options: FILTERBANK } } }));
    form.set('map', JSON.stringify({ 0: ['variables.input.image'], 1: ['variables.input.scoreMap'] }));
    const files = await sampleFiles(sample(seed));
    form.set('0', files['input.image']);
    form.set('1', files['input.scoreMap']);
    const encoded = new Response(form);
    const bytes = new Uint8Array(await encoded.arrayBuffer());
    let send!: () => void;
    const sent = new Promise<void>((r) => (send = r));
    const state = { pulled: 0 };
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        state.pulled++;
        await sent;
        controller.enqueue(bytes);
        controller.close();
      },
      // Nothing read ahead: a pull is a read by the server.
    }, { highWaterMark: 0 });
    const response = s.yoga.fetch(`${ORIGIN}/graphql`, {
      method: 'POST',
      body,
      duplex: 'half',
      headers: { accept: 'application/json', 'content-type': encoded.headers.get('content-type')!, ...s.headers },
    } as RequestInit);
    return { response: Promise.resolve(response), send, state };
  }

  it('beyond MAX_CONCURRENT_UPLOADS answers 429 BUSY with a jittered Retry-After before reading the body, and admits again once one ends', async () => {
    const first = await heldSubmission(1);
    for (let k = 0; k < 100 && s.app.uploads.active === 0; k++) await new Promise((r) => setTimeout(r, 10));
    expect(s.app.uploads.active).toBe(1);
    const before = await rowCounts(s);

    const second = await heldSubmission(2);
    const refused = await second.response;
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(Math.ceil(UPLOAD_RETRY_AFTER_SECONDS / 2));
    expect(retryAfter).toBeLessThanOrEqual(UPLOAD_RETRY_AFTER_SECONDS + Math.floor(UPLOAD_RETRY_AFTER_SECONDS / 2));
    expect(refused.headers.get('connection')).toBe('close');
    expect(((await refused.json()) as any).errors[0].extensions.code).toBe('BUSY');
    // Refused from the headers: not one read of its body.
    expect(second.state.pulled).toBe(0);
    expect(await rowCounts(s)).toEqual(before);
    // Other requests are not uploads: answered meanwhile.
    expect((await s.gql('{ __typename }')).status).toBe(200);

    first.send();
    const admitted = (await (await first.response).json()) as any;
    expect(admitted.data.submitInspection.__typename).toBe('SubmitInspectionSuccess');
    expect(s.app.uploads.active).toBe(0);
    // The slot is free again: the next upload is admitted, and so is one whose request failed (a bad body).
    const bad = await s.yoga.fetch(`${ORIGIN}/graphql`, { method: 'POST', body: 'not multipart', headers: { 'content-type': 'multipart/form-data; boundary=x', ...s.headers } });
    expect(bad.status).toBe(400);
    expect(s.app.uploads.active).toBe(0);
    expect((await submit(s, productId, 3)).__typename).toBe('SubmitInspectionSuccess');
    expect(s.app.uploads.active).toBe(0);
    await s.processor.drain();
  });
});

describe.skipIf(!POSTGRES_URL)('the PostgreSQL job queue', () => {
  let s: TestService;
  let productId: string;
  const devices: Gpu[] = [];
  let failAcquire = false;
  beforeAll(async () => {
    s = await startService('postgres', {
      queue: { work: true, settings: { retryLimit: 2, retryDelaySeconds: 1 } },
      concurrency: 1,
      acquireGpu: async () => {
        if (failAcquire) throw new Error('no device (test)');
        const { gpu } = await createNodeGpu();
        devices.push(gpu);
        // The first device is destroyed mid-run: after a few submissions of the first job's GPU work.
        if (devices.length === 1) destroyMidRun(gpu);
        return gpu;
      },
    });
    productId = await createProduct(s, 'flange');
  });
  afterAll(async () => s?.close());

  const jobsOf = async (inspectionId: string) =>
    (await s.prisma.$queryRawUnsafe<{ state: string; retry_count: number }[]>(
      `SELECT state::text, retry_count FROM pgboss.job WHERE name = 'inspection' AND data->>'inspectionId' = $1`,
      inspectionId,
    ));

  it('recreates a device lost mid-run and retries the job, which succeeds', async () => {
    const sub = await submit(s, productId, 5);
    expect(sub.inspection.status).toBe('QUEUED');
    await s.processor.drain();
    const id = localId(sub.inspection.id);
    const row = await s.prisma.inspection.findUniqueOrThrow({ where: { id }, select: { status: true, attempts: true, regionCount: true, jobId: true } });
    expect(row.status).toBe('SUCCEEDED');
    expect(row.attempts).toBe(2);
    expect(await attemptLog(s, id)).toEqual([
      { attempt: 1, outcome: 'RETRY', errorCode: 'DEVICE_LOST' },
      { attempt: 2, outcome: 'SUCCEEDED', errorCode: null },
    ]);
    expect(devices).toHaveLength(2);
    expect(devices[0].lost).not.toBeNull();
    expect(devices[1].lost).toBeNull();
    expect(await s.prisma.region.count({ where: { inspectionId: id } })).toBe(row.regionCount);
    expect(await jobsOf(id)).toEqual([{ state: 'completed', retry_count: 1 }]);
  });

  it('queues one job per inspection: a retried externalId does not queue again, a reprocess queues a new job', async () => {
    const a = await submit(s, productId, 6, { externalId: 'L2-0001' });
    const b = await submit(s, productId, 6, { externalId: 'L2-0001' });
    expect(b.inspection.id).toBe(a.inspection.id);
    await s.processor.drain();
    const id = localId(a.inspection.id);
    expect(await jobsOf(id)).toEqual([{ state: 'completed', retry_count: 0 }]);
    await s.gql(REPROCESS, { id: a.inspection.id });
    await s.processor.drain();
    expect((await jobsOf(id)).map((j) => j.state)).toEqual(['completed', 'completed']);
    expect((await attemptLog(s, id)).map((x) => x.outcome)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
  });

  it('ends a poison input FAILED at once, and a transient failure FAILED after 1 + JOB_RETRY_LIMIT attempts', async () => {
    // Stored bytes that no longer decode (as a corrupted row would): a typed input error, final at once.
    const poison = await submit(s, productId, 7);
    const pid = localId(poison.inspection.id);
    await s.processor.drain();
    await s.prisma.inspectionBlob.update({ where: { inspectionId_kind: { inspectionId: pid, kind: 'IMAGE' } }, data: { data: new Uint8Array([1, 2, 3]) } });
    await s.gql(REPROCESS, { id: poison.inspection.id });
    await s.processor.drain();
    const p = (await s.gql(INSPECTION, { id: poison.inspection.id })).data!.inspection;
    expect(p.status).toBe('FAILED');
    expect(p.errorCode).toBe('UNSUPPORTED_FORMAT');
    expect((await attemptLog(s, pid)).map((x) => x.outcome)).toEqual(['SUCCEEDED', 'FAILED']);

    // No device can be had: retried with back-off, then FAILED with the error after 3 attempts.
    failAcquire = true;
    devices[devices.length - 1].device.destroy();
    await devices[devices.length - 1].device.lost;
    const t = Date.now();
    const transient = await submit(s, productId, 8);
    await s.processor.drain();
    const tid = localId(transient.inspection.id);
    const f = (await s.gql(INSPECTION, { id: transient.inspection.id })).data!.inspection;
    expect(f.status).toBe('FAILED');
    expect(f.errorCode).toBe('INTERNAL');
    expect(await attemptLog(s, tid)).toEqual([
      { attempt: 1, outcome: 'RETRY', errorCode: 'INTERNAL' },
      { attempt: 2, outcome: 'RETRY', errorCode: 'INTERNAL' },
      { attempt: 3, outcome: 'FAILED', errorCode: 'INTERNAL' },
    ]);
    // Back-off: a delay of 1 s, then 2 s, each up to doubled by jitter.
    expect(Date.now() - t).toBeGreaterThan(3000);
    failAcquire = false;
  });
});
