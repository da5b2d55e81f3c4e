// Each GPU stage against its CPU reference, with the tolerances stated per assertion.
import { beforeAll, describe, expect, it } from 'vitest';
import { borderNormalize, calibrate } from '../../src/core/calibration.ts';
import { predict, trainClassifier } from '../../src/core/classifier.ts';
import { normalizeBorder } from '../../src/core/normalize.ts';
import { readMask } from '../../src/core/binarize.ts';
import { extractFeatures } from '../../src/core/features/index.ts';
import { filterbankChannelNames, filterbankExtractor } from '../../src/core/features/filterbank.ts';
import { resampleBilinear } from '../../src/core/features/resample.ts';
import { suppliedExtractor } from '../../src/core/features/supplied.ts';
import { gatherTrainingSet } from '../../src/core/gather.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { pseudoLabels } from '../../src/core/pseudoLabels.ts';
import { referenceGather, referencePredict, referenceTrain } from '../../src/core/reference/classifier.ts';
import { referenceBilinear, referenceFilterbank, referenceStandardize } from '../../src/core/reference/features.ts';
import { referencePseudoLabels } from '../../src/core/reference/pseudoLabels.ts';
import { referenceAnalyzeScoreMap } from '../../src/core/reference/stats.ts';
import { analyzeScoreMap } from '../../src/core/stats.ts';
import type { FeatureTensor, ImageTensor, ScoreMap } from '../../src/core/types.ts';
import { syntheticSample, uniformStream } from '../../src/synthetic.ts';
import { agreement, maxAbsDiff, testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

function noiseMap(width: number, height: number, seed: number, offset = 0): ScoreMap {
  const rnd = uniformStream(seed);
  const data = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = offset + rnd() + 0.5 * Math.sin(i / 97);
  return { data, width, height };
}

async function gpuMap(map: ScoreMap) {
  return { data: gpu.upload(map.data), width: map.width, height: map.height };
}

describe('score-map statistics', () => {
  // 300 x 260 = 78,000 values: two reduction chunks and two histogram chunks.
  for (const [name, map] of [
    ['noise, 2 chunks', noiseMap(300, 260, 1)],
    ['large offset (1e4 + noise)', noiseMap(120, 90, 2, 1e4)],
    ['odd size 37 x 23', noiseMap(37, 23, 3)],
  ] as const) {
    it(name, async () => {
      const qs = [99, 50, 1, 100, 0, 99.9];
      const g = await analyzeScoreMap(gpu, await gpuMap(map), qs);
      const r = referenceAnalyzeScoreMap(map, qs);
      expect(g.stats.min).toBe(r.stats.min);
      expect(g.stats.max).toBe(r.stats.max);
      // f32 parallel reduction vs f64 sequential: relative 1e-5 of the spread.
      expect(Math.abs(g.stats.mean - r.stats.mean)).toBeLessThan(1e-5 * (Math.abs(r.stats.mean) + r.stats.std));
      expect(Math.abs(g.stats.std - r.stats.std) / r.stats.std).toBeLessThan(1e-3);
      expect(g.bins).toEqual(r.bins);
      expect(g.stats.percentiles).toEqual(r.stats.percentiles);
      gpu.release(g.qbins);
    });
  }

  it('percentiles bracket the true order statistics (bin width)', async () => {
    const map = noiseMap(200, 100, 4);
    const g = await analyzeScoreMap(gpu, await gpuMap(map), [99, 50]);
    const sorted = Float64Array.from(map.data).sort();
    const width = (g.stats.max - g.stats.min) / 4096;
    const p99 = sorted[Math.ceil(0.99 * sorted.length) - 1];
    expect(g.stats.percentiles['99']).toBeLessThanOrEqual(p99);
    expect(p99 - g.stats.percentiles['99']).toBeLessThanOrEqual(width * 1.0001);
    gpu.release(g.qbins);
  });

  it('rejects a constant map', async () => {
    const map = { data: new Float32Array(64).fill(3), width: 8, height: 8 };
    await expect(analyzeScoreMap(gpu, await gpuMap(map), [99])).rejects.toMatchObject({ code: 'CONSTANT_MAP' });
  });
});

describe('border normalization', () => {
  it('matches the reference exactly, on maps smaller and larger than the profile\'s bands', async () => {
    const profile = calibrate([noiseMap(90, 70, 1, 3), noiseMap(50, 40, 2, 3)]).border!;
    for (const map of [noiseMap(101, 77, 3, 4), noiseMap(9, 5, 4), noiseMap(256, 1, 5)]) {
      const src = gpu.upload(map.data);
      const out = normalizeBorder(gpu, src, map, profile);
      const got = await gpu.readF32(out, map.width * map.height);
      gpu.release(src, out);
      expect(maxAbsDiff(got, borderNormalize(map, profile))).toBe(0);
    }
  });
});

describe('pseudo-labels', () => {
  const cases = [
    { name: 'defaults, 4 key chunks and 4 compaction blocks', map: noiseMap(520, 380, 5), set: {} },
    { name: 'radius 0, M larger than the eligible set', map: noiseMap(30, 20, 6), set: { 'pseudoLabels.radius': 0, 'pseudoLabels.nominalCount': 1000 } },
    { name: 'radius 3, nominal only below P40, seed 9', map: noiseMap(200, 150, 7), set: { 'pseudoLabels.radius': 3, 'pseudoLabels.nominalPercentile': 40, seed: 9 } },
    { name: 'anomalous percentile 95, 5000 nominal', map: noiseMap(256, 256, 8), set: { 'pseudoLabels.anomalousPercentile': 95, 'pseudoLabels.nominalCount': 5000 } },
  ];
  for (const c of cases) {
    it(`identical label sets: ${c.name}`, async () => {
      const options = resolveOptions(c.set);
      const qs = [options.pseudoLabels.anomalousPercentile, options.pseudoLabels.nominalPercentile];
      const m = await gpuMap(c.map);
      const a = await analyzeScoreMap(gpu, m, qs);
      const g = await pseudoLabels(gpu, m, a.qbins, { min: a.stats.min, scale: a.scale }, options);
      const labels = await gpu.readU32(g.labels);
      const ra = referenceAnalyzeScoreMap(c.map, qs);
      const r = referencePseudoLabels(c.map, { anomalous: ra.bins[0], nominal: ra.bins[1] }, { min: ra.stats.min, scale: ra.scale }, options);
      expect(g.counts).toEqual(r.counts);
      expect(Array.from(labels)).toEqual(Array.from(r.labels));
      expect(r.counts.anomalous).toBeGreaterThan(0);
      expect(r.counts.nominal).toBe(Math.min(options.pseudoLabels.nominalCount, r.counts.eligible));
      // Every nominal pixel is outside the anomalous set and (when restricted) at or below the percentile.
      for (let i = 0; i < labels.length; i++) {
        if (labels[i] === 2 && options.pseudoLabels.nominalPercentile < 100) {
          expect(c.map.data[i]).toBeLessThan(a.stats.percentiles[String(options.pseudoLabels.nominalPercentile)] + (a.stats.max - a.stats.min) / 4096);
        }
      }
      // Training rows come out in pixel order with their targets.
      const rows = g.counts.anomalous + g.counts.nominal;
      const features: FeatureTensor = { data: new Float32Array(3 * labels.length).map((_, k) => (k % 1013) / 1013), channels: 3, width: c.map.width, height: c.map.height };
      const f = await suppliedExtractor(features).extract(gpu, { data: new Float32Array(labels.length), width: c.map.width, height: c.map.height, channels: 1 });
      const set = gatherTrainingSet(gpu, g, rows, f);
      const pixels = await gpu.readU32(set.pixels);
      const x = await gpu.readF32(set.x);
      const targets = await gpu.readF32(set.targets);
      const ref = referenceGather(r.labels, features);
      expect(Array.from(pixels)).toEqual(Array.from(ref.pixels));
      expect(Array.from(targets)).toEqual(Array.from(ref.targets));
      expect(Array.from(x)).toEqual(Array.from(ref.x).map(Math.fround));
      gpu.release(g.labels, g.blockCounts, a.qbins, m.data, set.x, set.pixels, set.targets, ...f.chunks.map((k) => k.data));
    });
  }

  it('a seed floor keeps only seeds that reach it (identical to the reference)', async () => {
    const map = noiseMap(160, 120, 16);
    const options = resolveOptions({ 'pseudoLabels.anomalousPercentile': 95 });
    const m = await gpuMap(map);
    const a = await analyzeScoreMap(gpu, m, [95, 100]);
    const ra = referenceAnalyzeScoreMap(map, [95, 100]);
    const counts = [];
    for (const floor of [-Infinity, Math.fround(a.stats.min + 0.97 * (a.stats.max - a.stats.min)), a.stats.max + 1]) {
      const g = await pseudoLabels(gpu, m, a.qbins, { min: a.stats.min, scale: a.scale }, options, floor);
      const r = referencePseudoLabels(map, { anomalous: ra.bins[0], nominal: ra.bins[1] }, { min: ra.stats.min, scale: ra.scale }, options, floor);
      expect(g.counts).toEqual(r.counts);
      expect(Array.from(await gpu.readU32(g.labels))).toEqual(Array.from(r.labels));
      counts.push(r.counts.anomalous);
    }
    expect(counts[0]).toBeGreaterThan(counts[1]);
    expect(counts[1]).toBeGreaterThan(0);
    expect(counts[2]).toBe(0);
  });

  it('differs with the seed and draws uniformly', async () => {
    const map = noiseMap(100, 100, 10);
    const draws = [];
    for (const seed of [1, 2]) {
      const options = resolveOptions({ seed, 'pseudoLabels.nominalCount': 2000 });
      const m = await gpuMap(map);
      const a = await analyzeScoreMap(gpu, m, [99, 100]);
      const g = await pseudoLabels(gpu, m, a.qbins, { min: a.stats.min, scale: a.scale }, options);
      draws.push(await gpu.readU32(g.labels));
    }
    let both = 0;
    let rowsTop = 0;
    for (let i = 0; i < draws[0].length; i++) {
      if (draws[0][i] === 2 && draws[1][i] === 2) both++;
      if (draws[0][i] === 2 && i < 5000) rowsTop++;
    }
    // Two independent draws of 2000 from ~9900 overlap in about 2000 * 2000 / 9900 = 404 pixels.
    expect(both).toBeGreaterThan(300);
    expect(both).toBeLessThan(520);
    // Half of the pixels are in the top half of the image: 1000 +- 4 sigma (sigma ~ 22).
    expect(Math.abs(rowsTop - 1000)).toBeLessThan(100);
  });
});

describe('features', () => {
  const image = (w: number, h: number, channels: 1 | 3): ImageTensor => {
    const s = syntheticSample({ width: w, height: h, seed: 12, defects: 2, colour: channels === 3 });
    return s.image;
  };
  for (const [w, h, ch] of [[70, 50, 1], [64, 48, 3]] as const) {
    it(`filterbank ${ch === 1 ? 'grey' : 'colour'} ${w}x${h} matches the reference`, async () => {
      const img = image(w, h, ch);
      const sigmas = [1, 2.5];
      const f = await filterbankExtractor(sigmas).extract(gpu, img);
      const r = referenceFilterbank(img, sigmas);
      expect(f.channels).toBe(r.channels);
      expect(f.names).toEqual(filterbankChannelNames(ch === 3, sigmas));
      expect(f.channels).toBe(ch === 1 ? 17 : 25);
      const all = await gpu.readF32(f.chunks[0].data, f.channels * w * h);
      // Values are in [0, 1]; blurs accumulate in f32: absolute 1e-5.
      expect(maxAbsDiff(all, r.data)).toBeLessThan(1e-5);
      for (const c of f.chunks) gpu.release(c.data);
    });
  }

  it('has at least 16 channels with the default three scales', () => {
    expect(filterbankChannelNames(false, [1, 2, 4]).length).toBeGreaterThanOrEqual(16);
  });

  it('standardizes every channel (GPU vs reference), constant channels to 0', async () => {
    const img = image(60, 40, 1);
    const f = await extractFeatures(gpu, img, filterbankExtractor([1]));
    const all = await gpu.readF32(f.chunks[0].data, f.channels * 60 * 40);
    const r = referenceStandardize(referenceFilterbank(img, [1]));
    // Standardized values are O(1): absolute 1e-3 (division by small stds amplifies f32 noise).
    expect(maxAbsDiff(all, r.data)).toBeLessThan(1e-3);
    const flat: ImageTensor = { data: new Float32Array(16).fill(0.25), width: 4, height: 4, channels: 1 };
    const g = await extractFeatures(gpu, flat, filterbankExtractor([1]));
    const zeros = await gpu.readF32(g.chunks[0].data, g.channels * 16);
    expect(Array.from(zeros).every((v) => v === 0)).toBe(true);
  });

  it('resamples bilinearly like the reference (up and down, one plane and several)', async () => {
    const src = noiseMap(33, 17, 13);
    const planes = { data: Float32Array.from({ length: 5 * 33 * 17 }, (_, i) => Math.sin(i * 0.37) + (i % 7) * 0.1), width: 33, height: 17 };
    for (const to of [{ width: 100, height: 52 }, { width: 11, height: 6 }]) {
      for (const [map, count] of [[src, 1], [planes, 5]] as const) {
        const out = resampleBilinear(gpu, gpu.upload(map.data), count, map, to);
        const g = await gpu.readF32(out);
        const r = referenceBilinear(map.data, count, map, to);
        expect(g.length).toBe(count * to.width * to.height);
        expect(maxAbsDiff(g, r)).toBeLessThan(1e-5);
      }
    }
  });
});

describe('classifier', () => {
  for (const loss of ['hinge', 'logistic'] as const) {
    for (const balanced of [true, false]) {
      it(`${loss}, balanced=${balanced}: model and mask match the reference`, async () => {
        const s = syntheticSample({ width: 75, height: 61, seed: 14, defects: 3 });
        const options = resolveOptions({ 'classifier.loss': loss, 'classifier.balanced': balanced, 'classifier.epochs': 40, 'classifier.batchSize': 100 });
        const m = await gpuMap(s.scoreMap);
        const a = await analyzeScoreMap(gpu, m, [99, 100]);
        const labels = await pseudoLabels(gpu, m, a.qbins, { min: a.stats.min, scale: a.scale }, options);
        const f = await extractFeatures(gpu, s.image, filterbankExtractor([1, 2]));
        const rows = labels.counts.anomalous + labels.counts.nominal;
        const labelsHost = await gpu.readU32(labels.labels);
        const set = gatherTrainingSet(gpu, labels, rows, f);
        const { model, report } = await trainClassifier(gpu, set, labels.counts, options);
        const { mask } = predict(gpu, model, f, m.data);
        // 75 x 61 is not a multiple of 4: the scalar predict path.
        const gMask = await readMask(gpu, mask, 75 * 61);
        // With a score floor (the map's median), on both paths.
        const floor = Math.fround((a.stats.min + a.stats.max) / 2);
        const floored = await readMask(gpu, predict(gpu, model, f, m.data, floor).mask, 75 * 61);
        const fr = referenceStandardize(referenceFilterbank(s.image, [1, 2]));
        const ref = referenceTrain(referenceGather(labelsHost, fr), labels.counts, options);
        expect(report.epochs).toBe(ref.epochs);
        expect(report.lossHistory.length).toBe(report.epochs);
        expect(maxAbsDiff(report.lossHistory, ref.lossHistory)).toBeLessThan(1e-3);
        expect(maxAbsDiff(report.weights, ref.weights)).toBeLessThan(2e-3);
        expect(agreement(gMask, referencePredict(ref.weights, fr).mask)).toBeGreaterThanOrEqual(0.999);
        const refFloored = referencePredict(ref.weights, fr, s.scoreMap.data, floor).mask;
        expect(agreement(floored, refFloored)).toBeGreaterThanOrEqual(0.999);
        for (let i = 0; i < floored.length; i++) if (floored[i]) expect(s.scoreMap.data[i]).toBeGreaterThan(floor);
        expect(floored.reduce((x, v) => x + v, 0)).toBeLessThanOrEqual(gMask.reduce((x, v) => x + v, 0));
        // The model separates its own training set well.
        const refMask = referencePredict(ref.weights, fr).mask;
        let right = 0;
        for (let i = 0; i < labelsHost.length; i++) if (labelsHost[i]) right += (labelsHost[i] === 1) === (refMask[i] === 1) ? 1 : 0;
        expect(right / rows).toBeGreaterThan(0.9);
      });
    }
  }

  it('stops early on a loss plateau and is deterministic for a seed', async () => {
    const s = syntheticSample({ width: 64, height: 64, seed: 15, defects: 2 });
    const options = resolveOptions({ 'features.extractor': 'filterbank', 'classifier.epochs': 500, 'classifier.patience': 3, 'classifier.tolerance': 0.01, 'compute.stages': 'gpu' });
    const { segment } = await import('../../src/core/pipeline.ts');
    const a = await segment(gpu, s, options);
    const b = await segment(gpu, s, options);
    expect(a.classifier!.epochs).toBeLessThan(500);
    expect(a.classifier!.weights).toEqual(b.classifier!.weights);
    expect(Array.from(a.predMask)).toEqual(Array.from(b.predMask));
  });
});
