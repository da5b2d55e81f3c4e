// Reference of the gather, classifier and predict stages: rows in pixel order, the same SGD schedule and
// batch draws as shaders/classifier.wgsl (in f64), and the mask decision > 0.

import { classWeights, EpochLog, marginLoss, sgdSchedule } from '../classifier.ts';
import type { TttOptions } from '../options.ts';
import { sgdRow } from '../rng.ts';
import type { ClassifierReport, FeatureTensor } from '../types.ts';

export interface ReferenceTrainingSet {
  x: Float64Array;
  targets: Float64Array;
  pixels: Uint32Array;
  rows: number;
  channels: number;
}

export function referenceGather(labels: Uint32Array, features: FeatureTensor): ReferenceTrainingSet {
  const n = features.width * features.height;
  const C = features.channels;
  const pixels: number[] = [];
  for (let i = 0; i < n; i++) if (labels[i] !== 0) pixels.push(i);
  const rows = pixels.length;
  const x = new Float64Array(rows * C);
  const targets = new Float64Array(rows);
  pixels.forEach((p, r) => {
    targets[r] = labels[p] === 1 ? 1 : -1;
    for (let c = 0; c < C; c++) x[r * C + c] = features.data[c * n + p];
  });
  return { x, targets, pixels: Uint32Array.from(pixels), rows, channels: C };
}

export function referenceTrain(set: ReferenceTrainingSet, counts: { anomalous: number; nominal: number }, options: TttOptions): ClassifierReport {
  const o = options.classifier;
  const C = set.channels;
  const { batch, stepsPerEpoch, seed, lambda, lambdaBias } = sgdSchedule(set.rows, options);
  const { wPos, wNeg } = classWeights(counts.anomalous, counts.nominal, o.balanced);
  const w = new Float64Array(C);
  let bias = 0;
  const coef = new Float64Array(batch);
  const alpha = new Float64Array(batch);
  const rowOf = new Uint32Array(batch);
  const log = new EpochLog(o, { lambda, lambdaBias });
  let step = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    let lossSum = 0;
    let weightSum = 0;
    for (let s = 0; s < stepsPerEpoch; s++, step++) {
      const lr = o.learningRate / (1 + o.learningRate * lambda * step);
      let asum = 0;
      for (let j = 0; j < batch; j++) {
        const i = sgdRow(seed, step, j, set.rows);
        let f = bias;
        for (let c = 0; c < C; c++) f += w[c] * set.x[i * C + c];
        const y = set.targets[i];
        const a = y > 0 ? wPos : wNeg;
        const m = y * f;
        const { l, d } = marginLoss(o.loss, m);
        coef[j] = a * d * y;
        alpha[j] = a;
        rowOf[j] = i;
        lossSum += a * l;
        asum += a;
      }
      for (let c = 0; c < C; c++) {
        let g = 0;
        for (let j = 0; j < batch; j++) g += coef[j] * set.x[rowOf[j] * C + c];
        w[c] -= lr * (lambda * w[c] + g / asum);
      }
      let gb = 0;
      for (let j = 0; j < batch; j++) gb += coef[j];
      bias -= lr * (lambdaBias * bias + gb / asum);
      weightSum += asum;
    }
    if (log.end(lossSum, weightSum, w, bias)) break;
  }
  return log.report(w, bias);
}

/**
 * Decision w.x + b per pixel and the mask decision > 0 (and score > scoreFloor when scores are given, and
 * valid with a validity mask).
 */
export function referencePredict(
  weights: readonly number[],
  features: FeatureTensor,
  scores?: Float32Array,
  scoreFloor = -Infinity,
  valid?: Uint8Array | null,
): { decision: Float32Array; mask: Uint8Array } {
  const n = features.width * features.height;
  const C = features.channels;
  const decision = new Float32Array(n).fill(weights[C]);
  const acc = new Float64Array(n).fill(weights[C]);
  for (let c = 0; c < C; c++) {
    const w = weights[c];
    const ch = features.data.subarray(c * n, (c + 1) * n);
    for (let i = 0; i < n; i++) acc[i] += w * ch[i];
  }
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    decision[i] = acc[i];
    mask[i] = acc[i] > 0 && (!scores || scores[i] > scoreFloor) && (!valid || valid[i] !== 0) ? 1 : 0;
  }
  return { decision, mask };
}
