// The squared-hinge SVM (classifier.loss=squared_hinge with classifier.svmC, the ttt4as configuration)
// against exact solutions: the primal Newton solver of src/core/reference/linearSvc.ts, checked here
// against an independent dual coordinate descent (liblinear's algorithm for LinearSVC), then the SGD of the
// reference, the host path and the WGSL kernel against it, with the tolerances stated per assertion.
import { beforeAll, describe, expect, it } from 'vitest';
import { lossCode, marginLoss, sgdLambda, trainClassifier } from '../../src/core/classifier.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { hostTrain } from '../../src/core/hostStage.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { referenceTrain } from '../../src/core/reference/classifier.ts';
import { solveSquaredHinge, svmObjective, type SvmProblem } from '../../src/core/reference/linearSvc.ts';
import { maxAbsDiff, testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
}

/**
 * `nominal` rows ~ N(0.3 c, 1) per channel c and `anomalous` rows shifted by `shift` in the first three
 * channels (f32 values, as the GPU stores them): overlapping classes for a small shift, separable for a
 * large one. Anomalous rows last, as a few percent of the set, as in an image's pseudo-labels.
 */
function dataset(nominal: number, anomalous: number, channels: number, shift: number, seed: number): SvmProblem & { x: Float64Array; targets: Float64Array; pixels: Uint32Array } {
  const r = lcg(seed);
  const rows = nominal + anomalous;
  const x = new Float64Array(rows * channels);
  const targets = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    const pos = i >= nominal;
    targets[i] = pos ? 1 : -1;
    for (let c = 0; c < channels; c++) {
      const g = Math.sqrt(-2 * Math.log(r())) * Math.cos(2 * Math.PI * r());
      x[i * channels + c] = Math.fround(g + (pos && c < 3 ? shift : 0) + 0.3 * c);
    }
  }
  return { x, targets, rows, channels, pixels: new Uint32Array(rows) };
}

/**
 * liblinear's dual coordinate descent for the L2-loss SVM (Hsieh et al. 2008), with the intercept as a
 * feature of constant 1 (intercept_scaling = 1): min over alpha >= 0 of 1/2 |sum a_i y_i xb_i|^2 +
 * sum alpha_i^2 / (4 C) - sum alpha_i, whose w = sum alpha_i y_i xb_i minimizes 1/2 |w|^2 + 1/2 b^2 +
 * C sum_i max(0, 1 - y_i (w.x_i + b))^2.
 */
function dualCoordinateDescent(p: SvmProblem, C: number, sweeps = 20000): number[] {
  const n = p.channels + 1;
  const D = 1 / (2 * C);
  const w = new Float64Array(n);
  const alpha = new Float64Array(p.rows);
  const xb = (i: number, c: number) => (c < p.channels ? p.x[i * p.channels + c] : 1);
  const qii = Array.from({ length: p.rows }, (_, i) => {
    let s = D;
    for (let c = 0; c < n; c++) s += xb(i, c) * xb(i, c);
    return s;
  });
  for (let sweep = 0; sweep < sweeps; sweep++) {
    let pgMax = -Infinity;
    let pgMin = Infinity;
    for (let i = 0; i < p.rows; i++) {
      const y = p.targets[i];
      let f = 0;
      for (let c = 0; c < n; c++) f += w[c] * xb(i, c);
      const G = y * f - 1 + D * alpha[i];
      const PG = alpha[i] === 0 ? Math.min(G, 0) : G;
      pgMax = Math.max(pgMax, PG);
      pgMin = Math.min(pgMin, PG);
      if (PG === 0) continue;
      const next = Math.max(alpha[i] - G / qii[i], 0);
      const d = (next - alpha[i]) * y;
      alpha[i] = next;
      for (let c = 0; c < n; c++) w[c] += d * xb(i, c);
    }
    if (pgMax - pgMin < 1e-12) break;
  }
  return Array.from(w);
}

const decisions = (weights: readonly number[], p: SvmProblem): Float64Array => {
  const C = p.channels;
  return Float64Array.from({ length: p.rows }, (_, i) => {
    let f = weights[C];
    for (let c = 0; c < C; c++) f += weights[c] * p.x[i * C + c];
    return f;
  });
};

describe('squared hinge and LinearSVC(C)', () => {
  it('the loss and its derivative', () => {
    expect(marginLoss('squared_hinge', -1)).toEqual({ l: 4, d: -4 });
    expect(marginLoss('squared_hinge', 0.5)).toEqual({ l: 0.25, d: -1 });
    expect(marginLoss('squared_hinge', 1)).toEqual({ l: 0, d: -0 });
    expect(marginLoss('squared_hinge', 3).l).toBe(0);
    expect([lossCode('hinge'), lossCode('logistic'), lossCode('squared_hinge')]).toEqual([0, 1, 2]);
    // The derivative against a central difference.
    for (const m of [-2, 0.3, 0.9]) {
      const e = 1e-6;
      const num = (marginLoss('squared_hinge', m + e).l - marginLoss('squared_hinge', m - e).l) / (2 * e);
      expect(Math.abs(num - marginLoss('squared_hinge', m).d)).toBeLessThan(1e-6);
    }
  });

  it('lambda = 1 / (C rows) with svmC, else classifier.lambda; the bias term only with regularizeBias', () => {
    const o = resolveOptions({ 'classifier.svmC': 0.001, 'classifier.regularizeBias': true }).classifier;
    expect(sgdLambda(o, 540)).toEqual({ lambda: 1 / 0.54, lambdaBias: 1 / 0.54 });
    expect(sgdLambda(o, 1000).lambda).toBeCloseTo(1, 12);
    const d = resolveOptions({ 'classifier.lambda': 0.25 }).classifier;
    expect(sgdLambda(d, 540)).toEqual({ lambda: 0.25, lambdaBias: 0 });
  });

  for (const shift of [1.2, 6]) {
    for (const C of [0.001, 0.01, 0.1]) {
      it(`Newton on the primal = liblinear's dual coordinate descent (shift ${shift}, C ${C})`, () => {
        const p = dataset(500, 40, 6, shift, 7);
        const { lambda, lambdaBias } = sgdLambda({ lambda: 0, svmC: C, regularizeBias: true }, p.rows);
        const exact = solveSquaredHinge(p, lambda, lambdaBias);
        expect(exact.gradient).toBeLessThan(1e-12);
        expect(exact.iterations).toBeLessThan(20);
        const dual = dualCoordinateDescent(p, C);
        // The same minimizer to 1e-6 (Newton's gradient is below 1e-12; coordinate descent stops on its
        // projected-gradient spread, slowest at C 0.1 with overlapping classes: 3e-8 measured).
        expect(maxAbsDiff(exact.weights, dual)).toBeLessThan(1e-6);
        // LinearSVC's objective is C n times ours.
        const g = new Float64Array(7);
        expect(svmObjective(p, dual, lambda, lambdaBias, g)).toBeCloseTo(exact.objective, 12);
        // A perturbation raises the objective.
        const moved = exact.weights.map((v, i) => v + (i === 2 ? 1e-3 : 0));
        expect(svmObjective(p, moved, lambda, lambdaBias)).toBeGreaterThan(exact.objective);
      });
    }
  }

  it('a free bias (regularizeBias=false): zero gradient, and a bias that differs from the regularized one', () => {
    const p = dataset(500, 40, 6, 1.2, 9);
    const free = solveSquaredHinge(p, 1.85, 0);
    const reg = solveSquaredHinge(p, 1.85, 1.85);
    expect(free.gradient).toBeLessThan(1e-12);
    // With 40 positives in 540 the unregularized bias goes further negative.
    expect(free.weights[6]).toBeLessThan(reg.weights[6] - 0.05);
  });

  // SGD with the derived lambda against the exact minimizer: 500 epochs of 3 steps of 256 rows (batches
  // with replacement), lr 0.1 decaying as lr / (1 + lr lambda t), no early stop. The tolerances are what this
  // schedule reaches (measured: weights within 3e-3, decisions within 2e-2).
  const sgdOptions = (C: number) =>
    resolveOptions({
      'classifier.loss': 'squared_hinge',
      'classifier.svmC': C,
      'classifier.regularizeBias': true,
      'classifier.balanced': false,
      'classifier.batchSize': 256,
      'classifier.epochs': 500,
      'classifier.patience': 10000,
      'classifier.tolerance': 0,
      'classifier.learningRate': 0.1,
    });

  for (const shift of [1.2, 6]) {
    for (const C of [0.001, 0.01]) {
      it(`SGD (reference, host, GPU) converges to LinearSVC(C=${C}) on 500 + 40 rows (shift ${shift})`, async () => {
        const p = dataset(500, 40, 6, shift, 7);
        const options = sgdOptions(C);
        const { lambda, lambdaBias } = sgdLambda(options.classifier, p.rows);
        const exact = solveSquaredHinge(p, lambda, lambdaBias);
        const counts = { anomalous: 40, nominal: 500 };
        const ref = referenceTrain(p, counts, options);
        const host = hostTrain(p, counts, options);
        const x = gpu.upload(Float32Array.from(p.x));
        const targets = gpu.upload(Float32Array.from(p.targets));
        const pixels = gpu.alloc(p.rows);
        const { model, report } = await trainClassifier(gpu, { x, targets, pixels, rows: p.rows, channels: p.channels }, counts, options);
        gpu.release(x, targets, pixels, model);
        expect(ref.lambda).toBe(lambda);
        expect(report.lambda).toBeCloseTo(lambda, 12);
        expect(report.epochs).toBe(500);
        // The host path differs from the reference by summation order only.
        expect(maxAbsDiff(host.weights, ref.weights)).toBeLessThan(1e-9);
        // The kernel (f32) follows the reference (f64) on the same draws.
        expect(maxAbsDiff(report.weights, ref.weights)).toBeLessThan(2e-3);
        const exactDecision = decisions(exact.weights, p);
        for (const [name, weights] of [['reference', ref.weights], ['host', host.weights], ['gpu', report.weights]] as const) {
          const dw = maxAbsDiff(weights, exact.weights);
          const dd = maxAbsDiff(decisions(weights, p), exactDecision);
          const gap = svmObjective(p, weights, lambda, lambdaBias) - exact.objective;
          expect(dw, `${name} weights`).toBeLessThan(0.01);
          expect(dd, `${name} decisions`).toBeLessThan(0.05);
          // Within 0.5% of the minimum objective.
          expect(gap, `${name} objective gap`).toBeGreaterThanOrEqual(-1e-12);
          expect(gap / exact.objective, `${name} objective gap`).toBeLessThan(5e-3);
        }
      });
    }
  }

  it('the squared hinge on the GPU follows the reference with the default schedule and early stop', async () => {
    const p = dataset(300, 30, 10, 3, 3);
    const options = resolveOptions({ 'classifier.loss': 'squared_hinge', 'classifier.epochs': 60, 'classifier.learningRate': 0.02, 'classifier.regularizeBias': true, 'classifier.lambda': 0.01 });
    const counts = { anomalous: 30, nominal: 300 };
    const ref = referenceTrain(p, counts, options);
    const x = gpu.upload(Float32Array.from(p.x));
    const targets = gpu.upload(Float32Array.from(p.targets));
    const pixels = gpu.alloc(p.rows);
    const { model, report } = await trainClassifier(gpu, { x, targets, pixels, rows: p.rows, channels: p.channels }, counts, options);
    gpu.release(x, targets, pixels, model);
    expect(report.epochs).toBe(ref.epochs);
    expect(maxAbsDiff(report.lossHistory, ref.lossHistory)).toBeLessThan(1e-3);
    expect(maxAbsDiff(report.weights, ref.weights)).toBeLessThan(2e-3);
    // It learned something: most training rows on the right side.
    const d = decisions(ref.weights, p);
    let right = 0;
    for (let i = 0; i < p.rows; i++) right += Math.sign(d[i]) === p.targets[i] ? 1 : 0;
    expect(right / p.rows).toBeGreaterThan(0.9);
  });
});
