// The built-in scorer on RGB plus 3-D features: the pooling of the 3-D features to the patch grid (GPU
// against the reference), the version 2 bank (modality, scales, normalization; version 1 files still load),
// typed errors for a bank given the wrong inputs, and on the synthetic MVTec 3D-AD-layout dataset, a 3-D or
// combined bank that finds the dents the image does not show.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geometryChannels, geometryChannelsRaw, preparePointCloud } from '../../src/core/features/geometry.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { auroc } from '../../src/core/patchcore/auroc.ts';
import { decodeBank, encodeBank, type BankModality, type MemoryBank } from '../../src/core/patchcore/bank.ts';
import { geometryPatchFeatures, poolBoxes, poolCounts } from '../../src/core/patchcore/geometry.ts';
import { bankNormalization, buildBank, PATCHCORE_DEFAULTS, PatchCoreScorer, patchGrid, workingShape, type BankSample } from '../../src/core/patchcore/patchcore.ts';
import { referenceGeometryRaw } from '../../src/core/reference/geometry.ts';
import { referencePoolBoxes } from '../../src/core/reference/patchcore.ts';
import { pointValidity, resampleValidity } from '../../src/core/validity.ts';
import { loadImage, loadMask, loadPointCloud, openDataset, type DatasetImage } from '../../src/eval/dataset.ts';
import { writeSynthetic3dDataset } from '../../src/eval/syntheticDataset.ts';
import { registerMobileNet } from '../../src/models/nsfwjs.ts';
import { synthetic3dSample } from '../../src/synthetic3d.ts';
import { maxAbsDiff, testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
let dir: string;
beforeAll(async () => {
  gpu = await testGpu();
  registerMobileNet();
  dir = await mkdtemp(join(tmpdir(), 'ttt-mm-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sample = (seed: number, defects = 0, width = 80) => synthetic3dSample({ width, height: Math.round(width * 0.75), seed, defects });

describe('3-D features pooled to the patch grid (GPU against the reference)', () => {
  it('averages the valid points of each box, 0 for a box without any, at the dimension-major stride', async () => {
    const s = sample(3, 2, 83); // 83 x 62: boxes of uneven widths
    const pc = preparePointCloud(s.pointCloud);
    const working = { width: 64, height: 48 };
    const scales = [2, 4];
    const channels = geometryChannels(scales);
    const raw = referenceGeometryRaw(pc, scales, working);
    const grid = { width: 11, height: 9 };
    const stride = Math.ceil((grid.width * grid.height) / 4) * 4;
    const src = gpu.upload(raw.data);
    const dst = gpu.alloc(channels * stride, true);
    poolBoxes(gpu, src, channels, pc, pc.valid, grid, dst, stride);
    const got = await gpu.readF32(dst, channels * stride);
    gpu.release(src, dst);
    const want = referencePoolBoxes(raw.data, channels, pc, pc.valid, grid, stride);
    // f32 sums of at most 8 x 7 values against f64: within 1e-5 relative to the channel's largest value.
    for (let c = 0; c < channels; c++) {
      const sl = (a: Float32Array) => a.subarray(c * stride, (c + 1) * stride);
      const scale = Math.max(1e-6, ...Array.from(sl(want), Math.abs));
      expect(maxAbsDiff(sl(got), sl(want)) / scale).toBeLessThan(1e-5);
    }
    const counts = poolCounts(pc.valid, pc, grid);
    expect(counts[0]).toBe(0); // the corner is off the part: a hole box
    for (let c = 0; c < channels; c++) expect(got[c * stride]).toBe(0);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(pc.validCount); // the boxes tile the cloud
  });

  it('geometryPatchFeatures = the raw 3-D channels (GPU) pooled, with the boxes holding a valid point', async () => {
    const s = sample(4, 1);
    const working = workingShape(s.image, 64);
    const grid = patchGrid(working, 8);
    const g = await geometryPatchFeatures(gpu, s.pointCloud, working, grid, [2, 4]);
    const stride = Math.ceil((grid.width * grid.height) / 4) * 4;
    const got = await gpu.readF32(g.data, g.channels * stride);
    gpu.release(g.data);
    const pc = preparePointCloud(s.pointCloud);
    const raw = await geometryChannelsRaw(gpu, pc, [2, 4], working);
    const rawData = await gpu.readF32(raw.data, g.channels * pc.width * pc.height);
    gpu.release(raw.data);
    const want = referencePoolBoxes(rawData, g.channels, pc, pc.valid, grid, stride);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
    expect(Array.from(g.valid)).toEqual(Array.from(poolCounts(pc.valid, pc, grid), (n) => (n > 0 ? 1 : 0)));
  });
});
