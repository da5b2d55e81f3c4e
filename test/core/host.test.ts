// The host-side pieces of the core: options, input validation, regions, metrics, calibration, gate.
import { describe, expect, it } from 'vitest';
import { BORDER_BANDS, borderBand, borderNormalize, calibrate, calibrationFromJson, calibrationToJson, runCalibration } from '../../src/core/calibration.ts';
import { imageGate } from '../../src/core/gate.ts';
import { confusion, meanMetrics, pixelMetrics } from '../../src/core/metrics.ts';
import { OPTION_SPECS, defaultOptions, parseAssignments, resolveOptions } from '../../src/core/options.ts';
import { trainedResult, validateInput } from '../../src/core/pipeline.ts';
import { closeMask, connectedComponents, fillHoles } from '../../src/core/regions.ts';
import { pcgHash } from '../../src/core/rng.ts';

describe('options', () => {
  it('has a default and a doc for every key, and the documented defaults', () => {
    const d = defaultOptions();
    expect(d.pseudoLabels).toMatchObject({ anomalousPercentile: 99, radius: 1, nominalCount: 500 });
    expect(d.classifier.loss).toBe('hinge');
    expect(d.mask).toMatchObject({ fillHoles: true, closeRadius: 0 });
    for (const s of OPTION_SPECS) expect(s.doc.length).toBeGreaterThan(10);
  });
  it('parses --set assignments with types and ranges', () => {
    const o = resolveOptions(parseAssignments(['classifier.loss=logistic', 'pseudoLabels.radius=2', 'features.sigmas=1,3', 'classifier.balanced=false', 'regions.connectivity=4']));
    expect(o.classifier.loss).toBe('logistic');
    expect(o.pseudoLabels.radius).toBe(2);
    expect(o.features.sigmas).toEqual([1, 3]);
    expect(o.classifier.balanced).toBe(false);
    expect(o.regions.connectivity).toBe(4);
    expect(resolveOptions({ classifier: { lambda: 0.5 } }).classifier.lambda).toBe(0.5);
  });
  it.each([
    [{ 'no.such': 1 }, /unknown option/],
    [{ 'pseudoLabels.radius': 1.5 }, /integer/],
    [{ 'pseudoLabels.radius': 99 }, /outside/],
    [{ 'classifier.loss': 'l1' }, /one of hinge, logistic/],
    [{ 'classifier.learningRate': 0 }, /outside/],
    [{ 'classifier.lambda': 'abc' }, /expected a number/],
    [{ 'classifier.balanced': 'yes' }, /true or false/],
  ])('rejects %j', (set, msg) => {
    expect(() => resolveOptions(set)).toThrow(msg);
  });
  it('rejects malformed assignments', () => {
    expect(() => parseAssignments(['radius'])).toThrow(/key=value/);
  });
});

describe('input validation', () => {
  const image = { data: new Float32Array(20), width: 5, height: 4, channels: 1 as const };
  const map = (w: number, h: number, fill = (i: number) => i) => ({ data: Float32Array.from({ length: w * h }, (_, i) => fill(i)), width: w, height: h });
  it.each([
    ['NaN in the map', { image, scoreMap: map(5, 4, (i) => (i === 7 ? NaN : i)) }, 'NON_FINITE', /score map contains NaN at row 1, column 2/],
    ['Inf in the map', { image, scoreMap: map(5, 4, (i) => (i === 0 ? Infinity : i)) }, 'NON_FINITE', /Infinity/],
    ['constant map', { image, scoreMap: map(5, 4, () => 2) }, 'CONSTANT_MAP', /constant/],
    ['other aspect ratio', { image, scoreMap: map(4, 4) }, 'SIZE_MISMATCH', /different aspect ratios/],
    ['zero-size image', { image: { ...image, width: 0, data: new Float32Array(0) }, scoreMap: map(5, 4) }, 'INVALID_INPUT', /zero or invalid size/],
    ['wrong data length', { image: { ...image, data: new Float32Array(3) }, scoreMap: map(5, 4) }, 'SIZE_MISMATCH', /holds 3 values/],
    ['features of another aspect', { image, scoreMap: map(5, 4), features: { data: new Float32Array(2 * 8), channels: 2, width: 2, height: 4 } }, 'SIZE_MISMATCH', /feature maps/],
  ])('%s', (_name, input, code, msg) => {
    expect(() => validateInput(input as never)).toThrow(msg);
    try {
      validateInput(input as never);
    } catch (e) {
      expect((e as { code: string }).code).toBe(code);
    }
  });
  it('accepts a smaller map of the same aspect ratio', () => {
    expect(() => validateInput({ image: { data: new Float32Array(64 * 48), width: 64, height: 48, channels: 1 }, scoreMap: map(16, 12) })).not.toThrow();
  });
});

describe('connected components', () => {
  // 0 1 1 0 0
  // 0 1 0 0 1
  // 1 0 0 1 1
  const mask = Uint8Array.from([0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1]);
  const scores = Float32Array.from({ length: 15 }, (_, i) => i);
  it('8-connectivity joins diagonals', () => {
    const r = connectedComponents(mask.slice(), 5, 3, scores, 8);
    expect(r.map((x) => x.area)).toEqual([4, 3]);
    expect(r[0].bbox).toEqual({ x: 0, y: 0, width: 3, height: 3 });
    expect(r[0].centroid).toEqual({ x: 1, y: 0.75 });
    expect(r[0].meanScore).toBeCloseTo((1 + 2 + 6 + 10) / 4);
    expect(r[0].maxScore).toBe(10);
    expect(r[1]).toMatchObject({ area: 3, bbox: { x: 3, y: 1, width: 2, height: 2 }, maxScore: 14 });
  });
  it('4-connectivity separates diagonals; minArea removes small regions from the mask', () => {
    expect(connectedComponents(mask.slice(), 5, 3, scores, 4).map((x) => x.area)).toEqual([3, 3, 1]);
    const m = mask.slice();
    const r = connectedComponents(m, 5, 3, scores, 4, 2);
    expect(r.map((x) => x.area)).toEqual([3, 3]);
    expect(m[10]).toBe(0);
    expect(r.map((x) => x.id)).toEqual([1, 2]);
  });
  it('agrees with a flood fill on random masks', () => {
    for (let seed = 0; seed < 5; seed++) {
      const w = 40;
      const h = 30;
      const m = Uint8Array.from({ length: w * h }, (_, i) => (pcgHash(i + seed * 7919) % 100 < 45 ? 1 : 0));
      const regions = connectedComponents(m.slice(), w, h, new Float32Array(w * h), 8);
      const seen = new Uint8Array(w * h);
      const areas: number[] = [];
      for (let i = 0; i < w * h; i++) {
        if (!m[i] || seen[i]) continue;
        let area = 0;
        const stack = [i];
        seen[i] = 1;
        while (stack.length) {
          const p = stack.pop()!;
          area++;
          const x = p % w;
          const y = (p - x) / w;
          for (let dy = -1; dy <= 1; dy++)
            for (let dx = -1; dx <= 1; dx++) {
              const xx = x + dx;
              const yy = y + dy;
              const q = yy * w + xx;
              if (xx >= 0 && yy >= 0 && xx < w && yy < h && m[q] && !seen[q]) {
                seen[q] = 1;
                stack.push(q);
              }
            }
        }
        areas.push(area);
      }
      expect(regions.map((r) => r.area)).toEqual(areas);
    }
  });
});

describe('mask post-processing', () => {
  // Brute-force closing: a max then a min over the clipped (2r+1)^2 window of every pixel.
  const window = (m: Uint8Array, w: number, h: number, r: number, pick: (a: number, b: number) => number): Uint8Array =>
    Uint8Array.from({ length: w * h }, (_, i) => {
      const x = i % w;
      const y = (i - x) / w;
      let v = m[i];
      for (let yy = Math.max(y - r, 0); yy <= Math.min(y + r, h - 1); yy++)
        for (let xx = Math.max(x - r, 0); xx <= Math.min(x + r, w - 1); xx++) v = pick(v, m[yy * w + xx]);
      return v;
    });
  it('closing agrees with a brute-force dilation then erosion on random masks', () => {
    for (const [seed, r] of [[0, 1], [1, 2], [2, 3], [3, 1]]) {
      const w = 23;
      const h = 17;
      const m = Uint8Array.from({ length: w * h }, (_, i) => (pcgHash(i + seed * 104729) % 100 < 30 ? 1 : 0));
      const expected = window(window(m, w, h, r, Math.max), w, h, r, Math.min);
      const got = m.slice();
      closeMask(got, w, h, r);
      expect(Array.from(got)).toEqual(Array.from(expected));
      expect(got.reduce((a, b) => a + b, 0)).toBeGreaterThan(m.reduce((a, b) => a + b, 0));
    }
  });
  it('closing joins a one-pixel gap, keeps an isolated pixel, and radius 0 changes nothing', () => {
    const w = 13;
    const m = new Uint8Array(w * 5);
    for (const x of [2, 3, 5, 6]) m[2 * w + x] = 1;
    m[2 * w + 10] = 1;
    const closed = m.slice();
    closeMask(closed, w, 5, 1);
    const want = new Uint8Array(w * 5);
    for (const x of [2, 3, 4, 5, 6, 10]) want[2 * w + x] = 1;
    expect(Array.from(closed)).toEqual(Array.from(want));
    const same = m.slice();
    closeMask(same, w, 5, 0);
    expect(same).toEqual(m);
  });
  it('fills enclosed holes but not background that reaches the border', () => {
    // A ring with a hole at (2,2), and a U open to the bottom border.
    const rows = ['11111000', '10001011', '10101010', '10001010', '11111010'];
    const w = 8;
    const h = rows.length;
    const m = Uint8Array.from(rows.join(''), (c) => Number(c));
    fillHoles(m, w, h);
    const want = ['11111000', '11111011', '11111010', '11111010', '11111010'];
    expect(Array.from(m).join('')).toBe(want.join(''));
  });
});

describe('trainedResult', () => {
  it('closes and fills the mask before measuring regions, never onto invalid pixels', () => {
    // A ring around a 2x2 hole; the middle column of the hole has no valid measurement.
    const w = 6;
    const h = 6;
    const rows = ['000000', '011110', '010010', '010010', '011110', '000000'];
    const mask = () => Uint8Array.from(rows.join(''), (c) => Number(c));
    const valid = new Uint8Array(w * h).fill(1);
    valid[2 * w + 2] = valid[3 * w + 2] = 0;
    const base = { predScore: 1, anomalyMap: null as never, gate: null, timings: {}, placement: {} };
    const run = { pseudoLabels: { anomalous: 1, nominal: 1, eligible: 1 }, classifier: null as never, featureChannels: 1 };
    const opts = (set: Record<string, unknown>) => resolveOptions(set);
    const plain = trainedResult(base, mask(), new Float32Array(w * h), { width: w, height: h }, run, opts({ 'mask.fillHoles': false }), valid);
    expect(plain.regions.map((r) => r.area)).toEqual([12]);
    const filled = trainedResult(base, mask(), new Float32Array(w * h), { width: w, height: h }, run, opts({ 'mask.fillHoles': true }), valid);
    expect(filled.regions.map((r) => r.area)).toEqual([14]);
    expect([filled.predMask[2 * w + 2], filled.predMask[2 * w + 3], filled.predMask[3 * w + 2], filled.predMask[3 * w + 3]]).toEqual([0, 1, 0, 1]);
    expect(filled.defectFraction).toBeCloseTo(14 / 36);
  });
});

describe('metrics', () => {
  it('computes precision, recall, F1 and IoU', () => {
    const c = confusion(Uint8Array.from([1, 1, 0, 0, 1]), Uint8Array.from([1, 0, 1, 0, 1]));
    expect(c).toEqual({ tp: 2, fp: 1, fn: 1, tn: 1 });
    expect(pixelMetrics(c)).toEqual({ precision: 2 / 3, recall: 2 / 3, f1: 2 / 3, iou: 0.5 });
    expect(pixelMetrics({ tp: 0, fp: 0, fn: 0, tn: 5 })).toEqual({ precision: 1, recall: 1, f1: 1, iou: 1 });
    expect(pixelMetrics({ tp: 0, fp: 3, fn: 0, tn: 5 })).toMatchObject({ precision: 0, f1: 0 });
    expect(meanMetrics([pixelMetrics(c), { precision: 0, recall: 0, f1: 0, iou: 0 }]).f1).toBeCloseTo(1 / 3);
  });
});

describe('calibration and gate', () => {
  const maps = [1, 2, 3].map((k) => ({ data: Float32Array.from({ length: 12 }, (_, i) => k + (i % 2)), width: 4, height: 3 }));
  it('computes global, per-pixel and image-score statistics', () => {
    const c = calibrate(maps);
    // values: k and k+1 for k = 1..3 -> mean 2.5, population std sqrt(2/3 + 1/4)
    expect(c.globalMean).toBeCloseTo(2.5, 12);
    expect(c.globalStd).toBeCloseTo(Math.sqrt(2 / 3 + 0.25), 12);
    expect(c.maxScore).toBe(4);
    expect(c.imageScores).toEqual({ mean: 3, std: Math.sqrt(2 / 3), max: 4 });
    expect(c.pixelMean[0]).toBeCloseTo(2);
    expect(c.pixelStd[1]).toBeCloseTo(Math.sqrt(2 / 3), 6);
    const back = calibrationFromJson(JSON.parse(JSON.stringify(calibrationToJson(c))));
    expect(back).toEqual(c);
  });
  it('learns the border profile: statistics per distance to the border, and the normalized nominal statistics', () => {
    // Maps of two sizes biased near the border: +6 at distance 0, +3 at distance 1, noise everywhere.
    const biased = [
      [256, 64, 1],
      [256, 80, 2],
      [256, 64, 3],
    ].map(([w, h, seed]) => {
      const data = new Float32Array(w * h);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const d = Math.min(x, y, w - 1 - x, h - 1 - y);
          data[y * w + x] = 10 + (d === 0 ? 6 : d === 1 ? 3 : 0) + (pcgHash(seed * 100003 + y * w + x) / 2 ** 32 - 0.5);
        }
      return { data, width: w, height: h };
    });
    const c = calibrate(biased);
    const b = c.border!;
    expect(b.mean).toHaveLength(BORDER_BANDS);
    expect(b.mean[0]).toBeCloseTo(16, 1);
    expect(b.mean[1]).toBeCloseTo(13, 1);
    expect(b.mean[10]).toBeCloseTo(10, 1);
    // Uniform noise of width 1: std 1/sqrt(12) in every band.
    for (const k of [0, 1, 10, BORDER_BANDS - 1]) expect(b.std[k]).toBeCloseTo(1 / Math.sqrt(12), 1);
    // Per band mean 0 and std 1, so over all nominal pixels too.
    expect(b.normalized.globalMean).toBeCloseTo(0, 6);
    expect(b.normalized.globalStd).toBeCloseTo(1, 6);
    // The bias is gone: border and interior pixels of a normalized map are alike.
    const z = borderNormalize(biased[0], b);
    const at = (x: number, y: number) => z[y * 256 + x];
    expect(Math.abs(at(0, 20))).toBeLessThan(2.5);
    expect(Math.abs(at(100, 30))).toBeLessThan(2.5);
    // Bands are 1/256 of the longest side: a pixel 1 from the border of a 128-pixel map is in band 2.
    expect([borderBand(1, 10, 128, 100, BORDER_BANDS), borderBand(10, 1, 512, 100, BORDER_BANDS), borderBand(50, 50, 100, 100, BORDER_BANDS)]).toEqual([2, 0, 31]);
    // The run uses the normalized statistics only when asked and when the profile exists.
    expect(runCalibration(c, true).calibration!.globalStd).toBeCloseTo(1, 6);
    expect(runCalibration(c, false)).toEqual({ calibration: c, profile: null });
    const { border: _b, ...old } = c;
    expect(runCalibration(old, true)).toEqual({ calibration: old, profile: null });
    // JSON: kept, checked; calibrations stored before the profile load without it.
    const back = calibrationFromJson(JSON.parse(JSON.stringify(calibrationToJson(c))));
    expect(back.border).toEqual(b);
    const { border: _j, ...oldJson } = calibrationToJson(c);
    expect(calibrationFromJson(oldJson).border).toBeUndefined();
    expect(() => calibrationFromJson({ ...calibrationToJson(c), border: { ...calibrationToJson(c).border!, std: b.std.map(() => 0) } })).toThrow(/positive stds/);
  });
  it('a band without a valid pixel takes the nearest band that has some', () => {
    // 256 x 64 maps whose outermost ring is a hole: band 0 has no valid pixel.
    const w = 256;
    const h = 64;
    const maps = [1, 2].map((k) => ({ data: Float32Array.from({ length: w * h }, (_, i) => k + (i % 7)), width: w, height: h }));
    const ring = Uint8Array.from({ length: w * h }, (_, i) => (Math.min(i % w, Math.floor(i / w), w - 1 - (i % w), h - 1 - Math.floor(i / w)) === 0 ? 0 : 1));
    const b = calibrate(maps, [ring, ring]).border!;
    expect(b.mean[0]).toBe(b.mean[1]);
    expect(b.std[0]).toBe(b.std[1]);
    expect(b.mean.every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(b.normalized.globalStd)).toBe(true);
  });
  it('resamples maps of another size for the per-pixel statistics', () => {
    const c = calibrate([maps[0], { data: new Float32Array(48).fill(5), width: 8, height: 6 }]);
    expect(c.width).toBe(4);
    expect(c.pixelMean[0]).toBeCloseTo(3);
  });
  it('rejects an empty set and non-finite maps', () => {
    expect(() => calibrate([])).toThrow(/at least one/);
    expect(() => calibrate([{ data: Float32Array.from([1, NaN]), width: 2, height: 1 }])).toThrow(/NaN/);
  });
  it('gates on the nominal image scores', () => {
    const c = calibrate(maps);
    const o = resolveOptions({ 'gate.mode': 'max' });
    expect(imageGate(4.5, c, o)).toEqual({ imageScore: 4.5, threshold: 4, anomalous: true });
    expect(imageGate(3.9, c, o)!.anomalous).toBe(false);
    expect(imageGate(3.9, c, resolveOptions({ 'gate.mode': 'sigma', 'gate.sigmas': 1 }))).toMatchObject({ threshold: 3 + Math.sqrt(2 / 3), anomalous: true });
    expect(imageGate(3.9, c, resolveOptions({ 'gate.mode': 'off' }))).toBeNull();
    expect(imageGate(3.9, null, o)).toBeNull();
    // The default: above the mean nominal image score.
    expect(imageGate(3.1, c, defaultOptions())).toEqual({ imageScore: 3.1, threshold: 3, anomalous: true });
  });
});
