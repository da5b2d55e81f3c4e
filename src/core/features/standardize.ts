// Per-channel standardization of feature maps on the GPU: x <- w (x - mean_c) / std_c, in place, with w the
// channel's group weight (features/groups.ts; 1 without groups).

import type { Gpu, GpuArray } from '../gpu.ts';
import { kernels } from '../kernels.ts';
import { moments } from '../stats.ts';
import type { GpuFeatures } from '../types.ts';
import { maskedSpec, noValidity, type GpuValidity } from '../validity.ts';
import { chunkWeights } from './groups.ts';

/** With a validity mask, the moments are taken over the valid pixels and the others are set to 0. */
export function standardizeChunk(gpu: Gpu, feat: GpuArray, channels: number, plane: number, validity?: GpuValidity | null, weight = 1): void {
  const valid = validity ?? noValidity(gpu);
  const m = moments(gpu, feat, channels, plane, valid);
  gpu.run(maskedSpec(kernels.standardize, valid), { plane, planes: channels, weight }, { feat, moments: m, valid: valid.data }, [Math.ceil(plane / (256 * 64)), channels, 1]);
  gpu.release(m);
}

export function standardizeFeatures(gpu: Gpu, features: GpuFeatures, validity?: GpuValidity | null): void {
  const weights = chunkWeights(features.groups, features.chunks);
  features.chunks.forEach((chunk, k) => standardizeChunk(gpu, chunk.data, chunk.channels, features.width * features.height, validity, weights[k]));
}
