// checkRunnable / planRun: the buffers and dispatches a run needs against a device's limits (issue 16,
// item 5), with explicit limits (the numbers a device reports), and against the run itself on this device.

import { beforeAll, describe, expect, it } from 'vitest';
import { TttError } from '../../src/core/errors.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { segment } from '../../src/core/pipeline.ts';
import { deviceLimits, planRun, type DeviceLimits } from '../../src/core/plan.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { testGpu } from '../helpers/gpu.ts';

registerMobileNet();

const limits = (floats: number, groups = 65535): DeviceLimits => ({ maxStorageBufferBindingSize: floats * 4, maxComputeWorkgroupsPerDimension: groups });
const colour = (width: number, height: number) => ({ image: { width, height, channels: 3 } });

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof TttError)) throw new Error(`expected a TttError, got ${String(e)}`);
  return { code: e.code, message: e.message };
}

describe('planRun', () => {
  const filterbank = resolveOptions({ 'features.extractor': 'filterbank', 'features.sigmas': [1, 2], 'pseudoLabels.nominalCount': 100 });

  it('filterbank: one scale of 11 colour channels must fit one buffer (the exact threshold)', async () => {
    await expect(planRun(limits(11 * 1000), colour(40, 25), filterbank)).resolves.toBe(11 * 1000);
    expect(await refusal(planRun(limits(11 * 1000 - 1), colour(40, 25), filterbank))).toEqual({
      code: 'TOO_LARGE',
      message: 'the filterbank on 40x25 pixels (11 channels per scale) needs 11000 floats in one buffer, more than this device\'s largest storage buffer (maxStorageBufferBindingSize 43996 bytes = 10999 floats)',
    });
  });

  it('combined: each source is planned (the filterbank scale must fit; the image source adds its channels)', async () => {
    const both = resolveOptions({ 'features.extractor': 'combined', 'features.sources': 'image,filterbank', 'features.sigmas': [1, 2], 'pseudoLabels.nominalCount': 100 });
    await expect(planRun(limits(11 * 1000), colour(40, 25), both)).resolves.toBe(11 * 1000);
    expect((await refusal(planRun(limits(11 * 1000 - 1), colour(40, 25), both))).message).toMatch(/^the filterbank on 40x25 pixels/);
    // 3 image + 25 filterbank channels: 101 training rows of 28 features.
    const many = resolveOptions({ 'features.extractor': 'combined', 'features.sources': 'image,filterbank', 'features.sigmas': [1, 2], 'pseudoLabels.nominalCount': 1000 });
    await expect(planRun(limits(1e6), colour(40, 25), many)).resolves.toBe(1001 * 28);
  });

  it('a side over what the image kernels dispatch: TOO_LARGE naming the size and the workgroup limit', async () => {
    expect(await refusal(planRun(limits(1e9), colour(1, 262_141), filterbank))).toEqual({
      code: 'TOO_LARGE',
      message: 'the image is 1x262141: the image kernels take at most 262140 rows and 4194240 columns (maxComputeWorkgroupsPerDimension 65535)',
    });
    await expect(planRun(limits(1e9), colour(1, 262_140), filterbank)).resolves.toBeGreaterThan(0);
  });

  it('mobilenetv2: a 1 x 60000 image at its own size is over the 2048-pixel network side; features.inputSize over the binding names the option', async () => {
    const net = { 'features.extractor': 'mobilenetv2' };
    const defaults = resolveOptions(net);
    expect(await refusal(planRun(limits(1e9), colour(1, 60_000), defaults))).toEqual({
      code: 'TOO_LARGE',
      message: "the network input would be 1x60000 (the image's size, features.inputSize=0): at most 2048 pixels per side; set features.inputSize to at most 2048",
    });
    const big = resolveOptions({ ...net, 'features.inputSize': 2048 });
    const r = await refusal(planRun(limits(2 ** 25), colour(64, 64), big));
    expect(r.code).toBe('INVALID_OPTION');
    expect(r.message).toMatch(/^option features\.inputSize: a network input of 2048x2048: .* needs \d+ floats in one buffer, more than this device's largest storage buffer \(maxStorageBufferBindingSize 134217728 bytes = 33554432 floats\)$/);
    // 1024 fits the same device.
    await expect(planRun(limits(2 ** 25), colour(64, 64), resolveOptions({ 'features.inputSize': 1024 }))).resolves.toBeLessThanOrEqual(2 ** 25);
    // Among combined sources the network is planned the same way.
    const inCombined = resolveOptions({ 'features.extractor': 'combined', 'features.sources': 'image,mobilenetv2', 'features.inputSize': 2048 });
    expect((await refusal(planRun(limits(2 ** 25), colour(64, 64), inCombined))).code).toBe('INVALID_OPTION');
  });

  it('pseudoLabels.nominalCount x feature channels over one buffer names pseudoLabels.nominalCount', async () => {
    const o = resolveOptions({ 'features.extractor': 'filterbank', 'features.sigmas': [1], 'pseudoLabels.nominalCount': 100_000 });
    // 3 + 11 = 14 channels; the map itself needs 64 * 64 floats.
    const r = await refusal(planRun(limits(100_000 * 14), colour(64, 64), o));
    expect(r).toEqual({
      code: 'INVALID_OPTION',
      message: "option pseudoLabels.nominalCount: 100000 nominal pseudo-labels of 14 features needs 1400014 floats in one buffer, more than this device's largest storage buffer (maxStorageBufferBindingSize 5600000 bytes = 1400000 floats)",
    });
  });

  it('3-D features: a point cloud is required by modality 3d, and its channels at the larger resolution must fit', async () => {
    const o = resolveOptions({ 'features.modality': '3d', 'features.geometryScales': [2, 4] });
    expect(await refusal(planRun(limits(1e9), colour(32, 32), o))).toEqual({ code: 'INVALID_INPUT', message: 'features.modality=3d needs a point cloud, and none was given' });
    // 1 + 6 x 2 = 13 channels of a 64 x 64 cloud.
    await expect(planRun(limits(13 * 4096), { ...colour(32, 32), pointCloud: { width: 64, height: 64 } }, o)).resolves.toBe(13 * 4096);
    expect((await refusal(planRun(limits(13 * 4096 - 1), { ...colour(32, 32), pointCloud: { width: 64, height: 64 } }, o))).message).toMatch(/^option features\.geometryScales: the 13 3-D feature channels of 4096 pixels needs 53248 floats/);
  });
});

describe('segment refuses, before any GPU work, what the plan refuses on this device', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await testGpu();
  });

  it('the same typed error as the plan, and the device runs the next segment', async () => {
    const s = syntheticSample({ width: 1, height: 4, seed: 1 });
    const tall = { image: { ...s.image, width: 1, height: 300_000, data: new Float32Array(300_000) }, scoreMap: { width: 1, height: 300_000, data: Float32Array.from({ length: 300_000 }, (_, i) => i % 7) } };
    const o = resolveOptions({ 'features.extractor': 'filterbank' });
    const planned = await refusal(planRun(deviceLimits(gpu.device), { image: tall.image, scoreMap: tall.scoreMap }, o));
    expect(await refusal(segment(gpu, tall, o))).toEqual(planned);
    expect(planned.code).toBe('TOO_LARGE');
    const ok = syntheticSample({ width: 48, height: 48, seed: 2 });
    await expect(segment(gpu, ok, o)).resolves.toMatchObject({ width: 48, height: 48 });
  });
});
