// A processing failure (a real one: the Dawn device is destroyed, as on a driver reset) leaves the
// inspection FAILED with its inputs kept; reprocessInspection then redoes it on a fresh device.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, INSPECTION, REPROCESS, SUBMIT, createProduct, sampleFiles, startService, type TestService } from './helpers.ts';

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
