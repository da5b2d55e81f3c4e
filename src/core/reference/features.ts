// Reference of the feature stage: bilinear resampling, the filterbank and per-channel standardization,
// in f64 with f32 storage, following shaders/features.wgsl and shaders/filterbank.wgsl.

import { gaussianTaps } from '../features/filterbank.ts';
import type { FeatureTensor, ImageTensor } from '../types.ts';

export function referenceBilinear(
  src: Float32Array,
  planes: number,
  from: { width: number; height: number },
  to: { width: number; height: number },
): Float32Array {
  const { width: sw, height: sh } = from;
  const { width: dw, height: dh } = to;
  const out = new Float32Array(planes * dw * dh);
  const scaleX = Math.fround(sw / dw);
  const scaleY = Math.fround(sh / dh);
  for (let c = 0; c < planes; c++) {
    const base = c * sw * sh;
    for (let y = 0; y < dh; y++) {
      const sy = Math.max((y + 0.5) * scaleY - 0.5, 0);
      const y0 = Math.min(Math.floor(sy), sh - 1);
      const y1 = Math.min(y0 + 1, sh - 1);
      const fy = sy - y0;
      for (let x = 0; x < dw; x++) {
        const sx = Math.max((x + 0.5) * scaleX - 0.5, 0);
        const x0 = Math.min(Math.floor(sx), sw - 1);
        const x1 = Math.min(x0 + 1, sw - 1);
        const fx = sx - x0;
        const a = src[base + y0 * sw + x0];
        const b = src[base + y0 * sw + x1];
        const d = src[base + y1 * sw + x0];
        const e = src[base + y1 * sw + x1];
        const top = a + (b - a) * fx;
        const bottom = d + (e - d) * fx;
        out[c * dw * dh + y * dw + x] = top + (bottom - top) * fy;
      }
    }
  }
  return out;
}

/** Separable Gaussian smoothing with replicated edges, f32 storage between the passes (as the GPU). */
export function referenceGaussianSmooth(src: ArrayLike<number>, width: number, height: number, sigma: number): Float32Array {
  return Float32Array.from(blur(src, width, height, gaussianTaps(sigma)));
}

function blur(src: ArrayLike<number>, width: number, height: number, taps: Float32Array): Float64Array {
  const r = (taps.length - 1) / 2;
  const tmp = new Float64Array(width * height);
  const out = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = -r; k <= r; k++) acc += taps[k + r] * src[y * width + Math.min(Math.max(x + k, 0), width - 1)];
      tmp[y * width + x] = Math.fround(acc);
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = -r; k <= r; k++) acc += taps[k + r] * tmp[Math.min(Math.max(y + k, 0), height - 1) * width + x];
      out[y * width + x] = Math.fround(acc);
    }
  }
  return out;
}

/** Filterbank channels (not standardized), in the order of filterbankChannelNames. */
export function referenceFilterbank(image: ImageTensor, sigmas: readonly number[]): FeatureTensor {
  const { width, height } = image;
  const n = width * height;
  const colour = image.channels === 3;
  const planes: Float64Array[] = [];
  const intensity = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    intensity[i] = colour
      ? Math.fround(0.299 * image.data[i] + 0.587 * image.data[n + i] + 0.114 * image.data[2 * n + i])
      : image.data[i];
  }
  planes.push(intensity, intensity.map((v) => Math.fround(v * v)));
  if (colour) for (let c = 0; c < 3; c++) planes.push(Float64Array.from(image.data.subarray(c * n, (c + 1) * n)));
  const perScale = colour ? 11 : 8;
  const channels = image.channels + perScale * sigmas.length;
  const out = new Float32Array(channels * n);
  out.set(image.data.subarray(0, image.channels * n), 0);
  let ch = image.channels;
  for (const sigma of sigmas) {
    const taps = gaussianTaps(sigma);
    const sm = planes.map((p) => blur(p, width, height, taps));
    const at = (x: number, y: number) =>
      sm[0][Math.min(Math.max(y, 0), height - 1) * width + Math.min(Math.max(x, 0), width - 1)];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        const c = at(x, y);
        const dx = 0.5 * (at(x + 1, y) - at(x - 1, y));
        const dy = 0.5 * (at(x, y + 1) - at(x, y - 1));
        out[ch * n + i] = c;
        out[(ch + 1) * n + i] = dx;
        out[(ch + 2) * n + i] = dy;
        out[(ch + 3) * n + i] = at(x + 1, y) - 2 * c + at(x - 1, y);
        out[(ch + 4) * n + i] = at(x, y + 1) - 2 * c + at(x, y - 1);
        out[(ch + 5) * n + i] = 0.25 * (at(x + 1, y + 1) - at(x + 1, y - 1) - (at(x - 1, y + 1) - at(x - 1, y - 1)));
        out[(ch + 6) * n + i] = Math.sqrt(dx * dx + dy * dy);
        out[(ch + 7) * n + i] = Math.sqrt(Math.max(sm[1][i] - c * c, 0));
        if (colour) for (let k = 0; k < 3; k++) out[(ch + 8 + k) * n + i] = sm[2 + k][i];
      }
    }
    ch += perScale;
  }
  return { data: out, channels, width, height };
}

/**
 * In place: every channel to zero mean and unit (population) standard deviation; constant -> 0. With a
 * validity mask, the statistics are over the valid pixels and the others become 0. With `weights` (one per
 * channel, features/groups.ts), each channel is then multiplied by its weight.
 */
export function referenceStandardize(f: FeatureTensor, valid?: Uint8Array | null, weights?: ArrayLike<number> | null): FeatureTensor {
  const n = f.width * f.height;
  const ok = (i: number) => !valid || valid[i] !== 0;
  for (let c = 0; c < f.channels; c++) {
    const ch = f.data.subarray(c * n, (c + 1) * n);
    let sum = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (!ok(i)) continue;
      sum += ch[i];
      count++;
    }
    const mean = sum / Math.max(count, 1);
    let ss = 0;
    for (let i = 0; i < n; i++) if (ok(i)) ss += (ch[i] - mean) ** 2;
    const sd = Math.sqrt(ss / Math.max(count, 1));
    // Times the channel's group weight (features/groups.ts), when given.
    const w = weights ? weights[c] : 1;
    for (let i = 0; i < n; i++) ch[i] = sd > 1e-12 && ok(i) ? (w * (ch[i] - mean)) / sd : 0;
  }
  return f;
}
