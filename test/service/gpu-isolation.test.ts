// One failed job must not poison the next (issue 16, item 6). A job on the processor's GPU lane records a
// dispatch over the device's per-dimension workgroup limit (a real Dawn validation error) and fails: once
// before submitting it (the work stays recorded), once at its read-back (the error is reported to it).
// Either way the next inspection succeeds on its first attempt, with retries on (which would otherwise
// hide a poisoned first attempt).

import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { kernels } from '../../src/core/kernels.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, INSPECTION, SUBMIT, createProduct, sampleFiles, startService, type TestService } from './helpers.ts';

/** Records a dispatch one workgroup over the per-dimension limit. */
function recordInvalidDispatch(gpu: Gpu): void {
  const scores = gpu.alloc(4);
  const mask = gpu.alloc(4);
  const over = gpu.device.limits.maxComputeWorkgroupsPerDimension + 1;
  gpu.run(kernels.thresholdGlobal, { pixels: 4, threshold: 0 }, { scores, mask }, [over, 1, 1]);
  gpu.release(scores, mask);
}

describe.each(BACKENDS)('a failed GPU job on %s', (backend) => {
  let s: TestService;
  let productId: string;

  beforeAll(async () => {
    s = await startService(backend, { inProcessRetries: { retryLimit: 2, retryDelayMs: 10 } });
    productId = await createProduct(s, 'bracket');
  });
  afterAll(async () => s?.close());

  async function nextInspectionSucceedsFirstTime(seed: number): Promise<void> {
    const sample = syntheticSample({ width: 48, height: 48, seed });
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(sample));
    const id = r.data!.submitInspection.inspection.id;
    await s.processor.drain();
    const next = (await s.gql(INSPECTION, { id })).data!.inspection;
    expect(next.errorMessage).toBeNull();
    expect(next.status).toBe('SUCCEEDED');
    const attempts = await s.prisma.inspectionAttempt.findMany({ where: { inspectionId: decodeGlobalID(id).id }, select: { attempt: true, outcome: true } });
    expect(attempts).toEqual([{ attempt: 1, outcome: 'SUCCEEDED' }]);
  }

  it('a job that fails with invalid work recorded and not submitted: the next one succeeds on its first attempt', async () => {
    await expect(
      s.processor.withGpu(async (gpu) => {
        recordInvalidDispatch(gpu);
        throw new Error('the job failed before its read-back');
      }),
    ).rejects.toThrow('the job failed before its read-back');
    await nextInspectionSucceedsFirstTime(3);
  });

  it('a job whose read-back meets the GPU error: it fails with that error, and the next one succeeds on its first attempt', async () => {
    await expect(
      s.processor.withGpu(async (gpu) => {
        recordInvalidDispatch(gpu);
        const probe = gpu.alloc(4, true);
        try {
          return await gpu.readU32(probe);
        } finally {
          gpu.release(probe);
        }
      }),
    ).rejects.toThrow(/^a GPU command failed: Dispatch workgroup count X \(\d+\) exceeds max compute workgroups per dimension/);
    await nextInspectionSucceedsFirstTime(4);
  });
});
