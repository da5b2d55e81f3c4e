// Per-channel standardization of feature maps on the GPU: x <- (x - mean_c) / std_c, in place.

import type { Gpu, GpuArray } from '../gpu.ts';
import { kernels } from '../kernels.ts';
import { moments } from '../stats.ts';
import type { GpuFeatures } from '../types.ts';

export function standardizeChunk(gpu: Gpu, feat: GpuArray, channels: number, plane: number): void {
  const m = moments(gpu, feat, channels, plane);
  gpu.run(kernels.standardize, { plane, planes: channels, pad0: 0, pad1: 0 }, { feat, moments: m }, [Math.ceil(plane / (256 * 64)), channels, 1]);
  gpu.release(m);
}

export function standardizeFeatures(gpu: Gpu, features: GpuFeatures): void {
  for (const chunk of features.chunks) standardizeChunk(gpu, chunk.data, chunk.channels, features.width * features.height);
}
