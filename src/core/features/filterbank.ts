// The built-in analytic feature extractor: per Gaussian scale, smoothed intensity, first and second
// derivatives, gradient magnitude and local standard deviation (plus smoothed R, G, B for colour images),
// and the raw channels. 1 + 8 per scale channels for grey images, 3 + 11 per scale for colour.

import type { Gpu } from '../gpu.ts';
import { groupsFor, kernels } from '../kernels.ts';
import type { GpuFeatures, ImageTensor } from '../types.ts';
import type { FeatureExtractor } from './extractor.ts';

export const SCALE_CHANNELS = ['smooth', 'dx', 'dy', 'dxx', 'dyy', 'dxy', 'grad', 'std'] as const;
export const COLOUR_CHANNELS = ['R', 'G', 'B'] as const;

/** Normalized Gaussian weights for taps -r..r, r = ceil(3 sigma), as f32. */
export function gaussianTaps(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const w = Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp(-((k - r) ** 2) / (2 * sigma * sigma)));
  const sum = w.reduce((a, b) => a + b, 0);
  return new Float32Array(w.map((v) => v / sum));
}

export function filterbankChannelNames(colour: boolean, sigmas: readonly number[]): string[] {
  const names = colour ? [...COLOUR_CHANNELS] : ['I'];
  for (const s of sigmas) {
    for (const c of SCALE_CHANNELS) names.push(`s${s}.${c}`);
    if (colour) for (const c of COLOUR_CHANNELS) names.push(`s${s}.${c}`);
  }
  return names;
}

export function filterbankExtractor(sigmas: readonly number[]): FeatureExtractor {
  return {
    name: 'filterbank',
    async extract(gpu: Gpu, image: ImageTensor): Promise<GpuFeatures> {
      const { width, height } = image;
      const n = width * height;
      const colour = image.channels === 3;
      const planes = colour ? 5 : 2;
      const perScale = colour ? 11 : 8;
      const raw = gpu.upload(image.data);
      const prepared = gpu.alloc(planes * n);
      const base = { width, height, planes: image.channels, radius: 0 };
      gpu.run(kernels.filterPrepare, base, { src: raw, dst: prepared }, groupsFor(n));
      const tmp = gpu.alloc(planes * n);
      const smooth = gpu.alloc(planes * n);
      const chunks = [{ data: raw, channels: image.channels as number }];
      for (const sigma of sigmas) {
        const taps = gpu.upload(gaussianTaps(sigma));
        const p = { width, height, planes, radius: (taps.length - 1) / 2 };
        gpu.run(kernels.blurH, p, { src: prepared, dst: tmp, taps }, groupsFor(planes * n));
        gpu.run(kernels.blurV, p, { src: tmp, dst: smooth, taps }, groupsFor(planes * n));
        const out = gpu.alloc(perScale * n);
        gpu.run(kernels.derive, p, { src: smooth, dst: out }, groupsFor(n));
        chunks.push({ data: out, channels: perScale });
        gpu.release(taps);
      }
      gpu.release(prepared, tmp, smooth);
      return { chunks, channels: chunks.reduce((a, c) => a + c.channels, 0), width, height, names: filterbankChannelNames(colour, sigmas) };
    },
  };
}
