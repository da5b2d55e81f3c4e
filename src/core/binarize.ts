// Binarization on the GPU: one global threshold or a per-pixel threshold map (the baselines; the
// classifier's mask comes out of predict), and the read-back of packed masks.

import type { Gpu, GpuArray } from './gpu.ts';
import { groupsFor, kernels } from './kernels.ts';

/** mask = score > threshold, packed four pixels per u32. */
export function thresholdMask(gpu: Gpu, scores: GpuArray, pixels: number, threshold: number): GpuArray {
  const mask = gpu.alloc(Math.ceil(pixels / 4));
  gpu.run(kernels.thresholdGlobal, { pixels, threshold }, { scores, mask }, groupsFor(Math.ceil(pixels / 4)));
  return mask;
}

/** mask = score > thresholds[p], packed four pixels per u32. */
export function thresholdMapMask(gpu: Gpu, scores: GpuArray, pixels: number, thresholds: GpuArray): GpuArray {
  const mask = gpu.alloc(Math.ceil(pixels / 4));
  gpu.run(kernels.thresholdMap, { pixels, threshold: 0 }, { scores, mask, thresholds }, groupsFor(Math.ceil(pixels / 4)));
  return mask;
}

/** Reads a packed mask back as one byte (0 or 1) per pixel. */
export async function readMask(gpu: Gpu, mask: GpuArray, pixels: number): Promise<Uint8Array> {
  const raw = await gpu.read(mask);
  return new Uint8Array(raw, 0, pixels);
}
