// A processing failure (a real one: the Dawn device is destroyed, as on a driver reset) leaves the
// inspection FAILED with its inputs kept; reprocessInspection then redoes it on a fresh device. With
// retries (the server's JOB_RETRY_LIMIT), the in-process processor retries it on a fresh device first.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, INSPECTION, REPROCESS, SUBMIT, createProduct, destroyMidRun, sampleFiles, startService, type TestService } from './helpers.ts';

describe.each(BACKENDS)('processing failure on %s', (backend) => {
  let s: TestService;
  let productId: string;
  const devices: Gpu[] = [];
  /** Acquisitions whose device is lost right after it is handed over. */
  const doomed = new Set<number>([2]);

  beforeAll(async () => {
    // Devices of this test only (not the process's shared one), so that they can be destroyed.
    s = await startService(backend, {
      acquireGpu: async () => {
        const { gpu } = await createNodeGpu();
        devices.push(gpu);
        if (doomed.has(devices.length)) {
          gpu.device.destroy();
          await gpu.device.lost;
        }
        return gpu;
      },
    });
    productId = await createProduct(s, 'gasket');
  });
  afterAll(async () => s?.close());

  it('FAILED with the error and the inputs kept, then SUCCEEDED after reprocessing', async () => {
    const sample = syntheticSample({ width: 48, height: 48, seed: 8 });
    const first = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(sample));
    await s.processor.drain();
    expect((await s.gql(INSPECTION, { id: first.data!.submitInspection.inspection.id })).data!.inspection.status).toBe('SUCCEEDED');
    expect(devices).toHaveLength(1);

    // The first device is lost between jobs: the processor notices and acquires another, which is
    // lost in turn while the next job runs on it.
    devices[0].device.destroy();
    await devices[0].device.lost;

    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null, groundTruth: null } }, await sampleFiles(sample, true));
    const id = r.data!.submitInspection.inspection.id;
    await s.processor.drain();
    const failed = (await s.gql(INSPECTION, { id })).data!.inspection;
    expect(failed.status).toBe('FAILED');
    expect(failed.errorCode).toBe('DEVICE_LOST');
    expect(failed.errorMessage).toMatch(/the GPU device was lost/);
    expect(failed.maskUrl).toBeNull();
    expect(failed.finishedAt).not.toBeNull();
    const local = decodeGlobalID(id).id;
    const kinds = (await s.prisma.inspectionBlob.findMany({ where: { inspectionId: local }, select: { kind: true } })).map((b) => b.kind).sort();
    expect(kinds).toEqual(['GROUND_TRUTH', 'IMAGE', 'SCORE_MAP']);
    expect((await s.get(new URL(failed.imageUrl).pathname)).status).toBe(200);
    expect(s.logger.entries.some((e) => e.msg === 'inspection' && e.fields.status === 'FAILED' && e.fields.code === 'DEVICE_LOST')).toBe(true);

    const again = await s.gql(REPROCESS, { id });
    expect(again.data!.reprocessInspection.inspection.status).toBe('QUEUED');
    await s.processor.drain();
    const done = (await s.gql(INSPECTION, { id })).data!.inspection;
    expect(done.status).toBe('SUCCEEDED');
    expect(done.errorCode).toBeNull();
    expect(done.errorMessage).toBeNull();
    expect(done.metrics).not.toBeNull();
    expect(done.regions.length).toBeGreaterThan(0);
    expect(devices).toHaveLength(3);
    expect(devices[2].lost).toBeNull();
  });
});

describe.each(BACKENDS)('in-process retries on %s', (backend) => {
  let s: TestService;
  let productId: string;
  const devices: Gpu[] = [];
  /** Devices (1-based acquisition order) destroyed after a few submissions of the job's GPU work. */
  let dying = new Set<number>([1]);

  beforeAll(async () => {
    s = await startService(backend, {
      concurrency: 1,
      inProcessRetries: { retryLimit: 2, retryDelayMs: 20 },
      acquireGpu: async () => {
        const { gpu } = await createNodeGpu();
        devices.push(gpu);
        if (dying.has(devices.length)) destroyMidRun(gpu);
        return gpu;
      },
    });
    productId = await createProduct(s, 'washer');
  });
  afterAll(async () => s?.close());

  const attempts = (id: string) =>
    s.prisma.inspectionAttempt.findMany({ where: { inspectionId: id }, orderBy: { attempt: 'asc' }, select: { attempt: true, outcome: true, errorCode: true } });

  it('a device lost mid-run: the job is retried on a new device and succeeds; when every attempt loses its device, FAILED after 1 + retryLimit', async () => {
    const sample = syntheticSample({ width: 48, height: 48, seed: 8 });
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(sample));
    const id = decodeGlobalID(r.data!.submitInspection.inspection.id).id;
    await s.processor.drain();
    const row = await s.prisma.inspection.findUniqueOrThrow({ where: { id }, select: { status: true, attempts: true, regionCount: true } });
    expect(row).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
    expect(await attempts(id)).toEqual([
      { attempt: 1, outcome: 'RETRY', errorCode: 'DEVICE_LOST' },
      { attempt: 2, outcome: 'SUCCEEDED', errorCode: null },
    ]);
    expect(await s.prisma.region.count({ where: { inspectionId: id } })).toBe(row.regionCount);
    expect(devices).toHaveLength(2);
    expect(devices[1].lost).toBeNull();

    // The second device is lost between jobs, and each of the next three dies mid-run.
    dying = new Set([3, 4, 5]);
    devices[1].device.destroy();
    await devices[1].device.lost;
    const again = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 48, height: 48, seed: 9 })));
    const failedId = decodeGlobalID(again.data!.submitInspection.inspection.id).id;
    await s.processor.drain();
    const failed = await s.prisma.inspection.findUniqueOrThrow({ where: { id: failedId }, select: { status: true, attempts: true, errorCode: true } });
    expect(failed).toEqual({ status: 'FAILED', attempts: 3, errorCode: 'DEVICE_LOST' });
    expect((await attempts(failedId)).map((a) => a.outcome)).toEqual(['RETRY', 'RETRY', 'FAILED']);
    expect(await s.prisma.region.count({ where: { inspectionId: failedId } })).toBe(0);
    expect(devices).toHaveLength(5);
  });
});

describe('in-process retries and shutdown', () => {
  it('close() does not wait out a retry back-off: the inspection stays QUEUED for the next start', async () => {
    let acquired = 0;
    const s = await startService('pglite', {
      inProcessRetries: { retryLimit: 2, retryDelayMs: 600_000 },
      acquireGpu: async () => {
        const { gpu } = await createNodeGpu();
        if (++acquired === 1) destroyMidRun(gpu);
        return gpu;
      },
    });
    try {
      const productId = await createProduct(s, 'bolt');
      const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 48, height: 48, seed: 8 })));
      const id = decodeGlobalID(r.data!.submitInspection.inspection.id).id;
      const deadline = Date.now() + 30_000;
      while ((await s.prisma.inspectionAttempt.count({ where: { inspectionId: id, outcome: 'RETRY' } })) === 0) {
        if (Date.now() > deadline) throw new Error('no retry was scheduled');
        await new Promise((res) => setTimeout(res, 20));
      }
      // Waiting out the 10-minute back-off would run past the test's timeout.
      await s.processor.close();
      expect((await s.prisma.inspection.findUniqueOrThrow({ where: { id }, select: { status: true } })).status).toBe('QUEUED');
      expect(acquired).toBe(1);
    } finally {
      await s.close();
    }
  });
});
