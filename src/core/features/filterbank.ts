// The built-in analytic feature extractor: per Gaussian scale, smoothed intensity, first and second
// derivatives, gradient magnitude and local standard deviation (plus smoothed R, G, B for colour images),
// and the raw channels. 1 + 8 per scale channels for grey images, 3 + 11 per scale for colour.

import type { Gpu, GpuArray } from '../gpu.ts';
import { BLUR_ROWS, imageGroups, kernels } from '../kernels.ts';
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

/** Separable Gaussian smoothing of `planes` planes on the GPU, edges replicated; returns a new array. */
export function gaussianSmooth(gpu: Gpu, src: GpuArray, planes: number, width: number, height: number, sigma: number): GpuArray {
  const n = width * height;
  const taps = gpu.upload(gaussianTaps(sigma));
  const tmp = gpu.alloc(planes * n);
  const out = gpu.alloc(planes * n);
  const p = { width, height, planes, radius: (taps.length - 1) / 2, outChannel: 0 };
  const rowBlocks = imageGroups(width, Math.ceil(height / BLUR_ROWS), planes);
  gpu.run(kernels.blurH, p, { src, dst: tmp, taps }, rowBlocks);
  gpu.run(kernels.blurV, p, { src: tmp, dst: out, taps }, rowBlocks);
  gpu.release(taps, tmp);
  return out;
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
      const channels = image.channels + perScale * sigmas.length;
      // One buffer for all channels when it fits one binding (one predict pass), else one per scale.
      const single = channels * n <= gpu.maxElements;
      const raw = gpu.upload(image.data);
      const prepared = gpu.alloc(planes * n);
      const base = { width, height, planes: image.channels, radius: 0, outChannel: 0 };
      gpu.run(kernels.filterPrepare, base, { src: raw, dst: prepared }, imageGroups(width, height));
      let chunks: { data: GpuArray; channels: number }[];
      let all: GpuArray | null = null;
      if (single) {
        all = gpu.alloc(channels * n);
        gpu.copy(raw, all, image.channels * n);
        gpu.release(raw);
        chunks = [{ data: all, channels }];
      } else {
        chunks = [{ data: raw, channels: image.channels }];
      }
      sigmas.forEach((sigma, k) => {
        const smooth = gaussianSmooth(gpu, prepared, planes, width, height, sigma);
        const out = all ?? gpu.alloc(perScale * n);
        const outChannel = all ? image.channels + k * perScale : 0;
        gpu.run(kernels.derive, { ...base, planes, outChannel }, { src: smooth, dst: out }, imageGroups(width, height));
        if (!all) chunks.push({ data: out, channels: perScale });
        gpu.release(smooth);
      });
      gpu.release(prepared);
      return { chunks, channels, width, height, names: filterbankChannelNames(colour, sigmas) };
    },
  };
}
