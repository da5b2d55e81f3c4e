// The host path of the test-time stage (src/core/hostStage.ts, compute.stages) against the reference
// stage by stage, and the choice of path, with the tolerances stated per assertion.
import { beforeAll, describe, expect, it } from 'vitest';
import { Gpu, isSoftwareAdapter } from '../../src/core/gpu.ts';
import { MAX_CHANNELS } from '../../src/core/kernels.ts';
import { channelMoments, hostAnalyzeScoreMap, hostGather, hostPredictMask, hostPseudoLabels, hostTestTimeStage, hostTrain } from '../../src/core/hostStage.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { requestedPercentiles, segment, stagePlacement } from '../../src/core/pipeline.ts';
import { referenceGather, referencePredict, referenceTrain } from '../../src/core/reference/classifier.ts';
import { referenceStandardize } from '../../src/core/reference/features.ts';
import { referencePseudoLabels } from '../../src/core/reference/pseudoLabels.ts';
import { referenceAnalyzeScoreMap } from '../../src/core/reference/stats.ts';
import { loadShaders } from '../../src/gpu/node.ts';
import { syntheticFeatures, syntheticSample } from '../../src/synthetic.ts';
import { agreement, maxAbsDiff, testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const sample = syntheticSample({ width: 120, height: 90, seed: 8, defects: 3 });
const features = syntheticFeatures(sample, 17, 1);
// A validity mask with a hole band and scattered holes.
const valid = Uint8Array.from({ length: 120 * 90 }, (_, i) => (i % 120 < 10 || i % 37 === 0 ? 0 : 1));

describe('host stages against the reference', () => {
  for (const v of [null, valid]) {
    for (const set of [{}, { 'pseudoLabels.nominalPercentile': 100, 'pseudoLabels.nominalCount': 2000, 'pseudoLabels.radius': 2 }, { 'pseudoLabels.nominalCount': 100000 }]) {
      it(`statistics and pseudo-labels are identical (${v ? 'with' : 'without'} validity, ${JSON.stringify(set)})`, () => {
        const options = resolveOptions(set);
        const pct = requestedPercentiles(options);
        const h = hostAnalyzeScoreMap(sample.scoreMap, pct, v);
        const r = referenceAnalyzeScoreMap(sample.scoreMap, pct, v);
        expect(h.bins).toEqual(r.bins);
        expect(h.scale).toBe(r.scale);
        expect(h.stats.min).toBe(r.stats.min);
        expect(h.stats.max).toBe(r.stats.max);
        expect(h.stats.count).toBe(r.stats.count);
        expect(h.stats.percentiles).toEqual(r.stats.percentiles);
        // One-pass shifted moments (f64) against two-pass: equal to 1e-12 relative.
        expect(Math.abs(h.stats.mean - r.stats.mean)).toBeLessThan(1e-12 * Math.abs(r.stats.mean));
        expect(Math.abs(h.stats.std - r.stats.std)).toBeLessThan(1e-9 * r.stats.std);
        const floor = 0.3;
        const hl = hostPseudoLabels(sample.scoreMap, h, options, floor, v);
        const rl = referencePseudoLabels(sample.scoreMap, { anomalous: r.bins[0], nominal: r.bins[1] }, { min: r.stats.min, scale: r.scale }, options, floor, v);
        expect(hl.counts).toEqual(rl.counts);
        expect(hl.counts.anomalous).toBeGreaterThan(0);
        expect(Array.from(hl.labels)).toEqual(Array.from(rl.labels));
        expect(hl.pixels.length).toBe(hl.counts.anomalous + hl.counts.nominal);
      });
    }
  }

  it('standardization folded into the classifier: the same training set, weights and mask as standardized features', () => {
    const options = resolveOptions({ 'classifier.epochs': 40 });
    const pct = requestedPercentiles(options);
    const h = hostAnalyzeScoreMap(sample.scoreMap, pct);
    const labels = hostPseudoLabels(sample.scoreMap, h, options);
    const st = channelMoments(features);
    const standardized = referenceStandardize({ ...features, data: features.data.slice() });
    const hostSet = hostGather(labels, features, st);
    const refSet = referenceGather(Uint32Array.from(labels.labels), standardized);
    // Standardized values rounded to f32 on both sides; the moments differ in the last bits only.
    expect(maxAbsDiff(hostSet.x, refSet.x)).toBeLessThan(1e-6);
    expect(Array.from(hostSet.targets)).toEqual(Array.from(refSet.targets));
    const hw = hostTrain(hostSet, labels.counts, options);
    const rw = referenceTrain(refSet, labels.counts, options);
    // Same schedule, same draws, same summation order: equal up to the training sets' last bits.
    expect(hw.epochs).toBe(rw.epochs);
    expect(maxAbsDiff(hw.weights, rw.weights)).toBeLessThan(1e-4);
    // And on identical training sets, identical weights (zero-coefficient rows skipped change no sum).
    expect(hostTrain({ ...refSet }, labels.counts, options).weights).toEqual(rw.weights);
    const mask = hostPredictMask(rw.weights, features, st, sample.scoreMap.data);
    const ref = referencePredict(rw.weights, standardized, sample.scoreMap.data).mask;
    expect(agreement(mask, ref)).toBeGreaterThanOrEqual(0.9995);
    expect(mask.reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
    // Already standardized features: no fold.
    expect(agreement(hostPredictMask(rw.weights, standardized, null, sample.scoreMap.data), ref)).toBeGreaterThanOrEqual(0.9995);
  });

  it('the mask keeps the score floor and the validity mask', () => {
    const options = resolveOptions({});
    const out = hostTestTimeStage(sample.scoreMap, features, options, requestedPercentiles(options), { mask: 0.5 });
    expect(out.mask).not.toBeNull();
    let on = 0;
    for (let i = 0; i < out.mask!.length; i++) {
      if (!out.mask![i]) continue;
      on++;
      expect(sample.scoreMap.data[i]).toBeGreaterThan(0.5);
    }
    expect(on).toBeGreaterThan(0);
    const st = channelMoments(features);
    const masked = hostPredictMask(out.classifier!.weights, features, st, sample.scoreMap.data, -Infinity, valid);
    for (let i = 0; i < valid.length; i++) if (!valid[i]) expect(masked[i]).toBe(0);
  });
});

describe('compute.stages', () => {
  it('auto takes the host path on a software adapter and the GPU path otherwise', () => {
    const auto = resolveOptions({});
    expect(auto.compute.stages).toBe('auto');
    const software = new Gpu(gpu.device, loadShaders(), { software: true });
    const hardware = new Gpu(gpu.device, loadShaders(), { software: false });
    expect(stagePlacement(software, auto)).toBe('host');
    expect(stagePlacement(hardware, auto)).toBe('gpu');
    expect(stagePlacement(software, resolveOptions({ 'compute.stages': 'gpu' }))).toBe('gpu');
    expect(stagePlacement(hardware, resolveOptions({ 'compute.stages': 'host' }))).toBe('host');
  });

  it('recognizes software adapters from their info', () => {
    expect(isSoftwareAdapter({ architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7', isFallbackAdapter: true })).toBe(true);
    expect(isSoftwareAdapter({ description: 'SwiftShader Device (Subzero)' })).toBe(true);
    expect(isSoftwareAdapter({ isFallbackAdapter: true })).toBe(true);
    expect(isSoftwareAdapter({ architecture: 'hopper', device: '', description: 'NVIDIA H100 80GB HBM3', isFallbackAdapter: false })).toBe(false);
    expect(gpu.software).toBe(isSoftwareAdapter((gpu.device as GPUDevice & { adapterInfo: GPUAdapterInfo }).adapterInfo ?? {}));
  });

  it('the result says where each stage ran, and the two paths agree', async () => {
    const s = syntheticSample({ width: 96, height: 96, seed: 12, defects: 2 });
    const f = syntheticFeatures(s, 9, 2);
    const base = resolveOptions({ 'pseudoLabels.nominalCount': 300 });
    const host = await segment(gpu, { ...s, features: f }, resolveOptions({ 'compute.stages': 'host' }, base));
    const onGpu = await segment(gpu, { ...s, features: f }, resolveOptions({ 'compute.stages': 'gpu' }, base));
    expect(host.placement).toEqual({ upload: 'host', stats: 'host', pseudoLabels: 'host', features: 'host', gather: 'host', classifier: 'host', predict: 'host', regions: 'host' });
    expect(onGpu.placement).toEqual({ upload: 'gpu', stats: 'gpu', pseudoLabels: 'gpu', features: 'gpu', gather: 'gpu', classifier: 'gpu', predict: 'gpu', regions: 'host' });
    expect(Object.keys(host.timings).sort()).toEqual(Object.keys(host.placement).sort());
    expect(host.pseudoLabels).toEqual(onGpu.pseudoLabels);
    expect(host.anomalyMap.percentiles).toEqual(onGpu.anomalyMap.percentiles);
    // f32 GPU SGD against f64 host SGD: the tolerance of the GPU-vs-reference tests.
    expect(maxAbsDiff(host.classifier!.weights, onGpu.classifier!.weights)).toBeLessThan(1e-2);
    expect(agreement(host.predMask, onGpu.predMask)).toBeGreaterThanOrEqual(0.999);
  });

  it('rejects too many supplied channels on the host path before any work', async () => {
    const s = syntheticSample({ width: 16, height: 16, seed: 1, defects: 1 });
    const f = syntheticFeatures(s, MAX_CHANNELS + 1, 1);
    const r = await segment(gpu, { ...s, features: f }, resolveOptions({ 'compute.stages': 'host' })).catch((e) => e);
    expect(r).toMatchObject({ code: 'TOO_LARGE', message: expect.stringContaining(`${MAX_CHANNELS + 1} feature channels`) });
  });
});
