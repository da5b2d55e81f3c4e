// Synthetic inspection samples with known defects, for tests, benchmarks and the quick start: a textured
// surface with dark blobs and bright scratches, the score map a detector would give (smooth peaks over the
// defects on a noisy background, optionally at a coarser stride), and the ground-truth mask. Seeded and
// runtime-agnostic (no Node APIs).

import { pcgHash } from './core/rng.ts';
import type { FeatureTensor, ImageTensor, ScoreMap } from './core/types.ts';

export interface SyntheticSample {
  image: ImageTensor;
  scoreMap: ScoreMap;
  groundTruth: Uint8Array;
}

export interface SyntheticOptions {
  width: number;
  height: number;
  seed?: number;
  /** Number of defects (0 gives a defect-free sample). */
  defects?: number;
  /** The score map is this many times smaller than the image. */
  mapStride?: number;
  /** Amplitude of the score map's background noise (defects peak at about 1). */
  noise?: number;
  colour?: boolean;
}

/** A seeded stream of uniform floats in [0, 1). */
export function uniformStream(seed: number): () => number {
  let counter = 0;
  const key = pcgHash(seed >>> 0);
  return () => pcgHash((key ^ pcgHash(counter++)) >>> 0) / 4294967296;
}

function gaussianBlur(src: Float32Array, width: number, height: number, sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const taps = Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp(-((k - r) ** 2) / (2 * sigma * sigma)));
  const s = taps.reduce((a, b) => a + b, 0);
  const w = taps.map((v) => v / s);
  const tmp = new Float32Array(src.length);
  const out = new Float32Array(src.length);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = -r; k <= r; k++) acc += w[k + r] * src[y * width + Math.min(Math.max(x + k, 0), width - 1)];
      tmp[y * width + x] = acc;
    }
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = -r; k <= r; k++) acc += w[k + r] * tmp[Math.min(Math.max(y + k, 0), height - 1) * width + x];
      out[y * width + x] = acc;
    }
  return out;
}

export function syntheticSample(opts: SyntheticOptions): SyntheticSample {
  const { width, height } = opts;
  const seed = opts.seed ?? 1;
  const defects = opts.defects ?? 2;
  const stride = opts.mapStride ?? 1;
  const noise = opts.noise ?? 0.25;
  const rnd = uniformStream(seed);
  const n = width * height;
  const grey = new Float32Array(n);
  const fx = 2 + rnd() * 4;
  const fy = 2 + rnd() * 4;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      grey[y * width + x] =
        0.5 + 0.08 * Math.sin((2 * Math.PI * fx * x) / width) * Math.cos((2 * Math.PI * fy * y) / height) + 0.04 * (rnd() - 0.5);
    }
  const truth = new Uint8Array(n);
  const scale = Math.min(width, height);
  for (let d = 0; d < defects; d++) {
    const cx = (0.15 + 0.7 * rnd()) * width;
    const cy = (0.15 + 0.7 * rnd()) * height;
    if (d % 2 === 0) {
      // A dark elliptical blob.
      const rx = scale * (0.03 + 0.05 * rnd());
      const ry = scale * (0.03 + 0.05 * rnd());
      for (let y = Math.max(0, Math.floor(cy - ry)); y <= Math.min(height - 1, Math.ceil(cy + ry)); y++)
        for (let x = Math.max(0, Math.floor(cx - rx)); x <= Math.min(width - 1, Math.ceil(cx + rx)); x++) {
          if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) {
            grey[y * width + x] -= 0.3;
            truth[y * width + x] = 1;
          }
        }
    } else {
      // A bright scratch: a thick line segment.
      const len = scale * (0.15 + 0.2 * rnd());
      const ang = rnd() * Math.PI;
      const half = Math.max(1, scale * 0.008);
      const dx = Math.cos(ang);
      const dy = Math.sin(ang);
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++) {
          const t = (x - cx) * dx + (y - cy) * dy;
          const perp = Math.abs(-(x - cx) * dy + (y - cy) * dx);
          if (Math.abs(t) <= len / 2 && perp <= half) {
            grey[y * width + x] += 0.25;
            truth[y * width + x] = 1;
          }
        }
    }
  }
  for (let i = 0; i < n; i++) grey[i] = Math.min(1, Math.max(0, grey[i]));

  // The detector's view: defects blurred into smooth peaks over smoothed background noise.
  const peaks = gaussianBlur(Float32Array.from(truth), width, height, Math.max(1, scale / 64));
  const bg = new Float32Array(n);
  for (let i = 0; i < n; i++) bg[i] = rnd();
  const smoothBg = gaussianBlur(bg, width, height, Math.max(1, scale / 48));
  let bgMin = Infinity;
  let bgMax = -Infinity;
  for (const v of smoothBg) {
    bgMin = Math.min(bgMin, v);
    bgMax = Math.max(bgMax, v);
  }
  const full = new Float32Array(n);
  for (let i = 0; i < n; i++) full[i] = 0.1 + peaks[i] + (noise * (smoothBg[i] - bgMin)) / Math.max(bgMax - bgMin, 1e-9);
  const mw = Math.max(1, Math.round(width / stride));
  const mh = Math.max(1, Math.round(height / stride));
  const map = new Float32Array(mw * mh);
  for (let y = 0; y < mh; y++)
    for (let x = 0; x < mw; x++) {
      // Box-average the covered pixels, as a strided detector would.
      const x0 = Math.floor((x * width) / mw);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * width) / mw));
      const y0 = Math.floor((y * height) / mh);
      const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * height) / mh));
      let s = 0;
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += full[yy * width + xx];
      map[y * mw + x] = s / ((x1 - x0) * (y1 - y0));
    }

  let image: ImageTensor;
  if (opts.colour) {
    const data = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      data[i] = Math.min(1, grey[i] * 1.05);
      data[n + i] = grey[i];
      data[2 * n + i] = Math.max(0, grey[i] * 0.9);
    }
    image = { data, width, height, channels: 3 };
  } else {
    image = { data: grey, width, height, channels: 1 };
  }
  return { image, scoreMap: { data: map, width: mw, height: mh }, groundTruth: truth };
}

/** Random feature maps C x h x w with a defect-correlated channel, for the supplied-features path. */
export function syntheticFeatures(sample: SyntheticSample, channels: number, stride: number, seed = 7): FeatureTensor {
  const { width, height } = sample.image;
  const w = Math.max(1, Math.round(width / stride));
  const h = Math.max(1, Math.round(height / stride));
  const rnd = uniformStream(seed);
  const data = new Float32Array(channels * w * h);
  for (let c = 0; c < channels; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const gx = Math.min(width - 1, Math.floor(((x + 0.5) * width) / w));
        const gy = Math.min(height - 1, Math.floor(((y + 0.5) * height) / h));
        const signal = c % 4 === 0 ? sample.groundTruth[gy * width + gx] : sample.image.data[gy * width + gx];
        data[c * w * h + y * w + x] = signal + 0.2 * (rnd() - 0.5);
      }
  return { data, channels, width: w, height: h };
}
