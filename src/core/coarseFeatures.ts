// The host path's features as an extractor computes them: coarse layers (a network's maps at strides 4, 8,
// 16) that stand for their bilinear resampling to the working resolution (features/resample.ts), without
// materializing it. Bilinear resampling is linear, so every step of the host stage that reads the features
// works on the coarse maps: the channel moments (sums of the resampled values and of their squares through
// the resampling weights), the training rows (the resampled value at each labelled pixel only), and the
// prediction (the classifier's weighted sum of a layer's channels is taken on the coarse grid, then that
// one map is resampled). The values are those of the resampled maps up to rounding (f64 here, f32 there).

import { resampleBilinearHost } from './features/resample.ts';
import { LABEL_ANOMALOUS } from './pseudoLabels.ts';
import type { HostPseudoLabels, HostTrainingSet, Standardization } from './hostStage.ts';

/** One coarse layer: planar channels x height x width. */
export interface CoarseLayer {
  readonly data: Float32Array;
  readonly channels: number;
  readonly width: number;
  readonly height: number;
}

/** Features at `width` x `height` given as coarse layers, concatenated in order (channels = the layers' sum). */
export interface CoarseFeatures {
  readonly layers: readonly CoarseLayer[];
  readonly channels: number;
  readonly width: number;
  readonly height: number;
}

/** Per output index along one axis: the two source indices and their weights (as the resampling kernels). */
interface AxisWeights {
  i0: Int32Array;
  i1: Int32Array;
  /** Weight of i1 (fx); i0 gets 1 - fx. */
  f: Float64Array;
}

function axisWeights(src: number, dst: number): AxisWeights {
  const scale = Math.fround(src / dst);
  const i0 = new Int32Array(dst);
  const i1 = new Int32Array(dst);
  const f = new Float64Array(dst);
  for (let x = 0; x < dst; x++) {
    const s = Math.max(Math.fround(Math.fround((x + 0.5) * scale) - 0.5), 0);
    const a = Math.min(Math.floor(s), src - 1);
    i0[x] = a;
    i1[x] = Math.min(a + 1, src - 1);
    f[x] = Math.fround(s - a);
  }
  return { i0, i1, f };
}

/** Total weight each source index receives over all outputs (sum over x of its interpolation weight). */
function weightSums(a: AxisWeights, src: number): Float64Array {
  const s = new Float64Array(src);
  for (let x = 0; x < a.f.length; x++) {
    s[a.i0[x]] += 1 - a.f[x];
    s[a.i1[x]] += a.f[x];
  }
  return s;
}

/** Gram of the weights along one axis: G[j][k] = sum over y of w_j(y) w_k(y); tridiagonal, as diag and upper. */
function weightGram(a: AxisWeights, src: number): { diag: Float64Array; upper: Float64Array } {
  const diag = new Float64Array(src);
  const upper = new Float64Array(src);
  for (let y = 0; y < a.f.length; y++) {
    const p = a.i0[y];
    const q = a.i1[y];
    const wp = 1 - a.f[y];
    const wq = a.f[y];
    if (p === q) {
      diag[p] += (wp + wq) * (wp + wq);
    } else {
      diag[p] += wp * wp;
      diag[q] += wq * wq;
      upper[p] += wp * wq; // q = p + 1
    }
  }
  return { diag, upper };
}

/**
 * Mean and standard deviation (population, over all pixels of the working resolution) of every channel of
 * the resampled maps, from the coarse values alone: the resampling is f = Wy V Wx^T, so sum f = rowW^T V colW
 * (each coarse value times the total weight it receives) and sum f^2 = sum over (j, k) and (i, l) of
 * Gy_jk Gx_il v_ji v_kl, with the Gram matrices G = W^T W of the two axes, which are tridiagonal (bilinear
 * weights touch two neighbouring rows or columns). Values are shifted by each channel's first coarse value
 * (the resampling of a constant is that constant), so that the one-pass variance keeps its precision.
 */
export function coarseMoments(f: CoarseFeatures): Standardization {
  const mean = new Float64Array(f.channels);
  const sd = new Float64Array(f.channels);
  const n = f.width * f.height;
  let c0 = 0;
  for (const l of f.layers) {
    const w = l.width;
    const h = l.height;
    const ax = axisWeights(w, f.width);
    const ay = axisWeights(h, f.height);
    const colW = weightSums(ax, w);
    const rowW = weightSums(ay, h);
    const gx = weightGram(ax, w);
    const gy = weightGram(ay, h);
    const plane = w * h;
    const e = new Float64Array(plane);
    for (let c = 0; c < l.channels; c++) {
      const base = c * plane;
      const shift = l.data[base];
      for (let i = 0; i < plane; i++) e[i] = l.data[base + i] - shift;
      let s = 0;
      let s2 = 0;
      for (let j = 0; j < h; j++) {
        const r = j * w;
        // Row j with itself (Q(j, j)) and with row j + 1 (Q(j, j + 1)) through Gx.
        let sum = 0;
        let same = 0;
        let next = 0;
        const below = j + 1 < h && gy.upper[j] !== 0;
        const r1 = r + w;
        for (let i = 0; i < w; i++) {
          const v = e[r + i];
          sum += colW[i] * v;
          same += gx.diag[i] * v * v;
          if (i + 1 < w) same += 2 * gx.upper[i] * v * e[r + i + 1];
          if (below) {
            next += gx.diag[i] * v * e[r1 + i];
            if (i + 1 < w) next += gx.upper[i] * (v * e[r1 + i + 1] + e[r + i + 1] * e[r1 + i]);
          }
        }
        s += rowW[j] * sum;
        s2 += gy.diag[j] * same + (below ? 2 * gy.upper[j] * next : 0);
      }
      const m = s / n;
      mean[c0 + c] = shift + m;
      sd[c0 + c] = Math.sqrt(Math.max(s2 / n - m * m, 0));
    }
    c0 += l.channels;
  }
  return { mean, sd };
}

/** The resampled value of one coarse channel plane at pixel (x, y) of the working resolution. */
function sampleAt(data: Float32Array, base: number, w: number, ax: AxisWeights, ay: AxisWeights, x: number, y: number): number {
  const r0 = base + ay.i0[y] * w;
  const r1 = base + ay.i1[y] * w;
  const x0 = ax.i0[x];
  const x1 = ax.i1[x];
  const fx = ax.f[x];
  const a = data[r0 + x0];
  const d = data[r1 + x0];
  const top = a + (data[r0 + x1] - a) * fx;
  const bottom = d + (data[r1 + x1] - d) * fx;
  return top + (bottom - top) * ay.f[y];
}

/** hostGather for coarse features: the labelled pixels' resampled values, standardized and rounded to f32. */
export function coarseGather(labels: HostPseudoLabels, f: CoarseFeatures, standardization: Standardization): HostTrainingSet {
  const C = f.channels;
  const rows = labels.pixels.length;
  const x = new Float64Array(rows * C);
  const targets = new Float64Array(rows);
  for (let r = 0; r < rows; r++) targets[r] = labels.labels[labels.pixels[r]] === LABEL_ANOMALOUS ? 1 : -1;
  let c0 = 0;
  for (const l of f.layers) {
    const ax = axisWeights(l.width, f.width);
    const ay = axisWeights(l.height, f.height);
    const plane = l.width * l.height;
    for (let r = 0; r < rows; r++) {
      const p = labels.pixels[r];
      const px = p % f.width;
      const py = (p - px) / f.width;
      for (let c = 0; c < l.channels; c++) {
        const k = c0 + c;
        const sd = standardization.sd[k];
        const v = sampleAt(l.data, c * plane, l.width, ax, ay, px, py);
        x[r * C + k] = sd > 1e-12 ? Math.fround((v - standardization.mean[k]) / sd) : 0;
      }
    }
    c0 += l.channels;
  }
  return { x, targets, rows, channels: C };
}

/**
 * hostPredictMask for coarse features: the decision w' . f + b' (standardization folded) is, per layer, the
 * resampling of the coarse map sum_c w'_c v_c; those maps are resampled and added, and the mask is decision > 0
 * (and score > scoreFloor, and valid).
 */
export function coarsePredictMask(
  weights: readonly number[],
  f: CoarseFeatures,
  standardization: Standardization,
  scores: Float32Array,
  scoreFloor = -Infinity,
  valid?: Uint8Array | null,
): Uint8Array {
  const C = f.channels;
  const n = f.width * f.height;
  let bias = weights[C];
  const w = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const sd = standardization.sd[c];
    w[c] = sd > 1e-12 ? weights[c] / sd : 0;
    bias -= w[c] * standardization.mean[c];
  }
  const decision = new Float64Array(n).fill(bias);
  let c0 = 0;
  for (const l of f.layers) {
    const plane = l.width * l.height;
    const m = new Float64Array(plane);
    for (let c = 0; c < l.channels; c++) {
      const wc = w[c0 + c];
      if (wc === 0) continue;
      const base = c * plane;
      for (let i = 0; i < plane; i++) m[i] += wc * l.data[base + i];
    }
    const ax = axisWeights(l.width, f.width);
    const ay = axisWeights(l.height, f.height);
    const g = new Float64Array(l.height * f.width);
    for (let j = 0; j < l.height; j++) {
      const row = j * l.width;
      const o = j * f.width;
      for (let x = 0; x < f.width; x++) {
        const a = m[row + ax.i0[x]];
        g[o + x] = a + (m[row + ax.i1[x]] - a) * ax.f[x];
      }
    }
    for (let y = 0; y < f.height; y++) {
      const t0 = ay.i0[y] * f.width;
      const t1 = ay.i1[y] * f.width;
      const fy = ay.f[y];
      const o = y * f.width;
      for (let x = 0; x < f.width; x++) {
        const top = g[t0 + x];
        decision[o + x] += top + (g[t1 + x] - top) * fy;
      }
    }
    c0 += l.channels;
  }
  const mask = new Uint8Array(n);
  for (let p = 0; p < n; p++) mask[p] = decision[p] > 0 && scores[p] > scoreFloor && (!valid || valid[p] !== 0) ? 1 : 0;
  return mask;
}

/** The resampled maps themselves (channels x height x width), where the full tensor is needed. */
export function materializeCoarse(f: CoarseFeatures): Float32Array {
  const n = f.width * f.height;
  const out = new Float32Array(f.channels * n);
  let offset = 0;
  for (const l of f.layers) {
    resampleBilinearHost(l.data, l.channels, l, f, out, offset);
    offset += l.channels * n;
  }
  return out;
}
