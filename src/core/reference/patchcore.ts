// Reference of the PatchCore stages (shaders/knn.wgsl, shaders/coreset.wgsl, patchcore/score.ts): nearest
// bank entries, the greedy coreset (f32 arithmetic in the GPU's order, so selections can match exactly) and
// the score map's upsampling and Gaussian smoothing.

import { coresetStart, projectionMatrix } from '../patchcore/coreset.ts';
import { poolBox } from '../patchcore/geometry.ts';
import { referenceBilinear, referenceGaussianSmooth } from './features.ts';

/** Nearest entry of a patch-major bank ([size][channels]) for each query of a dimension-major [channels][stride] array. */
export function referenceNearest(
  bank: Float32Array,
  channels: number,
  queries: Float32Array,
  nq: number,
  stride = nq,
): { distance: Float64Array; index: Uint32Array } {
  const size = bank.length / channels;
  const distance = new Float64Array(nq);
  const index = new Uint32Array(nq);
  for (let q = 0; q < nq; q++) {
    let best = Infinity;
    let bi = 0;
    for (let b = 0; b < size; b++) {
      let s = 0;
      for (let k = 0; k < channels; k++) {
        const d = queries[k * stride + q] - bank[b * channels + k];
        s += d * d;
      }
      if (s < best) {
        best = s;
        bi = b;
      }
    }
    distance[q] = Math.sqrt(best);
    index[q] = bi;
  }
  return { distance, index };
}

/**
 * The approximate search of projectedNearest: bank and queries projected by projectionMatrix(channels, dims,
 * seed); the bank ([size][channels]) in slices of `slice` entries; per slice the entry nearest in the projected
 * space; of those, the one nearest in the full space (exact distance, ties to the lowest index).
 */
export function referenceProjectedNearest(
  bank: Float32Array,
  channels: number,
  queries: Float32Array,
  nq: number,
  stride: number,
  dims: number,
  seed: number,
  slice: number,
): { distance: Float64Array; index: Uint32Array } {
  const size = bank.length / channels;
  const r = projectionMatrix(channels, dims, seed);
  const project = (get: (k: number) => number): Float64Array => {
    const out = new Float64Array(dims);
    for (let k = 0; k < channels; k++) {
      const v = get(k);
      for (let d = 0; d < dims; d++) out[d] += v * r[k * dims + d];
    }
    return out;
  };
  const pb = Array.from({ length: size }, (_, b) => project((k) => bank[b * channels + k]));
  const distance = new Float64Array(nq);
  const index = new Uint32Array(nq);
  for (let q = 0; q < nq; q++) {
    const pq = project((k) => queries[k * stride + q]);
    let best = Infinity;
    let bi = 0;
    for (let s0 = 0; s0 < size; s0 += slice) {
      let pBest = Infinity;
      let c = 0;
      for (let b = s0; b < Math.min(size, s0 + slice); b++) {
        let s = 0;
        for (let d = 0; d < dims; d++) s += (pq[d] - pb[b][d]) ** 2;
        if (s < pBest) {
          pBest = s;
          c = b;
        }
      }
      let e = 0;
      for (let k = 0; k < channels; k++) e += (queries[k * stride + q] - bank[c * channels + k]) ** 2;
      if (e < best) {
        best = e;
        bi = c;
      }
    }
    distance[q] = Math.sqrt(best);
    index[q] = bi;
  }
  return { distance, index };
}

/** Hole patches (valid 0) take the lowest distance of the valid ones (3.0e38 when none is), as fillHolePatches does on the GPU. */
export function referenceFillHoles(distance: Float32Array, valid: Uint8Array): Float32Array {
  const d = Float32Array.from(distance);
  let low = 3.0e38;
  for (let i = 0; i < d.length; i++) if (valid[i] && d[i] < low) low = d[i];
  for (let i = 0; i < d.length; i++) if (!valid[i]) d[i] = low;
  return d;
}

/** The greedy k-center selection of `count` patches, as greedyCoreset computes it. */
export function referenceCoreset(points: Float32Array, channels: number, count: number, projectionDims: number, seed: number): Uint32Array {
  const size = points.length / channels;
  if (count >= size) return Uint32Array.from({ length: size }, (_, i) => i);
  const f = Math.fround;
  let dims = channels;
  let x = points;
  if (channels > projectionDims) {
    dims = projectionDims;
    const r = projectionMatrix(channels, dims, seed);
    x = new Float32Array(size * dims);
    for (let i = 0; i < size; i++) {
      for (let d = 0; d < dims; d++) {
        let s = 0;
        for (let k = 0; k < channels; k++) s += points[i * channels + k] * r[k * dims + d];
        x[i * dims + d] = s;
      }
    }
  }
  const minDist = new Float32Array(size).fill(3.0e38);
  const out = new Uint32Array(count);
  out[0] = coresetStart(size, seed);
  for (let it = 1; it < count; it++) {
    const c = out[it - 1] * dims;
    let best = -2;
    let bi = 0;
    for (let i = 0; i < size; i++) {
      let acc = 0;
      for (let k = 0; k < dims; k++) {
        const d = f(x[i * dims + k] - x[c + k]);
        acc = f(acc + f(d * d));
      }
      if (acc < minDist[i]) minDist[i] = acc;
      if (minDist[i] > best) {
        best = minDist[i];
        bi = i;
      }
    }
    out[it] = bi;
  }
  return out;
}

/** Largest distance from any point to its nearest selected point (the coreset's covering radius). */
export function coveringRadius(points: Float32Array, channels: number, selected: ArrayLike<number>): number {
  const size = points.length / channels;
  let worst = 0;
  for (let i = 0; i < size; i++) {
    let best = Infinity;
    for (let j = 0; j < selected.length; j++) {
      let s = 0;
      for (let k = 0; k < channels; k++) {
        const d = points[i * channels + k] - points[selected[j] * channels + k];
        s += d * d;
      }
      best = Math.min(best, s);
    }
    worst = Math.max(worst, best);
  }
  return Math.sqrt(worst);
}

/** Patch distances on the grid -> bilinear to the working size -> Gaussian smoothing -> bilinear to the output size. */
export function referenceScoreMap(
  distances: Float32Array,
  grid: { width: number; height: number },
  working: { width: number; height: number },
  sigma: number,
  output: { width: number; height: number } = working,
): Float32Array {
  const up = referenceBilinear(distances, 1, grid, working);
  const smooth = referenceGaussianSmooth(up, working.width, working.height, sigma);
  return output.width === working.width && output.height === working.height ? smooth : referenceBilinear(smooth, 1, working, output);
}

/**
 * Masked box pooling (shaders/pool.wgsl): per channel of planar `data` (`from` size), each grid cell's mean
 * over the valid pixels of its box, 0 without any; dimension-major [channels][outStride].
 */
export function referencePoolBoxes(
  data: Float32Array,
  channels: number,
  from: { width: number; height: number },
  valid: Uint8Array,
  grid: { width: number; height: number },
  outStride = grid.width * grid.height,
): Float32Array {
  const out = new Float32Array(channels * outStride);
  const plane = from.width * from.height;
  for (let c = 0; c < channels; c++) {
    for (let gy = 0; gy < grid.height; gy++) {
      const [y0, y1] = poolBox(gy, from.height, grid.height);
      for (let gx = 0; gx < grid.width; gx++) {
        const [x0, x1] = poolBox(gx, from.width, grid.width);
        let s = 0;
        let n = 0;
        for (let y = y0; y < y1; y++) {
          for (let x = x0; x < x1; x++) {
            const p = y * from.width + x;
            if (!valid[p]) continue;
            s += data[c * plane + p];
            n++;
          }
        }
        out[c * outStride + gy * grid.width + gx] = n > 0 ? s / n : 0;
      }
    }
  }
  return out;
}
