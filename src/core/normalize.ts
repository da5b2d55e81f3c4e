// Border-profile normalization of the score map on the GPU (shaders/normalize.wgsl), before any statistic:
// see BorderProfile in calibration.ts; the reference is borderNormalize there.

import type { BorderProfile } from './calibration.ts';
import type { Gpu, GpuArray } from './gpu.ts';
import { groupsFor, kernels } from './kernels.ts';

/** A new array: (score - mean[b]) / std[b] for every pixel of the width x height map in `scores`. */
export function normalizeBorder(gpu: Gpu, scores: GpuArray, size: { width: number; height: number }, profile: Pick<BorderProfile, 'mean' | 'std'>): GpuArray {
  const bands = profile.mean.length;
  const packed = new Float32Array(2 * bands);
  for (let b = 0; b < bands; b++) {
    packed[2 * b] = profile.mean[b];
    packed[2 * b + 1] = 1 / profile.std[b];
  }
  const table = gpu.upload(packed);
  const out = gpu.alloc(size.width * size.height);
  gpu.run(kernels.borderNormalize, { width: size.width, height: size.height, bands }, { src: scores, dst: out, profile: table }, groupsFor(size.width * size.height));
  gpu.release(table);
  return out;
}
