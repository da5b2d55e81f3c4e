// Feature sets by composition (features.extractor=combined, features.sources) and the per-group
// normalization (features/groups.ts): GPU and host paths against the plain-TS reference, values compared
// with stated tolerances; the synthetic dark spot the default features must segment.
import { beforeAll, describe, expect, it } from 'vitest';
import { TttError } from '../../src/core/errors.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { coarseMoments, materializeCoarse } from '../../src/core/coarseFeatures.ts';
import { chooseExtractor, extractFeatures, releaseFeatures } from '../../src/core/features/index.ts';
import { channelWeights, chunkWeights, groupWeight, weightStandardization } from '../../src/core/features/groups.ts';
import { channelMoments } from '../../src/core/hostStage.ts';
import { confusion, pixelMetrics } from '../../src/core/metrics.ts';
import { defaultOptions, resolveOptions } from '../../src/core/options.ts';
import { segment } from '../../src/core/pipeline.ts';
import { referenceImageFeatures, referenceSegment } from '../../src/core/reference/pipeline.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';
import { registerResnet50 } from '../../src/models/resnet50.ts';
import { agreement, maxAbsDiff, testGpu } from '../helpers/gpu.ts';

registerMobileNet();
registerResnet50();

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const combined = (sources: string, extra: Record<string, unknown> = {}) =>
  resolveOptions({ 'features.extractor': 'combined', 'features.sources': sources, ...extra });

describe('channel groups', () => {
  it('weighs each group by 1/sqrt(its channels)', () => {
    const w = channelWeights([{ name: 'image', channels: 1 }, { name: 'filterbank', channels: 4 }, { name: 'net', channels: 16 }], 21);
    expect(Array.from(w)).toEqual([1, 0.5, 0.5, 0.5, 0.5, ...Array(16).fill(0.25)]);
    // Each group's total variance after weighting (unit channels): channels x weight^2 = 1.
    for (const k of [1, 3, 25, 320]) expect(k * groupWeight(k) ** 2).toBeCloseTo(1, 12);
    expect(Array.from(channelWeights(undefined, 3))).toEqual([1, 1, 1]);
  });

  it('refuses groups that do not cover the channels, or a chunk across two groups', () => {
    expect(() => channelWeights([{ name: 'a', channels: 2 }], 3)).toThrow(TttError);
    expect(chunkWeights([{ name: 'a', channels: 1 }, { name: 'b', channels: 4 }], [{ channels: 1 }, { channels: 2 }, { channels: 2 }])).toEqual([1, 0.5, 0.5]);
    expect(() => chunkWeights([{ name: 'a', channels: 1 }, { name: 'b', channels: 4 }], [{ channels: 3 }, { channels: 2 }])).toThrow(/straddles/);
  });

  it('folds the weights into a host standardization (constant channels stay 0)', () => {
    const s = { mean: Float64Array.from([1, 2, 3, 4]), sd: Float64Array.from([2, 0, 4, 8]) };
    const w = weightStandardization(s, [{ name: 'a', channels: 1 }, { name: 'b', channels: 2 }], 3);
    expect(Array.from(w.sd)).toEqual([2, 0, 4 * Math.SQRT2, 8]);
    expect(Array.from(w.mean)).toEqual([1, 2, 3, 4]);
  });
});

describe('options', () => {
  it('parses features.sources and refuses unknown or repeated sources', () => {
    expect(combined('image, filterbank').features.sources).toEqual(['image', 'filterbank']);
    expect(() => resolveOptions({ 'features.sources': 'image,colour' })).toThrow(/not one of image, filterbank, mobilenetv2, resnet50:stem, resnet50:stage1/);
    expect(() => resolveOptions({ 'features.sources': 'image,image' })).toThrow(/listed twice/);
  });
});

describe('combined features', () => {
  for (const colour of [false, true]) {
    it(`image+filterbank on the GPU match the reference (${colour ? 'colour' : 'grey'}; grouped and not)`, async () => {
      const s = syntheticSample({ width: 72, height: 56, seed: 4, defects: 2, colour });
      for (const groupNormalize of [true, false]) {
        const options = combined('image,filterbank', { 'features.sigmas': '1,2.5', 'features.groupNormalize': groupNormalize });
        const f = await extractFeatures(gpu, s.image, chooseExtractor(options));
        const c = s.image.channels;
        const fb = colour ? 3 + 11 * 2 : 1 + 8 * 2;
        expect(f.channels).toBe(c + fb);
        expect(f.names.slice(0, c)).toEqual(colour ? ['image.R', 'image.G', 'image.B'] : ['image.I']);
        expect(f.groups).toEqual(groupNormalize ? [{ name: 'image', channels: c }, { name: 'filterbank', channels: fb }] : undefined);
        const n = s.image.width * s.image.height;
        const got = new Float32Array(f.channels * n);
        let o = 0;
        for (const chunk of f.chunks) {
          got.set(await gpu.readF32(chunk.data, chunk.channels * n), o);
          o += chunk.channels * n;
        }
        releaseFeatures(gpu, f);
        const r = referenceImageFeatures(s, options);
        // Standardized values are O(1): absolute 1e-3, as the filterbank's standardization test.
        expect(maxAbsDiff(got, r.data)).toBeLessThan(1e-3);
        // The filterbank group's channels are scaled by 1/sqrt(channels): their RMS is that weight.
        const rms = Math.sqrt(got.subarray((c + 1) * n, (c + 2) * n).reduce((a, v) => a + v * v, 0) / n);
        expect(rms).toBeCloseTo(groupNormalize ? 1 / Math.sqrt(fb) : 1, 3);
      }
    });
  }

  it('host layers (network coarse, others full resolution) give the GPU features, group weights included', async () => {
    const s = syntheticSample({ width: 64, height: 64, seed: 6, defects: 2, colour: true });
    const options = combined('image,filterbank,mobilenetv2', { 'features.sigmas': '1' });
    const extractor = chooseExtractor(options);
    const host = await extractor.extractHost!(gpu, s.image);
    const f = await extractFeatures(gpu, s.image, extractor);
    expect(host.channels).toBe(f.channels);
    expect(host.names).toEqual(f.names);
    expect(host.groups).toEqual(f.groups);
    expect(host.groups!.map((g) => g.name)).toEqual(['image', 'filterbank', 'mobilenetv2']);
    const n = 64 * 64;
    const gpuValues = new Float32Array(f.channels * n);
    let o = 0;
    for (const chunk of f.chunks) {
      gpuValues.set(await gpu.readF32(chunk.data, chunk.channels * n), o);
      o += chunk.channels * n;
    }
    releaseFeatures(gpu, f);
    // The host path's standardization (coarse moments, weights folded in) applied to the materialized maps.
    const st = weightStandardization(coarseMoments(host), host.groups, host.channels);
    const raw = materializeCoarse(host);
    const direct = channelMoments({ data: raw, channels: host.channels, width: 64, height: 64 });
    for (let c = 0; c < host.channels; c++) {
      // Coarse moments against the materialized maps' own: relative 1e-4 (f64 sums of f32 values).
      expect(Math.abs(st.mean[c] - direct.mean[c])).toBeLessThanOrEqual(1e-4 * (Math.abs(direct.mean[c]) + direct.sd[c]) + 1e-9);
    }
    let worst = 0;
    for (let c = 0; c < host.channels; c++) {
      const sd = st.sd[c];
      for (let i = 0; i < n; i++) {
        const h = sd > 1e-12 ? (raw[c * n + i] - st.mean[c]) / sd : 0;
        worst = Math.max(worst, Math.abs(h - gpuValues[c * n + i]));
      }
    }
    // Weighted standardized values are O(1) or smaller: absolute 1e-3 (f32 network and moments on the GPU).
    expect(worst).toBeLessThan(1e-3);
  });

  it('resnet50 stage sources: one run of the network, one group per stage, the same on the host', async () => {
    const s = syntheticSample({ width: 64, height: 48, seed: 2, defects: 1, colour: true });
    const options = combined('image,resnet50:stage1,resnet50:stage2');
    const extractor = chooseExtractor(options);
    const f = await extractFeatures(gpu, s.image, extractor);
    releaseFeatures(gpu, f);
    expect(f.groups).toEqual([
      { name: 'image', channels: 3 },
      { name: 'resnet50:stage1', channels: 256 },
      { name: 'resnet50:stage2', channels: 512 },
    ]);
    expect(f.channels).toBe(3 + 256 + 512);
    const host = await extractor.extractHost!(gpu, s.image);
    expect(host.groups).toEqual(f.groups);
    expect(host.names).toEqual(f.names);
  });

  for (const stages of ['gpu', 'host'] as const) {
    it(`segment with image+filterbank matches referenceSegment (compute.stages=${stages})`, async () => {
      const s = syntheticSample({ width: 96, height: 80, seed: 3, defects: 3 });
      const options = combined('image,filterbank', { 'pseudoLabels.nominalCount': 300, 'classifier.epochs': 30, 'compute.stages': stages });
      const g = await segment(gpu, s, options);
      const r = referenceSegment(s, options);
      expect(g.placement.predict).toBe(stages);
      expect(g.featureChannels).toBe(1 + 25);
      expect(g.pseudoLabels).toEqual(r.pseudoLabels);
      expect(g.classifier!.epochs).toBe(r.classifier!.epochs);
      // As test/core/pipeline.test.ts: weights within 1e-2 (f32 vs f64 SGD), masks agree on 99.9% of pixels.
      expect(maxAbsDiff(g.classifier!.weights, r.classifier!.weights)).toBeLessThan(1e-2);
      expect(agreement(g.predMask, r.predMask)).toBeGreaterThanOrEqual(0.999);
    });
  }
});

describe('the synthetic dark spot', () => {
  // One dark blob on the sinusoidal texture, its map the detector's blurred peak over smooth noise
  // (src/synthetic.ts, as `ttt synth`). mobilenetv2 alone (the default extractor) marks 3.1x and 3.2x the
  // spot here (F1 0.49 and 0.48 on both paths, measured); the combined default sources must reach 0.8 by
  // their features alone: without the peak floor (mask.peakFraction=0), which would cut the exact spot they
  // mark to 0.4x-0.5x (the defaults' own figure on this spot: test/core/peakFloor.test.ts).
  for (const seed of [1, 4]) {
    for (const stages of ['gpu', 'host'] as const) {
      it(`combined features (default sources) segment it with F1 >= 0.8 (seed ${seed}, compute.stages=${stages})`, async () => {
        const s = syntheticSample({ width: 128, height: 128, seed, defects: 1 });
        const r = await segment(gpu, s, resolveOptions({ 'features.extractor': 'combined', 'mask.peakFraction': 0, 'compute.stages': stages }));
        const m = pixelMetrics(confusion(r.predMask, s.groundTruth));
        expect(m.f1).toBeGreaterThanOrEqual(0.8);
      });
    }
  }

  it('defaults are the ones measured (docs/results.md, Classifier features)', () => {
    const d = defaultOptions();
    expect(d.features.extractor).toBe('mobilenetv2');
    expect(d.features.sources).toEqual(['image', 'mobilenetv2']);
    expect(d.features.groupNormalize).toBe(true);
  });
});
