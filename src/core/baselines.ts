// The threshold baselines test-time training is compared against, on the GPU: calibrated global and
// per-pixel thresholds, Otsu on the score histogram, MEBin; and the oracle threshold for evaluation.
// Only small statistics come back to the host, except for MEBin, which reads back the eroded map to count
// connected components on the CPU (see mebin.ts).

import { readMask, thresholdMapMask, thresholdMask } from './binarize.ts';
import type { Calibration } from './calibration.ts';
import { TttError } from './errors.ts';
import { resampleBilinear } from './features/resample.ts';
import type { Gpu, GpuArray } from './gpu.ts';
import { HISTOGRAM_BINS, groupsFor, kernels } from './kernels.ts';
import { MEBIN, mebinThreshold } from './mebin.ts';
import { binLowerEdge, histogramInto, histogramScale, moments } from './stats.ts';
import type { ScoreMap } from './types.ts';
import { checkDimensions, checkFinite } from './validate.ts';

export type BaselineMethod = 'thr_global_3sigma' | 'thr_global_1sigma' | 'thr_pixel_3sigma' | 'max_nominal' | 'otsu' | 'mebin';

export interface BaselineMethodInfo {
  readonly method: BaselineMethod;
  readonly description: string;
  readonly needsCalibration: boolean;
}

export const BASELINE_METHODS: readonly BaselineMethodInfo[] = [
  { method: 'thr_global_3sigma', needsCalibration: true, description: 'score > mean + 3 std of all nominal calibration pixels' },
  { method: 'thr_global_1sigma', needsCalibration: true, description: 'score > mean + 1 std of all nominal calibration pixels' },
  {
    method: 'thr_pixel_3sigma',
    needsCalibration: true,
    description: 'score > per-pixel nominal mean + 3 std (calibration maps resampled bilinearly to the map)',
  },
  { method: 'max_nominal', needsCalibration: true, description: 'score > the largest score seen on any nominal calibration map' },
  { method: 'otsu', needsCalibration: false, description: "Otsu's threshold on the map's own 4096-bin score histogram" },
  {
    method: 'mebin',
    needsCalibration: false,
    description: 'MEBin (AnomalyNCD, CVPR 2025): threshold where the count of eroded connected components is most stable',
  },
];

export interface BaselineResult {
  /** 1 where defective, 0 elsewhere; width x height of the map. */
  mask: Uint8Array;
  /**
   * The global threshold applied (as the f32 the comparison uses); null for per-pixel thresholds. For MEBin
   * it applies to the eroded map: mask = erode(score > threshold).
   */
  threshold: number | null;
}

/** Checks the map and the method, and that a calibration is there when the method needs one. */
export function checkBaselineInput(map: ScoreMap, method: string, calibration: Calibration | null): BaselineMethodInfo {
  const info = BASELINE_METHODS.find((m) => m.method === method);
  if (!info) {
    throw new TttError('INVALID_OPTION', `unknown baseline method "${method}" (expected one of ${BASELINE_METHODS.map((m) => m.method).join(', ')})`);
  }
  checkDimensions('the score map', map.width, map.height);
  if (map.data.length !== map.width * map.height) {
    throw new TttError('SIZE_MISMATCH', `the score map holds ${map.data.length} values, expected ${map.width}x${map.height}`);
  }
  checkFinite('the score map', map.data, map.width, map.height);
  if (info.needsCalibration && !calibration) {
    throw new TttError('INVALID_INPUT', `the baseline ${method} needs a calibration from nominal maps, and none was given`);
  }
  return info;
}

/** The threshold of a global calibrated method, in f64 (the mask compares against its f32 rounding). */
export function calibratedThreshold(method: BaselineMethod, c: Calibration): number {
  if (method === 'thr_global_3sigma') return c.globalMean + 3 * c.globalStd;
  if (method === 'thr_global_1sigma') return c.globalMean + c.globalStd;
  if (method === 'max_nominal') return c.maxScore;
  throw new TttError('INTERNAL', `${method} has no global calibrated threshold`);
}

/** mean + 3 std per pixel at the calibration's size. */
export function pixelThresholds(c: Calibration): Float32Array {
  const out = new Float32Array(c.pixelMean.length);
  for (let i = 0; i < out.length; i++) out[i] = c.pixelMean[i] + 3 * c.pixelStd[i];
  return out;
}

/** The calibration's per-pixel maps may be resampled to the map only when their aspect ratios agree. */
export function checkCalibrationSize(map: ScoreMap, c: Calibration): void {
  if (map.width === c.width && map.height === c.height) return;
  const expectedH = (map.width * c.height) / c.width;
  const expectedW = (map.height * c.width) / c.height;
  if (Math.abs(map.height - expectedH) > 1 && Math.abs(map.width - expectedW) > 1) {
    throw new TttError(
      'SIZE_MISMATCH',
      `the score map is ${map.width}x${map.height} but the calibration's per-pixel maps are ${c.width}x${c.height}: the aspect ratios differ`,
    );
  }
}

export function constantMapError(value: number, method: BaselineMethod): TttError {
  return new TttError('CONSTANT_MAP', `the score map is constant (every value is ${value}): ${method} has no threshold to find`);
}

/**
 * Otsu's method over histogram bins: the split k (bins 0..k below, k+1.. above) that maximizes the
 * between-class variance w0 w1 (m0 - m1)^2, bin indices as levels (the bins are equally wide, so this is
 * Otsu on the bin centres). Ties go to the first split, as in OpenCV and scikit-image. Returns the last bin
 * of the lower class.
 */
export function otsuBin(hist: ArrayLike<number>): number {
  let total = 0;
  let sum = 0;
  for (let b = 0; b < hist.length; b++) {
    total += hist[b];
    sum += b * hist[b];
  }
  let w0 = 0;
  let s0 = 0;
  let best = -1;
  let bestBin = 0;
  for (let k = 0; k < hist.length - 1; k++) {
    w0 += hist[k];
    s0 += k * hist[k];
    const w1 = total - w0;
    if (w0 === 0 || w1 === 0) continue;
    const d = s0 / w0 - (sum - s0) / w1;
    const between = w0 * w1 * d * d;
    if (between > best) {
      best = between;
      bestBin = k;
    }
  }
  return bestBin;
}

/** The Otsu threshold: the upper edge of the chosen bin (mask = score > it). */
export const otsuThreshold = (bin: number, min: number, max: number): number => binLowerEdge(bin + 1, min, max);

/** The binarization of one score map by one baseline method, on the GPU. */
export async function baselineMask(gpu: Gpu, map: ScoreMap, method: BaselineMethod, calibration: Calibration | null): Promise<BaselineResult> {
  checkBaselineInput(map, method, calibration);
  const n = map.width * map.height;
  const owned: GpuArray[] = [];
  const keep = (a: GpuArray): GpuArray => {
    owned.push(a);
    return a;
  };
  try {
    const scores = keep(gpu.upload(map.data));
    if (method === 'thr_pixel_3sigma') {
      const c = calibration!;
      checkCalibrationSize(map, c);
      let thresholds = keep(gpu.upload(pixelThresholds(c)));
      if (c.width !== map.width || c.height !== map.height) thresholds = keep(resampleBilinear(gpu, thresholds, 1, c, map));
      const mask = keep(thresholdMapMask(gpu, scores, n, thresholds));
      return { mask: await readMask(gpu, mask, n), threshold: null };
    }
    if (method === 'otsu' || method === 'mebin') {
      const m = keep(moments(gpu, scores, 1, n));
      const [min, max] = await gpu.readF32(m, 2);
      if (!(max > min)) throw constantMapError(min, method);
      if (method === 'otsu') {
        const scale = histogramScale(min, max);
        const bins = keep(gpu.alloc(HISTOGRAM_BINS, true));
        histogramInto(gpu, scores, n, min, scale, bins);
        const hist = await gpu.readU32(bins, HISTOGRAM_BINS);
        const threshold = otsuThreshold(otsuBin(hist), min, max);
        return { mask: await readMask(gpu, keep(thresholdMask(gpu, scores, n, threshold)), n), threshold };
      }
      const eroded = keep(erode(gpu, scores, map.width, map.height));
      // The component sweep runs on the host: union-find over the read-back eroded map (mebin.ts).
      const host = await gpu.readF32(eroded, n);
      const threshold = Math.fround(mebinThreshold(host, map.width, map.height, min, max).threshold);
      return { mask: await readMask(gpu, keep(thresholdMask(gpu, eroded, n, threshold)), n), threshold };
    }
    const threshold = Math.fround(calibratedThreshold(method, calibration!));
    return { mask: await readMask(gpu, keep(thresholdMask(gpu, scores, n, threshold)), n), threshold };
  } finally {
    gpu.release(...owned);
  }
}

/** MEBin's erosion on the GPU: a minimum over the 6x6 window of cv2.erode, clipped at the border. */
export function erode(gpu: Gpu, values: GpuArray, width: number, height: number): GpuArray {
  const n = width * height;
  const params = { width, height, lo: MEBIN.erodeLo, hi: MEBIN.erodeHi };
  const rows = gpu.alloc(n);
  const out = gpu.alloc(n);
  gpu.run(kernels.minFilterH, params, { src: values, dst: rows }, groupsFor(n));
  gpu.run(kernels.minFilterV, params, { src: rows, dst: out }, groupsFor(n));
  gpu.release(rows);
  return out;
}

/** The f32 just below x (the threshold that keeps every value >= x). */
export function f32Below(x: number): number {
  const f = new Float32Array([x]);
  const bits = new Int32Array(f.buffer);
  if (f[0] === 0) return -1.401298464324817e-45;
  bits[0] += f[0] > 0 ? -1 : 1;
  return f[0];
}

/**
 * The one global threshold t (mask = score > t) that maximizes pooled pixel F1 over a set of maps with
 * ground truth: an upper bound for any global-threshold method, for evaluation only. Sorts the scores of
 * defective and nominal pixels once and sweeps t down through every distinct score: O(N log N).
 * F1 follows metrics.ts (no truth and no prediction scores 1); ties keep the higher threshold.
 */
export function oracleThreshold(maps: readonly { scores: Float32Array; truth: Uint8Array }[]): { threshold: number; f1: number } {
  if (maps.length === 0) throw new TttError('INVALID_INPUT', 'the oracle threshold needs at least one map with ground truth');
  let positives = 0;
  let total = 0;
  maps.forEach((m, k) => {
    if (m.scores.length !== m.truth.length) {
      throw new TttError('SIZE_MISMATCH', `map ${k} has ${m.scores.length} scores but ${m.truth.length} ground-truth pixels`);
    }
    for (let i = 0; i < m.scores.length; i++) {
      if (!Number.isFinite(m.scores[i])) throw new TttError('NON_FINITE', `map ${k} contains ${m.scores[i]} at pixel ${i}`);
      if (m.truth[i]) positives++;
    }
    total += m.scores.length;
  });
  if (total === 0) throw new TttError('INVALID_INPUT', 'the oracle threshold needs at least one pixel');
  const pos = new Float32Array(positives);
  const neg = new Float32Array(total - positives);
  let ip = 0;
  let ineg = 0;
  for (const m of maps) {
    for (let i = 0; i < m.scores.length; i++) {
      if (m.truth[i]) pos[ip++] = m.scores[i];
      else neg[ineg++] = m.scores[i];
    }
  }
  pos.sort();
  neg.sort();
  const f1 = (tp: number, fp: number): number => (positives === 0 && tp + fp === 0 ? 1 : (2 * tp) / (tp + fp + positives));
  // Walk both ascending arrays from the top: before taking value v, exactly the scores above v are predicted.
  let i = pos.length - 1;
  let j = neg.length - 1;
  let best = { threshold: 0, f1: -1 };
  while (i >= 0 || j >= 0) {
    const v = Math.max(i >= 0 ? pos[i] : -Infinity, j >= 0 ? neg[j] : -Infinity);
    const score = f1(pos.length - 1 - i, neg.length - 1 - j);
    if (score > best.f1) best = { threshold: v, f1: score };
    while (i >= 0 && pos[i] === v) i--;
    while (j >= 0 && neg[j] === v) j--;
  }
  const all = f1(pos.length, neg.length);
  if (all > best.f1) best = { threshold: f32Below(Math.min(pos[0] ?? Infinity, neg[0] ?? Infinity)), f1: all };
  return best;
}
