// One failed job must not poison the next (issue 16, item 6): a job that fails in the middle of its GPU
// work (a storage buffer over the device's binding limit, after a dispatch over the per-dimension
// workgroup limit was recorded: features.inputSize=2048) leaves the device clean, and the next inspection
// succeeds on its first attempt. The submission check refuses such options, so the inspection is written
// to the database directly, as a row the job would find.

import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, INSPECTION, SUBMIT, createProduct, imagePng, sampleFiles, scoreMapNpy, startService, type TestService } from './helpers.ts';

describe.each(BACKENDS)('a failed GPU job on %s', (backend) => {
  let s: TestService;
  let productId: string;

  beforeAll(async () => {
    // Retries on: without a clean device the next job would fail its first attempt and pass on a retry.
    s = await startService(backend, { inProcessRetries: { retryLimit: 2, retryDelayMs: 10 } });
    productId = await createProduct(s, 'bracket');
  });
  afterAll(async () => s?.close());

  it('leaves nothing for the next job, which succeeds on its first attempt', async () => {
    const sample = syntheticSample({ width: 64, height: 64, seed: 3 });
    const row = await s.prisma.inspection.create({
      data: {
        productId: decodeGlobalID(productId).id,
        options: { 'features.inputSize': 2048 },
        width: 64,
        height: 64,
        channels: sample.image.channels,
        scoreSource: 'UPLOADED',
        blobs: {
          create: [
            { kind: 'IMAGE', name: 'part.png', data: new Uint8Array(await imagePng(sample)) },
            { kind: 'SCORE_MAP', name: 'part-map.npy', data: new Uint8Array(scoreMapNpy(sample.scoreMap)) },
          ],
        },
      },
      select: { id: true },
    });
    await s.processor.enqueue(row.id);
    await s.processor.drain();
    const failed = (await s.gql(INSPECTION, { id: encodeGlobalID('Inspection', row.id) })).data!.inspection;
    expect(failed.status).toBe('FAILED');
    expect(failed.errorCode).toBe('TOO_LARGE');

    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(sample));
    const id = r.data!.submitInspection.inspection.id;
    await s.processor.drain();
    const next = (await s.gql(INSPECTION, { id })).data!.inspection;
    expect(next.errorMessage).toBeNull();
    expect(next.status).toBe('SUCCEEDED');
    const attempts = await s.prisma.inspectionAttempt.findMany({ where: { inspectionId: decodeGlobalID(id).id }, select: { attempt: true, outcome: true } });
    expect(attempts).toEqual([{ attempt: 1, outcome: 'SUCCEEDED' }]);
  });
});
