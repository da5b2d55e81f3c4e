import { beforeAll, describe, expect, it } from 'vitest';
import {
  BASELINE_METHODS,
  type BaselineMethod,
  baselineMask,
  erode,
  f32Below,
  oracleThreshold,
  otsuBin,
  otsuThreshold,
} from '../../src/core/baselines.ts';
import { calibrate, type Calibration } from '../../src/core/calibration.ts';
import { TttError } from '../../src/core/errors.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { MEBIN, stableIntervalEnd, sweepComponentCounts, sweepThresholds } from '../../src/core/mebin.ts';
import { confusion, pixelMetrics } from '../../src/core/metrics.ts';
import { referenceBaselineMask, referenceErode, referenceHistogram } from '../../src/core/reference/baselines.ts';
import { referenceMoments } from '../../src/core/reference/stats.ts';
import { connectedComponents } from '../../src/core/regions.ts';
import type { ScoreMap } from '../../src/core/types.ts';
import { syntheticSample, uniformStream } from '../../src/synthetic.ts';
import { agreement, testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const nominal = (width: number, height: number, seeds: number[], mapStride = 1): ScoreMap[] =>
  seeds.map((seed) => syntheticSample({ width, height, seed, defects: 0, mapStride }).scoreMap);

async function typedError(fn: () => unknown): Promise<TttError> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof TttError) return e;
    throw e;
  }
  throw new Error('expected a TttError');
}

/** Three Gaussian blobs of known centre on uniform noise of amplitude `noise`. */
function blobMap(width: number, height: number, seed: number, noise: number) {
  const rnd = uniformStream(seed);
  const blobs = [
    { x: 30, y: 30, sigma: 6 },
    { x: 90, y: 25, sigma: 8 },
    { x: 60, y: 70, sigma: 7 },
  ];
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = noise * rnd();
      for (const b of blobs) v += Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.sigma * b.sigma));
      data[y * width + x] = v;
    }
  }
  return { map: { data, width, height }, blobs };
}

describe('baselineMask (GPU) against referenceBaselineMask (CPU)', () => {
  const sample = syntheticSample({ width: 96, height: 80, seed: 3, defects: 3 });
  const sameSize = calibrate(nominal(96, 80, [21, 22, 23, 24]));
  // Nominal maps from a detector at stride 4: the per-pixel thresholds are upsampled to the test map.
  const coarse = calibrate(nominal(96, 80, [31, 32, 33], 4));

  for (const { method } of BASELINE_METHODS) {
    it(method, async () => {
      const g = await baselineMask(gpu, sample.scoreMap, method, sameSize);
      const r = referenceBaselineMask(sample.scoreMap, method, sameSize);
      expect(g.threshold).toBe(r.threshold);
      expect(g.mask).toEqual(r.mask);
      const set = r.mask.reduce((a, b) => a + b, 0);
      expect(set).toBeGreaterThan(0);
      expect(set).toBeLessThan(r.mask.length);
    });
  }

  it('thr_pixel_3sigma with the calibration resampled from 24x20 to 96x80', async () => {
    expect([coarse.width, coarse.height]).toEqual([24, 20]);
    const g = await baselineMask(gpu, sample.scoreMap, 'thr_pixel_3sigma', coarse);
    const r = referenceBaselineMask(sample.scoreMap, 'thr_pixel_3sigma', coarse);
    expect(g.threshold).toBeNull();
    expect(agreement(g.mask, r.mask)).toBeGreaterThanOrEqual(0.999);
    expect(r.mask.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('otsu chooses the same histogram bin as the CPU histogram', async () => {
    const { data } = sample.scoreMap;
    const { min, max } = referenceMoments(data);
    const bin = otsuBin(referenceHistogram(data, min, max));
    const g = await baselineMask(gpu, sample.scoreMap, 'otsu', null);
    expect(g.threshold).toBe(otsuThreshold(bin, min, max));
  });

  it('erodes on the GPU exactly as the CPU reference (odd sizes, maps narrower than the window)', async () => {
    const rnd = uniformStream(5);
    for (const [w, h] of [[37, 23], [4, 9], [1, 1], [130, 3]]) {
      const values = Float32Array.from({ length: w * h }, () => rnd() * 10 - 5);
      const buf = gpu.upload(values);
      const out = erode(gpu, buf, w, h);
      const got = await gpu.readF32(out, w * h);
      gpu.release(buf, out);
      expect(got).toEqual(referenceErode(values, w, h));
    }
  });
});

describe('calibrated thresholds on known statistics', () => {
  // Two nominal maps, all 1 and all 3: mean 2, std 1, maximum 3.
  const flat = (v: number, w = 8, h = 6): ScoreMap => ({ data: new Float32Array(w * h).fill(v), width: w, height: h });
  const c = calibrate([flat(1), flat(3)]);
  const ramp: ScoreMap = { data: Float32Array.from({ length: 48 }, (_, i) => i / 6), width: 8, height: 6 };

  const expected: [BaselineMethod, number][] = [
    ['thr_global_3sigma', 5],
    ['thr_global_1sigma', 3],
    ['max_nominal', 3],
  ];
  for (const [method, t] of expected) {
    it(`${method} = ${t}`, async () => {
      for (const out of [await baselineMask(gpu, ramp, method, c), referenceBaselineMask(ramp, method, c)]) {
        expect(out.threshold).toBe(t);
        expect(Array.from(out.mask)).toEqual(Array.from(ramp.data, (v) => (v > t ? 1 : 0)));
      }
    });
  }

  it('thr_pixel_3sigma = per-pixel mean + 3 std, also after resampling', async () => {
    // Pixel i: 0.1 i and 0.1 i + 2, so mean 0.1 i + 1, std 1, threshold 0.1 i + 4.
    const a: ScoreMap = { data: Float32Array.from({ length: 48 }, (_, i) => 0.1 * i), width: 8, height: 6 };
    const b: ScoreMap = { data: a.data.map((v) => v + 2), width: 8, height: 6 };
    const pc = calibrate([a, b]);
    const probe: ScoreMap = { data: Float32Array.from({ length: 48 }, (_, i) => 0.1 * i + 4 + (i % 2 ? 0.05 : -0.05)), width: 8, height: 6 };
    const want = Array.from({ length: 48 }, (_, i) => i % 2);
    expect(Array.from((await baselineMask(gpu, probe, 'thr_pixel_3sigma', pc)).mask)).toEqual(want);
    expect(Array.from(referenceBaselineMask(probe, 'thr_pixel_3sigma', pc).mask)).toEqual(want);
    // A uniform per-pixel threshold (5) stays 5 when upsampled to 16x12.
    const up: ScoreMap = { data: Float32Array.from({ length: 192 }, (_, i) => (i % 3 === 0 ? 5.5 : 4.5)), width: 16, height: 12 };
    const upWant = Array.from(up.data, (v) => (v > 5 ? 1 : 0));
    expect(Array.from((await baselineMask(gpu, up, 'thr_pixel_3sigma', c)).mask)).toEqual(upWant);
    expect(Array.from(referenceBaselineMask(up, 'thr_pixel_3sigma', c).mask)).toEqual(upWant);
  });
});

describe('otsu', () => {
  it('separates the two modes of a bimodal map', async () => {
    const rnd = uniformStream(12);
    const w = 64;
    const h = 48;
    const high = Uint8Array.from({ length: w * h }, () => (rnd() < 0.3 ? 1 : 0));
    const data = Float32Array.from(high, (b) => (b ? 0.8 : 0.2) + 0.1 * (rnd() - 0.5));
    const map = { data, width: w, height: h };
    const lowTop = Math.max(...data.filter((_, i) => !high[i]));
    const highBottom = Math.min(...data.filter((_, i) => high[i]));
    for (const out of [await baselineMask(gpu, map, 'otsu', null), referenceBaselineMask(map, 'otsu', null)]) {
      // Between the modes; with the empty bins between them tied, the first split: the lower mode's top.
      expect(out.threshold).toBeGreaterThanOrEqual(lowTop);
      expect(out.threshold).toBeLessThan(highBottom);
      expect(out.mask).toEqual(high);
    }
  });

  it('maximizes the between-class variance over the bins (brute force)', () => {
    const rnd = uniformStream(3);
    for (let trial = 0; trial < 20; trial++) {
      const hist = Array.from({ length: 40 }, () => (rnd() < 0.3 ? 0 : Math.floor(rnd() * 50)));
      const total = hist.reduce((a, b) => a + b, 0);
      const variance = (k: number) => {
        const lo = hist.slice(0, k + 1);
        const hi = hist.slice(k + 1);
        const w0 = lo.reduce((a, b) => a + b, 0) / total;
        const w1 = hi.reduce((a, b) => a + b, 0) / total;
        if (w0 === 0 || w1 === 0) return -1;
        const m0 = lo.reduce((a, c, i) => a + i * c, 0) / (w0 * total);
        const m1 = hi.reduce((a, c, i) => a + (i + k + 1) * c, 0) / (w1 * total);
        return w0 * w1 * (m0 - m1) ** 2;
      };
      const best = Math.max(...hist.slice(0, -1).map((_, k) => variance(k)));
      expect(variance(otsuBin(hist))).toBeCloseTo(best, 10);
    }
  });
});

describe('mebin', () => {
  it('finds the three blobs of a noisy map, one region each', async () => {
    const { map, blobs } = blobMap(128, 96, 7, 0.2);
    const g = await baselineMask(gpu, map, 'mebin', null);
    const r = referenceBaselineMask(map, 'mebin', null);
    expect(g.threshold).toBe(r.threshold);
    expect(g.mask).toEqual(r.mask);
    const regions = connectedComponents(r.mask.slice(), map.width, map.height, map.data, 8);
    expect(regions).toHaveLength(3);
    for (const b of blobs) {
      expect(r.mask[b.y * map.width + b.x]).toBe(1);
      const region = regions.find((q) => Math.hypot(q.centroid.x - b.x, q.centroid.y - b.y) < 2);
      expect(region).toBeDefined();
      // Each region spans at least the blob's core (radius sigma).
      expect(region!.area).toBeGreaterThan(Math.PI * b.sigma * b.sigma);
    }
  });

  it('counts components at every sweep threshold exactly as connectedComponents does', () => {
    const rnd = uniformStream(9);
    for (const [w, h] of [[40, 30], [17, 53]]) {
      const { data } = syntheticSample({ width: w, height: h, seed: Math.floor(rnd() * 1000), defects: 3, noise: 0.6 }).scoreMap;
      const { min, max } = referenceMoments(data);
      const eroded = referenceErode(data, w, h);
      const counts = sweepComponentCounts(eroded, w, h, min, max);
      const expected = sweepThresholds().map((t) => {
        const mask = Uint8Array.from(eroded, (v) => (((v - min) / (max - min)) * 255 > t ? 1 : 0));
        return connectedComponents(mask, w, h, data, 8).length;
      });
      expect(counts).toEqual(expected);
      expect(Math.max(...counts)).toBeGreaterThan(0);
    }
    // White noise without erosion: many small components that merge as the threshold falls.
    const noise = Float32Array.from({ length: 25 * 19 }, () => rnd());
    const counts = sweepComponentCounts(noise, 25, 19, 0, 1);
    const expected = sweepThresholds().map((t) =>
      connectedComponents(Uint8Array.from(noise, (v) => (v * 255 > t ? 1 : 0)), 25, 19, noise, 8).length,
    );
    expect(counts).toEqual(expected);
    expect(Math.max(...counts)).toBeGreaterThan(10);
  });

  it('takes the end of the longest stable interval, with the source tie-breaking', () => {
    expect(sweepThresholds()).toHaveLength(64);
    expect(sweepThresholds()[63]).toBe(3);
    expect(MEBIN.minIntervalLen).toBe(4);
    // Count 2 holds for 5 steps (2..6), count 1 for 4: the end of the run of 2s.
    expect(stableIntervalEnd([0, 0, 2, 2, 2, 2, 2, 1, 1, 1, 1, 5])).toBe(6);
    // Zero counts and runs shorter than 4 never qualify.
    expect(stableIntervalEnd([0, 0, 0, 0, 0, 3, 3, 3, 1, 1, 1])).toBeNull();
    // Equal longest runs of different counts: the count met first (higher threshold).
    expect(stableIntervalEnd([1, 1, 1, 1, 2, 2, 2, 2])).toBe(3);
    // Two equal runs of the same count: the last one.
    expect(stableIntervalEnd([3, 3, 3, 3, 4, 3, 3, 3, 3, 5])).toBe(8);
  });

  it('gives an empty mask at the map maximum when no stable interval exists', async () => {
    // A single spike on a flat map vanishes under the 6x6 erosion at every threshold.
    const data = new Float32Array(20 * 20);
    data[10 * 20 + 10] = 1;
    const map = { data, width: 20, height: 20 };
    for (const out of [await baselineMask(gpu, map, 'mebin', null), referenceBaselineMask(map, 'mebin', null)]) {
      expect(out.threshold).toBe(1);
      expect(out.mask.every((v) => v === 0)).toBe(true);
    }
  });
});

describe('bad input', () => {
  const map = syntheticSample({ width: 32, height: 24, seed: 2, defects: 1 }).scoreMap;
  const calibrated = BASELINE_METHODS.filter((m) => m.needsCalibration).map((m) => m.method);

  it('a method needing a calibration without one is INVALID_INPUT', async () => {
    expect(calibrated).toEqual(['thr_global_3sigma', 'thr_global_1sigma', 'thr_pixel_3sigma', 'max_nominal']);
    for (const method of calibrated) {
      for (const e of [await typedError(() => baselineMask(gpu, map, method, null)), await typedError(() => referenceBaselineMask(map, method, null))]) {
        expect(e.code).toBe('INVALID_INPUT');
        expect(e.message).toContain(method);
        expect(e.message).toContain('calibration');
      }
    }
  });

  it('names unknown methods, constant maps, non-finite scores and mismatched calibrations', async () => {
    const c: Calibration = calibrate(nominal(32, 24, [1, 2]));
    const unknown = await typedError(() => baselineMask(gpu, map, 'percentile' as BaselineMethod, c));
    expect(unknown.code).toBe('INVALID_OPTION');
    expect(unknown.message).toContain('percentile');
    const flat = { data: new Float32Array(12).fill(0.5), width: 4, height: 3 };
    for (const method of ['otsu', 'mebin'] as const) {
      expect((await typedError(() => baselineMask(gpu, flat, method, null))).code).toBe('CONSTANT_MAP');
      expect((await typedError(() => referenceBaselineMask(flat, method, null))).code).toBe('CONSTANT_MAP');
    }
    const nan = { data: map.data.slice(), width: 32, height: 24 };
    nan.data[5] = NaN;
    expect((await typedError(() => baselineMask(gpu, nan, 'otsu', null))).code).toBe('NON_FINITE');
    const wrongLength = { data: new Float32Array(10), width: 4, height: 3 };
    expect((await typedError(() => referenceBaselineMask(wrongLength, 'otsu', null))).code).toBe('SIZE_MISMATCH');
    const square = { data: new Float32Array(32 * 32).fill(1), width: 32, height: 32 };
    const mismatch = await typedError(() => baselineMask(gpu, square, 'thr_pixel_3sigma', c));
    expect(mismatch.code).toBe('SIZE_MISMATCH');
    expect(mismatch.message).toContain('32x24');
  });
});

describe('oracleThreshold', () => {
  /** Pooled F1 of score > t over every candidate threshold, the slow way. */
  function bruteForce(maps: { scores: Float32Array; truth: Uint8Array }[]): { threshold: number; f1: number } {
    const f1At = (t: number) => {
      const pred = maps.map((m) => Uint8Array.from(m.scores, (v) => (v > t ? 1 : 0)));
      const c = maps.reduce(
        (acc, m, k) => {
          const d = confusion(pred[k], m.truth);
          return { tp: acc.tp + d.tp, fp: acc.fp + d.fp, fn: acc.fn + d.fn, tn: acc.tn + d.tn };
        },
        { tp: 0, fp: 0, fn: 0, tn: 0 },
      );
      return pixelMetrics(c).f1;
    };
    const candidates = [...new Set(maps.flatMap((m) => Array.from(m.scores)))].sort((a, b) => b - a);
    candidates.push(-Infinity);
    let best = { threshold: NaN, f1: -1 };
    for (const t of candidates) {
      const f = f1At(t);
      if (f > best.f1) best = { threshold: t, f1: f };
    }
    return best;
  }

  it('matches a brute-force sweep on small random data (with ties)', () => {
    const rnd = uniformStream(4);
    for (let trial = 0; trial < 30; trial++) {
      const maps = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => {
        const n = 5 + Math.floor(rnd() * 40);
        const truth = Uint8Array.from({ length: n }, () => (rnd() < 0.3 ? 1 : 0));
        // Quantized scores, shifted up on defects, so values repeat across classes.
        const scores = Float32Array.from(truth, (t) => Math.round((rnd() + (t ? 0.4 : 0)) * 8) / 8);
        return { scores, truth };
      });
      const fast = oracleThreshold(maps);
      const slow = bruteForce(maps);
      expect(fast.f1).toBeCloseTo(slow.f1, 12);
      if (Number.isFinite(slow.threshold)) expect(fast.threshold).toBe(slow.threshold);
      else expect(fast.threshold).toBe(f32Below(Math.min(...maps.flatMap((m) => Array.from(m.scores)))));
    }
  });

  it('handles all-defective and defect-free sets', () => {
    const scores = Float32Array.from([0.5, 0.25, 1, 0.25]);
    const all = oracleThreshold([{ scores, truth: new Uint8Array(4).fill(1) }]);
    expect(all.f1).toBe(1);
    expect(all.threshold).toBeLessThan(0.25);
    expect(Math.fround(all.threshold)).toBe(all.threshold);
    const none = oracleThreshold([{ scores, truth: new Uint8Array(4) }]);
    expect(none).toEqual({ threshold: 1, f1: 1 });
    expect(f32Below(0)).toBeLessThan(0);
    expect(f32Below(-2)).toBeLessThan(-2);
  });

  it('rejects empty sets and mismatched truth', async () => {
    expect((await typedError(() => oracleThreshold([]))).code).toBe('INVALID_INPUT');
    expect((await typedError(() => oracleThreshold([{ scores: new Float32Array(3), truth: new Uint8Array(2) }]))).code).toBe('SIZE_MISMATCH');
  });
});
