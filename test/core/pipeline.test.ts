import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import type { ScoreMap } from '../../src/core/types.ts';
import { calibrate } from '../../src/core/calibration.ts';
import { confusion, pixelMetrics } from '../../src/core/metrics.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { segment } from '../../src/core/pipeline.ts';
import { referenceSegment } from '../../src/core/reference/pipeline.ts';
import { syntheticFeatures, syntheticSample } from '../../src/synthetic.ts';
import { agreement, maxAbsDiff, testGpu } from '../helpers/gpu.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';

// The default extractor is the pretrained network: provide its weights, as the CLI and server do.
registerMobileNet();

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('segment (GPU path and host path) against referenceSegment (CPU)', () => {
  const cases = [
    { name: 'grey 96x80, full-resolution map', sample: { width: 96, height: 80, seed: 3, defects: 3 } },
    { name: 'grey 128x128, map at stride 4', sample: { width: 128, height: 128, seed: 5, defects: 2, mapStride: 4 } },
    { name: 'colour 100x64', sample: { width: 100, height: 64, seed: 9, defects: 3, colour: true } },
  ];
  for (const c of cases) for (const stages of ['gpu', 'host'] as const) {
    it(`${c.name} (compute.stages=${stages})`, async () => {
      const s = syntheticSample(c.sample);
      const options = resolveOptions({ 'features.extractor': 'filterbank', 'pseudoLabels.nominalCount': 300, 'classifier.epochs': 30, 'compute.stages': stages });
      const g = await segment(gpu, s, options);
      expect(g.placement.stats).toBe(stages);
      expect(g.placement.predict).toBe(stages);
      // The filterbank runs on the GPU on either path; the host path reads its features back.
      expect(g.placement.features).toBe('gpu');
      const r = referenceSegment(s, options);
      expect(g.pseudoLabels).toEqual(r.pseudoLabels);
      expect(g.pseudoLabels!.anomalous).toBeGreaterThan(0);
      expect(g.classifier!.epochs).toBe(r.classifier!.epochs);
      // Weights: f32 GPU vs f64 reference after hundreds of SGD steps; a sample at the hinge's kink can
      // switch sides between the two, so allow 1e-2 (weights are O(0.1)); the masks must still agree.
      expect(maxAbsDiff(g.classifier!.weights, r.classifier!.weights)).toBeLessThan(1e-2);
      expect(agreement(g.predMask, r.predMask)).toBeGreaterThanOrEqual(0.999);
      expect(g.anomalyMap.min).toBe(r.anomalyMap.min);
      expect(g.anomalyMap.max).toBe(r.anomalyMap.max);
      expect(g.anomalyMap.mean).toBeCloseTo(r.anomalyMap.mean, 5);
      expect(g.anomalyMap.std).toBeCloseTo(r.anomalyMap.std, 5);
      expect(g.anomalyMap.percentiles).toEqual(r.anomalyMap.percentiles);
    });
  }

  it('segments known defects (F1 against the synthetic ground truth)', async () => {
    const s = syntheticSample({ width: 160, height: 160, seed: 11, defects: 2 });
    const g = await segment(gpu, s);
    const m = pixelMetrics(confusion(g.predMask, s.groundTruth));
    // Default options: the pretrained network's features (measured F1 0.47 on this sample with the default
    // ImageNet MobileNetV2, 0.61 with the NSFW-tuned one shipped until 2026-12-07; docs/benchmarks.md compares them).
    expect(m.f1).toBeGreaterThan(0.4);
    expect(g.regions.length).toBeGreaterThan(0);
  });

  it('gives an empty mask and says why when no seed reaches the calibrated floor', async () => {
    const s = syntheticSample({ width: 64, height: 64, seed: 17, defects: 1 });
    let max = -Infinity;
    for (const v of s.scoreMap.data) max = Math.max(max, v);
    // A calibration whose mean + 3 std lies above this map's maximum; the image gate off.
    const calibration = calibrate([{ data: Float32Array.from({ length: 16 }, (_, i) => max + (i % 2)), width: 4, height: 4 }]);
    const options = resolveOptions({ 'features.extractor': 'filterbank', 'gate.mode': 'off', 'pseudoLabels.seedFloor': 'sigma' });
    for (const r of [await segment(gpu, { ...s, calibration }, options), referenceSegment({ ...s, calibration }, options)]) {
      expect(r.predLabel).toBe(false);
      expect(r.predMask.every((v) => v === 0)).toBe(true);
      expect(r.pseudoLabels!.anomalous).toBe(0);
      expect(r.emptyReason).toMatch(/no anomalous pseudo-labels/);
    }
    const open = await segment(gpu, { ...s, calibration }, resolveOptions({ 'gate.mode': 'off', 'pseudoLabels.seedFloor': 'off' }));
    expect(open.pseudoLabels!.anomalous).toBeGreaterThan(0);
  });

  it('border normalization: GPU and reference agree, and a detector\'s border bias no longer hides the defects', async () => {
    // A detector whose maps are high near the border, on nominal and defective parts alike.
    const biased = (map: ScoreMap): ScoreMap => {
      const { width: w, height: h } = map;
      const data = map.data.map((v, i) => {
        const x = i % w;
        const y = (i - x) / w;
        return v + 0.6 * Math.max(0, 4 - Math.min(x, y, w - 1 - x, h - 1 - y));
      });
      return { ...map, data };
    };
    const nominal = [21, 22, 23, 24].map((seed) => biased(syntheticSample({ width: 96, height: 80, seed, defects: 0 }).scoreMap));
    const calibration = calibrate(nominal);
    const s = syntheticSample({ width: 96, height: 80, seed: 3, defects: 2 });
    const input = { ...s, scoreMap: biased(s.scoreMap), calibration };
    const on = resolveOptions({ 'features.extractor': 'filterbank', 'pseudoLabels.nominalCount': 300, 'classifier.epochs': 30 });
    const r = referenceSegment(input, on);
    for (const stages of ['gpu', 'host'] as const) {
      const p = await segment(gpu, input, resolveOptions({ 'compute.stages': stages }, on));
      expect(p.pseudoLabels).toEqual(r.pseudoLabels);
      expect(agreement(p.predMask, r.predMask)).toBeGreaterThanOrEqual(0.999);
      expect(p.predScore).toBeCloseTo(r.predScore, 4);
    }
    const g = await segment(gpu, input, resolveOptions({ 'compute.stages': 'gpu' }, on));
    const off = await segment(gpu, input, resolveOptions({ 'features.extractor': 'filterbank', 'pseudoLabels.nominalCount': 300, 'classifier.epochs': 30, 'map.borderNormalize': false }));
    const f1 = (m: Uint8Array) => pixelMetrics(confusion(m, s.groundTruth)).f1;
    // Without the normalization the defects stay under the border's scores: the nominal maps' maxima (the
    // gate) and floors are set by the border bias. With it, they are found (F1 measured 0.565).
    expect(off.emptyReason).toMatch(/image-level gate/);
    expect(f1(off.predMask)).toBe(0);
    expect(f1(g.predMask)).toBeGreaterThan(0.45);
  });

  it('uses supplied feature maps at a coarser stride', async () => {
    const s = syntheticSample({ width: 120, height: 96, seed: 4, defects: 2 });
    const features = syntheticFeatures(s, 12, 4);
    const r = referenceSegment({ ...s, features });
    for (const stages of ['gpu', 'host'] as const) {
      const g = await segment(gpu, { ...s, features }, resolveOptions({ 'compute.stages': stages }));
      expect(g.featureChannels).toBe(12);
      // Supplied maps are resampled and standardized where the stage runs.
      expect(g.placement.features).toBe(stages);
      expect(g.pseudoLabels).toEqual(r.pseudoLabels);
      expect(agreement(g.predMask, r.predMask)).toBeGreaterThanOrEqual(0.999);
    }
  });
});

describe('segment checkpoint (a job time limit)', () => {
  it('is called after each stage in order, and a throw there stops the run with that error', async () => {
    const s = syntheticSample({ width: 64, height: 64, seed: 4, defects: 2 });
    const options = resolveOptions({ 'features.extractor': 'filterbank', 'gate.mode': 'off' });
    const seen: string[] = [];
    await segment(gpu, s, options, { checkpoint: (stage) => void seen.push(stage) });
    expect(seen).toEqual(['upload', 'stats', 'pseudoLabels', 'features', 'gather', 'classifier', 'predict']);

    const stopped: string[] = [];
    const stop = (stage: string) => {
      stopped.push(stage);
      if (stage === 'features') throw new Error(`deadline after ${stage}`);
    };
    await expect(segment(gpu, s, options, { checkpoint: stop })).rejects.toThrow('deadline after features');
    expect(stopped).toEqual(['upload', 'stats', 'pseudoLabels', 'features']);
    // The device is usable at once: the same run completes with the same mask.
    const again = await segment(gpu, s, options);
    const first = await segment(gpu, s, options);
    expect(agreement(again.predMask, first.predMask)).toBe(1);
  });
});
