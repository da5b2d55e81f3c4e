// Per-channel standardization of feature maps on the GPU: x <- (x - mean_c) / std_c, in place.

import type { Gpu, GpuArray } from '../gpu.ts';
import { kernels } from '../kernels.ts';
import { moments } from '../stats.ts';
import type { GpuFeatures } from '../types.ts';
import { maskedSpec, noValidity, type GpuValidity } from '../validity.ts';

/** With a validity mask, the moments are taken over the valid pixels and the others are set to 0. */
export function standardizeChunk(gpu: Gpu, feat: GpuArray, channels: number, plane: number, validity?: GpuValidity | null): void {
  const valid = validity ?? noValidity(gpu);
  const m = moments(gpu, feat, channels, plane, valid);
  gpu.run(maskedSpec(kernels.standardize, valid), { plane, planes: channels }, { feat, moments: m, valid: valid.data }, [Math.ceil(plane / (256 * 64)), channels, 1]);
  gpu.release(m);
}

export function standardizeFeatures(gpu: Gpu, features: GpuFeatures, validity?: GpuValidity | null): void {
  for (const chunk of features.chunks) standardizeChunk(gpu, chunk.data, chunk.channels, features.width * features.height, validity);
}
