// The test-time stage on the host, in plain TypeScript tuned for speed (compute.stages=host): the same
// algorithm and random draws as the GPU kernels and src/core/reference/, so the pseudo-labels are identical
// and the classifier differs only by summation order. Standardization is folded into the classifier
// (w / sd, b - w.mu / sd) instead of materializing standardized features.

import { classWeights, EpochLog, lossCode, sgdSchedule } from './classifier.ts';
import { TttError } from './errors.ts';
import { HISTOGRAM_BINS } from './kernels.ts';
import type { TttOptions } from './options.ts';
import { LABEL_ANOMALOUS, LABEL_NOMINAL } from './pseudoLabels.ts';
import { nominalSeedKey, pcgHash, sgdRow } from './rng.ts';
import { binLowerEdge, histogramScale, percentileRank } from './stats.ts';
import type { ClassifierReport, FeatureTensor, PseudoLabelCounts, ScoreMap, ScoreMapStats } from './types.ts';
import { isStaged, stageFeatures, type StagedFeatures, wasmBins, wasmMoments, wasmPredictMask, wasmScoreStats } from './wasm/hostKernels.ts';

/** Pixels per tile of the channel loops: the tile's accumulators stay in the CPU's cache. */
const TILE = 2048;

export interface HostAnalysis {
  stats: ScoreMapStats;
  /** Histogram bin per requested percentile. */
  bins: number[];
  scale: number;
  /** The histogram bin of every pixel (as the shaders compute it). */
  pixelBins: Uint16Array;
}

/** Moments, the 4096-bin histogram and the percentile bins of the map (of its valid pixels). */
export function hostAnalyzeScoreMap(map: ScoreMap, percentiles: readonly number[], valid?: Uint8Array | null): HostAnalysis {
  const d = map.data;
  const n = d.length;
  let min = Infinity;
  let max = -Infinity;
  // Sums of (v - shift) and its square in f64, shifted by the first value so that the one-pass variance
  // keeps its precision.
  let shift = 0;
  let sum = 0;
  let sum2 = 0;
  let count = 0;
  let wasm: ReturnType<typeof wasmScoreStats> = null;
  if (valid) {
    for (let i = 0; i < n; i++) {
      if (!valid[i]) continue;
      const v = d[i];
      if (count === 0) shift = v;
      if (v < min) min = v;
      if (v > max) max = v;
      const e = v - shift;
      sum += e;
      sum2 += e * e;
      count++;
    }
  } else if ((wasm = wasmScoreStats(d))) {
    // The WebAssembly SIMD kernels: the same extremes; the sums in four partial sums (the last bits of
    // mean and std differ from the loop below).
    ({ min, max, sum, sum2 } = wasm);
    shift = d[0];
    count = n;
  } else {
    shift = n > 0 ? d[0] : 0;
    for (let i = 0; i < n; i++) {
      const v = d[i];
      if (v < min) min = v;
      if (v > max) max = v;
      const e = v - shift;
      sum += e;
      sum2 += e * e;
    }
    count = n;
  }
  if (count === 0) throw new TttError('INVALID_INPUT', 'no pixel of the score map has a valid 3-D point');
  if (!(max > min)) throw new TttError('CONSTANT_MAP', `the score map is constant${valid ? ' over the valid points' : ''} (every value is ${min})`);
  const m = sum / count;
  const mean = shift + m;
  const variance = Math.max(sum2 / count - m * m, 0);
  const scale = histogramScale(min, max);
  const hist = new Uint32Array(HISTOGRAM_BINS);
  const pixelBins = binPixels(d, min, scale, hist, valid, wasm !== null);
  const last = HISTOGRAM_BINS - 1;
  const bins = percentiles.map((q) => {
    const rank = percentileRank(q, count);
    let cum = 0;
    for (let b = 0; b < HISTOGRAM_BINS; b++) {
      cum += hist[b];
      if (cum >= rank) return b;
    }
    return last;
  });
  const pct: Record<string, number> = {};
  percentiles.forEach((q, i) => (pct[String(q)] = binLowerEdge(bins[i], min, max)));
  return { stats: { min, max, mean, std: Math.sqrt(variance), count, percentiles: pct }, bins, scale, pixelBins };
}

/**
 * The histogram bin of every value, with the shaders' f32 arithmetic (floor(max(fround(fround(v - min) *
 * scale), 0)), clamped), counted into `hist` (the valid pixels only, with a validity mask).
 */
function binPixels(d: Float32Array, min: number, scale: number, hist: Uint32Array, valid?: Uint8Array | null, useWasm = false): Uint16Array {
  const last = HISTOGRAM_BINS - 1;
  const n = d.length;
  let out: Uint16Array;
  if (useWasm) {
    // The WebAssembly SIMD kernel: the same f32 arithmetic, the same bins.
    out = wasmBins(d, min, scale);
  } else {
    out = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const b = Math.fround(Math.fround(d[i] - min) * scale);
      out[i] = b > 0 ? (b >= last ? last : b | 0) : 0;
    }
  }
  // Counted in a second loop: neighbouring pixels mostly share a bin, and an increment in the loop above
  // waits for the previous one to the same counter (0.83 -> 0.43 ms at 256x256).
  if (valid) {
    for (let i = 0; i < n; i++) if (valid[i]) hist[out[i]]++;
  } else {
    for (let i = 0; i < n; i++) hist[out[i]]++;
  }
  return out;
}

export interface HostPseudoLabels {
  /** One byte per pixel: 0 none, 1 anomalous, 2 nominal. */
  labels: Uint8Array;
  /** The labelled pixels in pixel order (the training rows). */
  pixels: Uint32Array;
  counts: PseudoLabelCounts;
}

/**
 * Anomalous: 3x3 local maxima at or above the anomalous bin (and the floor) dilated by the radius; nominal:
 * the nominalCount eligible pixels with the smallest keyed hashes (the draw of shaders/pseudo_labels.wgsl),
 * selected by a 4096-bin histogram of the keys' top bits instead of a sort.
 */
export function hostPseudoLabels(
  map: ScoreMap,
  analysis: Pick<HostAnalysis, 'pixelBins'> & { bins: readonly number[] },
  options: TttOptions,
  floor = -Infinity,
  valid?: Uint8Array | null,
): HostPseudoLabels {
  const { width, height, data } = map;
  const n = width * height;
  const o = options.pseudoLabels;
  const pb = analysis.pixelBins;
  const anomalousBin = analysis.bins[0];
  const nominalBin = analysis.bins[1];
  const labels = new Uint8Array(n);
  const r = o.radius;
  let anomalous = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (pb[i] < anomalousBin) continue;
      const v = data[i];
      if (v < floor || (valid && !valid[i])) continue;
      let isMax = true;
      for (let yy = Math.max(y - 1, 0); yy <= Math.min(y + 1, height - 1) && isMax; yy++) {
        for (let xx = Math.max(x - 1, 0); xx <= Math.min(x + 1, width - 1); xx++) {
          const j = yy * width + xx;
          if (data[j] > v && (!valid || valid[j])) {
            isMax = false;
            break;
          }
        }
      }
      if (!isMax) continue;
      for (let yy = Math.max(y - r, 0); yy <= Math.min(y + r, height - 1); yy++) {
        for (let xx = Math.max(x - r, 0); xx <= Math.min(x + r, width - 1); xx++) {
          const j = yy * width + xx;
          if (labels[j] === 0 && (!valid || valid[j])) {
            labels[j] = LABEL_ANOMALOUS;
            anomalous++;
          }
        }
      }
    }
  }
  // The eligible pixels, their keys, and a histogram of the keys' top 12 bits.
  const seedKey = nominalSeedKey(options.seed);
  const restrict = o.nominalPercentile < 100;
  const limit = restrict ? nominalBin : HISTOGRAM_BINS;
  const index = new Uint32Array(n);
  const keys = new Uint32Array(n);
  const hist = new Uint32Array(4096);
  let eligible = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] !== 0 || pb[i] > limit || (valid && !valid[i])) continue;
    const k = pcgHash((i ^ seedKey) >>> 0);
    index[eligible] = i;
    keys[eligible++] = k;
    hist[k >>> 20]++;
  }
  const take = Math.min(o.nominalCount, eligible);
  if (take > 0) {
    let cut = 0;
    let before = 0;
    while (before + hist[cut] < take) before += hist[cut++];
    // Every eligible pixel below the cut bin is drawn; in the cut bin, those with the smallest keys.
    const inCut: number[] = [];
    for (let e = 0; e < eligible; e++) {
      const t = keys[e] >>> 20;
      if (t < cut) labels[index[e]] = LABEL_NOMINAL;
      else if (t === cut) inCut.push(keys[e]);
    }
    const lastKey = Uint32Array.from(inCut).sort()[take - before - 1];
    for (let e = 0; e < eligible; e++) if (keys[e] >>> 20 === cut && keys[e] <= lastKey) labels[index[e]] = LABEL_NOMINAL;
  }
  const pixels = new Uint32Array(anomalous + take);
  let row = 0;
  for (let i = 0; i < n; i++) if (labels[i] !== 0) pixels[row++] = i;
  return { labels, pixels, counts: { anomalous, nominal: take, eligible } };
}

/** Per-channel mean and standard deviation (population; over the valid pixels with a validity mask). */
export interface Standardization {
  mean: Float64Array;
  sd: Float64Array;
}

/**
 * One pass over the features, tiled over pixels: sums of (x - shift) and its square per channel, with the
 * channel's first value as the shift (so that the one-pass variance keeps its precision).
 */
export function channelMoments(features: FeatureTensor, valid?: Uint8Array | null, staged?: StagedFeatures | null): Standardization {
  const n = features.width * features.height;
  const C = features.channels;
  // The WebAssembly SIMD kernel (src/core/wasm/host.wat): the same sums in the same order, bit-identical.
  if (!valid) {
    const s = isStaged(staged, features.data) ? staged : stageFeatures(features.data, n, C);
    if (s) {
      const sums = wasmMoments(s);
      const out = { mean: new Float64Array(C), sd: new Float64Array(C) };
      for (let c = 0; c < C; c++) setMoments(out, c, n > 0 ? features.data[c * n] : 0, sums[2 * c], sums[2 * c + 1], n);
      return out;
    }
  }
  return channelMomentsJs(features, valid);
}

/** channelMoments in JS loops (the fallback without WebAssembly SIMD, with a validity mask, and the reference of the kernel). */
export function channelMomentsJs(features: FeatureTensor, valid?: Uint8Array | null): Standardization {
  const { channels: C, data } = features;
  const n = features.width * features.height;
  const mean = new Float64Array(C);
  const sd = new Float64Array(C);
  let count = 0;
  if (valid) for (let i = 0; i < n; i++) count += valid[i] ? 1 : 0;
  else count = n;
  for (let c = 0; c < C; c++) {
    const ch = data.subarray(c * n, (c + 1) * n);
    let first = 0;
    while (valid && first < n && !valid[first]) first++;
    const shift = first < n ? ch[first] : 0;
    let s = 0;
    let s2 = 0;
    if (valid) {
      for (let i = 0; i < n; i++) {
        if (!valid[i]) continue;
        const e = ch[i] - shift;
        s += e;
        s2 += e * e;
      }
    } else {
      // Four independent sums: the loop is bound by the latency of the additions otherwise.
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
      let i = 0;
      for (; i + 3 < n; i += 4) {
        const e0 = ch[i] - shift;
        const e1 = ch[i + 1] - shift;
        const e2 = ch[i + 2] - shift;
        const e3 = ch[i + 3] - shift;
        a0 += e0;
        a1 += e1;
        a2 += e2;
        a3 += e3;
        q0 += e0 * e0;
        q1 += e1 * e1;
        q2 += e2 * e2;
        q3 += e3 * e3;
      }
      for (; i < n; i++) {
        const e = ch[i] - shift;
        a0 += e;
        q0 += e * e;
      }
      s = a0 + a1 + a2 + a3;
      s2 = q0 + q1 + q2 + q3;
    }
    setMoments({ mean, sd }, c, shift, s, s2, count);
  }
  return { mean, sd };
}

/** Channel c's mean and population std from the sums of (x - shift) and of its square over `count` values. */
function setMoments(out: Standardization, c: number, shift: number, s: number, s2: number, count: number): void {
  const m = s / Math.max(count, 1);
  out.mean[c] = shift + m;
  out.sd[c] = Math.sqrt(Math.max(s2 / Math.max(count, 1) - m * m, 0));
}

export interface HostTrainingSet {
  /** rows x channels, row-major, f64. */
  x: Float64Array;
  targets: Float64Array;
  rows: number;
  channels: number;
}

/**
 * The labelled pixels' features, row-major; with a standardization, standardized and rounded to f32 as the
 * GPU stores standardized features (a channel with sd <= 1e-12 is 0).
 */
export function hostGather(labels: HostPseudoLabels, features: FeatureTensor, standardization: Standardization | null): HostTrainingSet {
  const { channels: C, data } = features;
  const n = features.width * features.height;
  const rows = labels.pixels.length;
  const x = new Float64Array(rows * C);
  const targets = new Float64Array(rows);
  for (let r = 0; r < rows; r++) targets[r] = labels.labels[labels.pixels[r]] === LABEL_ANOMALOUS ? 1 : -1;
  for (let c = 0; c < C; c++) {
    const base = c * n;
    const mu = standardization ? standardization.mean[c] : 0;
    const sd = standardization ? standardization.sd[c] : 1;
    for (let r = 0; r < rows; r++) {
      const v = data[base + labels.pixels[r]];
      x[r * C + c] = !standardization ? v : sd > 1e-12 ? Math.fround((v - mu) / sd) : 0;
    }
  }
  return { x, targets, rows, channels: C };
}

/**
 * Mini-batch SGD with the GPU's schedule and batch draws (as referenceTrain, in f64): the gradient is
 * accumulated row by row and rows with a zero coefficient (hinge or squared hinge margin >= 1) are skipped, which changes no
 * sum.
 */
export function hostTrain(set: HostTrainingSet, counts: { anomalous: number; nominal: number }, options: TttOptions): ClassifierReport {
  const o = options.classifier;
  const C = set.channels;
  const X = set.x;
  const { batch, stepsPerEpoch, seed, lambda, lambdaBias } = sgdSchedule(set.rows, options);
  const { wPos, wNeg } = classWeights(counts.anomalous, counts.nominal, o.balanced);
  // The loss inline (marginLoss's formulas): no call or object per row in this loop.
  const loss = lossCode(o.loss);
  const w = new Float64Array(C);
  const g = new Float64Array(C);
  let bias = 0;
  const log = new EpochLog(o, { lambda, lambdaBias });
  let step = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    let lossSum = 0;
    let weightSum = 0;
    for (let s = 0; s < stepsPerEpoch; s++, step++) {
      const lr = o.learningRate / (1 + o.learningRate * lambda * step);
      let asum = 0;
      let gb = 0;
      g.fill(0);
      for (let j = 0; j < batch; j++) {
        const i = sgdRow(seed, step, j, set.rows);
        const row = i * C;
        let f = bias;
        for (let c = 0; c < C; c++) f += w[c] * X[row + c];
        const y = set.targets[i];
        const a = y > 0 ? wPos : wNeg;
        const m = y * f;
        let l: number;
        let d: number;
        if (loss === 0) {
          l = Math.max(0, 1 - m);
          d = m < 1 ? -1 : 0;
        } else if (loss === 2) {
          const h = Math.max(0, 1 - m);
          l = h * h;
          d = -2 * h;
        } else {
          l = Math.max(-m, 0) + Math.log1p(Math.exp(-Math.abs(m)));
          d = -1 / (1 + Math.exp(m));
        }
        const coef = a * d * y;
        lossSum += a * l;
        asum += a;
        gb += coef;
        if (coef !== 0) for (let c = 0; c < C; c++) g[c] += coef * X[row + c];
      }
      for (let c = 0; c < C; c++) w[c] -= lr * (lambda * w[c] + g[c] / asum);
      bias -= lr * (lambdaBias * bias + gb / asum);
      weightSum += asum;
    }
    if (log.end(lossSum, weightSum, w, bias)) break;
  }
  return log.report(w, bias);
}

/**
 * The mask decision > 0 (and score > scoreFloor, and valid) at every pixel. With a standardization the
 * weights are folded (w / sd, b - sum w mu / sd) and the raw features read once; tiles of pixels keep the
 * accumulators in cache while the channels stream past.
 */
export function hostPredictMask(
  weights: readonly number[],
  features: FeatureTensor,
  standardization: Standardization | null,
  scores: Float32Array,
  scoreFloor = -Infinity,
  valid?: Uint8Array | null,
  staged?: StagedFeatures | null,
): Uint8Array {
  const n = features.width * features.height;
  const s = scores.length === n ? (isStaged(staged, features.data) ? staged : stageFeatures(features.data, n, features.channels)) : null;
  if (!s) return hostPredictMaskJs(weights, features, standardization, scores, scoreFloor, valid);
  // The WebAssembly SIMD kernel (src/core/wasm/host.wat): the same f64 sums in the same order, so the
  // same decisions as the JS loops.
  const { w, bias } = foldWeights(weights, features.channels, standardization);
  const mask = wasmPredictMask(s, w, bias, scores, scoreFloor);
  if (valid) for (let p = 0; p < n; p++) if (valid[p] === 0) mask[p] = 0;
  return mask;
}

/** The weights and bias on raw features: w / sd, b - sum w mu / sd (as given without a standardization). */
function foldWeights(weights: readonly number[], C: number, standardization: Standardization | null): { w: Float64Array; bias: number } {
  const w = new Float64Array(C);
  let bias = weights[C];
  for (let c = 0; c < C; c++) {
    if (!standardization) {
      w[c] = weights[c];
      continue;
    }
    const sd = standardization.sd[c];
    w[c] = sd > 1e-12 ? weights[c] / sd : 0;
    bias -= w[c] * standardization.mean[c];
  }
  return { w, bias };
}

/** hostPredictMask in JS loops (the fallback without WebAssembly SIMD, and the reference of the kernel). */
export function hostPredictMaskJs(
  weights: readonly number[],
  features: FeatureTensor,
  standardization: Standardization | null,
  scores: Float32Array,
  scoreFloor = -Infinity,
  valid?: Uint8Array | null,
): Uint8Array {
  const { channels: C, data } = features;
  const n = features.width * features.height;
  const { w, bias } = foldWeights(weights, C, standardization);
  const mask = new Uint8Array(n);
  const acc = new Float64Array(TILE);
  for (let t0 = 0; t0 < n; t0 += TILE) {
    const len = Math.min(TILE, n - t0);
    acc.fill(bias, 0, len);
    // Eight (then four) channels per sweep of the tile: fewer accumulator loads and stores.
    let c = 0;
    for (; c + 7 < C; c += 8) {
      const w0 = w[c], w1 = w[c + 1], w2 = w[c + 2], w3 = w[c + 3], w4 = w[c + 4], w5 = w[c + 5], w6 = w[c + 6], w7 = w[c + 7];
      const o0 = c * n + t0, o1 = o0 + n, o2 = o1 + n, o3 = o2 + n, o4 = o3 + n, o5 = o4 + n, o6 = o5 + n, o7 = o6 + n;
      for (let i = 0; i < len; i++) {
        acc[i] += w0 * data[o0 + i] + w1 * data[o1 + i] + w2 * data[o2 + i] + w3 * data[o3 + i] + (w4 * data[o4 + i] + w5 * data[o5 + i] + w6 * data[o6 + i] + w7 * data[o7 + i]);
      }
    }
    for (; c + 3 < C; c += 4) {
      const w0 = w[c], w1 = w[c + 1], w2 = w[c + 2], w3 = w[c + 3];
      const o0 = c * n + t0, o1 = o0 + n, o2 = o1 + n, o3 = o2 + n;
      for (let i = 0; i < len; i++) acc[i] += w0 * data[o0 + i] + w1 * data[o1 + i] + w2 * data[o2 + i] + w3 * data[o3 + i];
    }
    for (; c < C; c++) {
      const wc = w[c];
      const o0 = c * n + t0;
      for (let i = 0; i < len; i++) acc[i] += wc * data[o0 + i];
    }
    for (let i = 0; i < len; i++) {
      const p = t0 + i;
      mask[p] = acc[i] > 0 && scores[p] > scoreFloor && (!valid || valid[p] !== 0) ? 1 : 0;
    }
  }
  return mask;
}

export interface HostStageResult {
  analysis: HostAnalysis;
  labels: HostPseudoLabels;
  classifier: ClassifierReport | null;
  mask: Uint8Array | null;
}

/**
 * The stage from map to mask in one call (what the peer bench compares): statistics, pseudo-labels,
 * standardization (folded), gathering, training and prediction. `standardize`: false when the features are
 * already standardized. Without both label classes the classifier and mask are null.
 */
export function hostTestTimeStage(
  map: ScoreMap,
  features: FeatureTensor,
  options: TttOptions,
  percentiles: readonly number[],
  floors: { seed?: number; mask?: number } = {},
  standardize = true,
): HostStageResult {
  const analysis = hostAnalyzeScoreMap(map, percentiles);
  const labels = hostPseudoLabels(map, analysis, options, floors.seed);
  if (labels.counts.anomalous === 0 || labels.counts.nominal === 0) return { analysis, labels, classifier: null, mask: null };
  // The features copied once into the WebAssembly kernels' memory for the moments and the prediction
  // (null without WebAssembly SIMD: the JS loops).
  const staged = stageFeatures(features.data, features.width * features.height, features.channels);
  const st = standardize ? channelMoments(features, null, staged) : null;
  const set = hostGather(labels, features, st);
  const classifier = hostTrain(set, labels.counts, options);
  const mask = hostPredictMask(classifier.weights, features, st, map.data, floors.mask, null, staged);
  return { analysis, labels, classifier, mask };
}
