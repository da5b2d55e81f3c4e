// The job's limits (issue 16, items 3 and 7): the job decodes under the submission's MAX_IMAGE_PIXELS
// (never the former hard-coded 40,000,000-pixel cap), and an attempt past its time limit FAILs with
// TIMEOUT, not retried, and leaves the device to the next job.

import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeStoredInputs } from '../../src/processing/job.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, INSPECTION, SUBMIT, createProduct, imagePng, sampleFiles, scoreMapNpy, startService, type TestService } from './helpers.ts';

async function insertInspection(s: TestService, productId: string, width: number, height: number, seed: number): Promise<string> {
  const sample = syntheticSample({ width, height, seed });
  const row = await s.prisma.inspection.create({
    data: {
      productId: decodeGlobalID(productId).id,
      options: {},
      width,
      height,
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
  return row.id;
}

describe.each(BACKENDS)('job limits on %s', (backend) => {
  describe('MAX_IMAGE_PIXELS', () => {
    let s: TestService;
    let productId: string;
    beforeAll(async () => {
      s = await startService(backend, { config: { maxImagePixels: 2000 } });
      productId = await createProduct(s, 'washer');
    });
    afterAll(async () => s?.close());

    it('is the same limit at submission and in the job', async () => {
      const big = syntheticSample({ width: 48, height: 48, seed: 1 }); // 2304 pixels
      const refused = (await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(big))).data!.submitInspection;
      expect(refused.__typename).toBe('TooLargeError');
      expect(refused.message).toBe('image: part.png: the image is 48x48 = 2304 pixels, more than the limit of 2000');

      const small = syntheticSample({ width: 40, height: 40, seed: 1 }); // 1600 pixels
      const r = (await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(small))).data!.submitInspection;
      expect(r.__typename).toBe('SubmitInspectionSuccess');

      // The same 48 x 48 inputs stored without the submission's check: the job refuses them on the same limit.
      const id = await insertInspection(s, productId, 48, 48, 1);
      await s.processor.enqueue(id);
      await s.processor.drain();
      expect((await s.gql(INSPECTION, { id: r.inspection.id })).data!.inspection.status).toBe('SUCCEEDED');
      const failed = (await s.gql(INSPECTION, { id: encodeGlobalID('Inspection', id) })).data!.inspection;
      expect(failed.status).toBe('FAILED');
      expect(failed.errorCode).toBe('TOO_LARGE');
      expect(failed.errorMessage).toBe('part.png: the image is 48x48 = 2304 pixels, more than the limit of 2000');
    });
  });

  describe('JOB_TIMEOUT_SECONDS', () => {
    let s: TestService;
    let productId: string;
    beforeAll(async () => {
      s = await startService(backend, { config: { queue: { jobTimeoutSeconds: 5, retryLimit: 2, retryDelaySeconds: 1, shutdownTimeoutSeconds: 30 } }, inProcessRetries: { retryLimit: 2, retryDelayMs: 10 } });
      productId = await createProduct(s, 'spring');
    });
    afterAll(async () => s?.close());

    it('FAILs an attempt past its time limit with TIMEOUT, once, and the next job runs', { timeout: 60_000 }, async () => {
      const sample = syntheticSample({ width: 40, height: 40, seed: 2 });
      // The device is busy for longer than the job's limit: the wait counts, so the job times out.
      let release!: () => void;
      const busy = s.processor.withGpu(() => new Promise<void>((r) => (release = r)));
      const r = (await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(sample))).data!.submitInspection;
      await new Promise((r) => setTimeout(r, 5500));
      release();
      await busy;
      await s.processor.drain();
      const failed = (await s.gql(INSPECTION, { id: r.inspection.id })).data!.inspection;
      expect(failed.status).toBe('FAILED');
      expect(failed.errorCode).toBe('TIMEOUT');
      expect(failed.errorMessage).toBe('the inspection exceeded the job time limit of 5 s (JOB_TIMEOUT_SECONDS); it was stopped after waiting for the GPU');
      const attempts = await s.prisma.inspectionAttempt.findMany({ where: { inspectionId: decodeGlobalID(r.inspection.id).id }, select: { outcome: true, errorCode: true } });
      expect(attempts).toEqual([{ outcome: 'FAILED', errorCode: 'TIMEOUT' }]);

      const next = (await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(sample))).data!.submitInspection;
      await s.processor.drain();
      expect((await s.gql(INSPECTION, { id: next.inspection.id })).data!.inspection.status).toBe('SUCCEEDED');
    });
  });
});

describe('the job decoder', () => {
  it('decodes an image between the former 40,000,000-pixel cap and MAX_IMAGE_PIXELS', async () => {
    const width = 8000;
    const height = 5001; // 40,008,000 pixels
    const png = await sharp(new Uint8Array(width * height), { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    const blobs = [{ kind: 'IMAGE' as const, name: 'wide.png', data: new Uint8Array(png) }];
    const { image } = await decodeStoredInputs(blobs, { maxImagePixels: 64 * 1024 * 1024 });
    expect([image.width, image.height, image.channels]).toEqual([width, height, 1]);
    await expect(decodeStoredInputs(blobs, { maxImagePixels: 40_000_000 })).rejects.toThrow('wide.png: the image is 8000x5001 = 40008000 pixels, more than the limit of 40000000');
  }, 60_000);
});
