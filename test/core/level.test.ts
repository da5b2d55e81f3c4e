// map.level: the calibrated thresholds follow the level of the image's own map, so a drift that moves the
// whole map (lighting, exposure) does not move what is marked. Values by hand, and segment (GPU, host) and
// referenceSegment on a map lowered by a constant.

import { beforeAll, describe, expect, it } from 'vitest';
import { calibrate, levelCalibration, type Calibration } from '../../src/core/calibration.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { confusion, pixelMetrics } from '../../src/core/metrics.ts';
import { defaultOptions, resolveOptions } from '../../src/core/options.ts';
import { maskScoreFloor } from '../../src/core/pseudoLabels.ts';
import { segment } from '../../src/core/pipeline.ts';
import { referenceSegment } from '../../src/core/reference/pipeline.ts';
import type { ScoreMap } from '../../src/core/types.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { agreement, testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('levelCalibration', () => {
  const c = {
    count: 2,
    globalMean: 1,
    globalStd: 0.5,
    maxScore: 3,
    imageScores: { mean: 2, std: 0.25, max: 2.5 },
    width: 1,
    height: 1,
    pixelMean: new Float32Array([1]),
    pixelStd: new Float32Array([0.5]),
  } satisfies Calibration;

  it('moves every calibrated threshold by the map median minus the nominal mean', () => {
    expect(levelCalibration(c, 0.75, 'median')).toEqual({ ...c, globalMean: 0.75, maxScore: 2.75, imageScores: { mean: 1.75, std: 0.25, max: 2.25 } });
    expect(levelCalibration(c, 1.5, 'median')).toEqual({ ...c, globalMean: 1.5, maxScore: 3.5, imageScores: { mean: 2.5, std: 0.25, max: 3 } });
  });
  it("'down' moves only down; 'off', no calibration or a non-finite median leave it", () => {
    expect(levelCalibration(c, 1.5, 'down')).toBe(c);
    expect(levelCalibration(c, 0.5, 'down')!.globalMean).toBe(0.5);
    expect(levelCalibration(c, 0.5, 'off')).toBe(c);
    expect(levelCalibration(null, 0.5, 'median')).toBeNull();
    expect(levelCalibration(c, NaN, 'median')).toBe(c);
  });
});

describe('segment with map.level on a map lowered by a constant', () => {
  it('median: the same mask as on the map as it is (GPU, host and reference); off: another mask', async () => {
    const calibration = calibrate([21, 22, 23, 24].map((seed) => syntheticSample({ width: 96, height: 80, seed, defects: 0 }).scoreMap));
    const s = syntheticSample({ width: 96, height: 80, seed: 3, defects: 2 });
    const lowered: ScoreMap = { ...s.scoreMap, data: s.scoreMap.data.map((v) => v - 0.5) };
    // Without the peak floor (mask.peakFraction), whose floor follows each region's own peak and so already
    // undoes most of such a shift (with it, map.level=off keeps 99.8% of the median mask, measured).
    const base = { 'features.extractor': 'filterbank', 'pseudoLabels.nominalCount': 300, 'classifier.epochs': 30, 'map.borderNormalize': false, 'mask.peakFraction': 0 };
    const level = resolveOptions({ ...base, 'map.level': 'median' });
    const off = resolveOptions({ ...base, 'map.level': 'off' });
    const f1 = (m: Uint8Array) => pixelMetrics(confusion(m, s.groundTruth)).f1;

    const asIs = referenceSegment({ ...s, calibration }, level);
    const moved = referenceSegment({ ...s, scoreMap: lowered, calibration }, level);
    expect(moved.pseudoLabels).toEqual(asIs.pseudoLabels);
    expect(agreement(moved.predMask, asIs.predMask)).toBeGreaterThanOrEqual(0.999);
    expect(f1(asIs.predMask)).toBeGreaterThan(0.3);
    for (const stages of ['gpu', 'host'] as const) {
      const g = await segment(gpu, { ...s, scoreMap: lowered, calibration }, resolveOptions({ 'compute.stages': stages }, level));
      expect(g.pseudoLabels).toEqual(moved.pseudoLabels);
      expect(agreement(g.predMask, moved.predMask)).toBeGreaterThanOrEqual(0.999);
    }
    // Without it, the calibrated floors stay where they were and the lowered map gets another mask (here a
    // larger one: these synthetic maps' floors are strict; F1 0.50 as is, 0.86 lowered, measured).
    const moved0 = referenceSegment({ ...s, scoreMap: lowered, calibration }, off);
    expect(agreement(moved0.predMask, referenceSegment({ ...s, calibration }, off).predMask)).toBeLessThan(0.99);
    expect(Math.abs(f1(moved0.predMask) - f1(asIs.predMask))).toBeGreaterThan(0.1);
  });
});

describe('mask.scoreFloorPercentile', () => {
  const c = calibrate([{ data: new Float32Array([0, 2, 0, 2]), width: 2, height: 2 }]);
  it('caps the calibrated floor at the percentile of the image\'s own map', () => {
    // Nominal mean 1, std 1: the default floor is 1 + 1.5 x 1 = 2.5.
    const o = (over: Record<string, unknown>) => resolveOptions(over, defaultOptions());
    expect(maskScoreFloor(c, o({}), { '90': 1.25 })).toBe(2.5);
    expect(maskScoreFloor(c, o({ 'mask.scoreFloorPercentile': 90 }), { '90': 1.25 })).toBe(1.25);
    expect(maskScoreFloor(c, o({ 'mask.scoreFloorPercentile': 90 }), { '90': 3 })).toBe(2.5);
    expect(maskScoreFloor(c, o({ 'mask.scoreFloorPercentile': 90 }))).toBe(2.5);
    expect(maskScoreFloor(c, o({ 'mask.scoreFloorPercentile': 90, 'mask.scoreFloor': 'off' }), { '90': 1.25 })).toBe(-Infinity);
    expect(maskScoreFloor(null, o({ 'mask.scoreFloorPercentile': 90 }), { '90': 1.25 })).toBe(-Infinity);
  });

  it('GPU, host and reference agree with it on a lowered map, whose mask it widens', async () => {
    const calibration = calibrate([21, 22, 23, 24].map((seed) => syntheticSample({ width: 96, height: 80, seed, defects: 0 }).scoreMap));
    const s = syntheticSample({ width: 96, height: 80, seed: 3, defects: 2 });
    const lowered: ScoreMap = { ...s.scoreMap, data: s.scoreMap.data.map((v) => v - 0.3) };
    const base = { 'features.extractor': 'filterbank', 'pseudoLabels.nominalCount': 300, 'classifier.epochs': 30, 'gate.mode': 'off', 'pseudoLabels.seedFloor': 'off' };
    const on = resolveOptions({ ...base, 'mask.scoreFloorPercentile': 90 });
    const r = referenceSegment({ ...s, scoreMap: lowered, calibration }, on);
    for (const stages of ['gpu', 'host'] as const) {
      const g = await segment(gpu, { ...s, scoreMap: lowered, calibration }, resolveOptions({ 'compute.stages': stages }, on));
      expect(g.pseudoLabels).toEqual(r.pseudoLabels);
      expect(agreement(g.predMask, r.predMask)).toBeGreaterThanOrEqual(0.999);
    }
    const calibrated = referenceSegment({ ...s, scoreMap: lowered, calibration }, resolveOptions(base));
    const marked = (m: Uint8Array) => m.reduce((a, v) => a + v, 0);
    expect(marked(r.predMask)).toBeGreaterThan(marked(calibrated.predMask));
  });
});
