// The WebAssembly SIMD kernels of the host stage (src/core/wasm/host.wat) against the JS loops they replace
// (channelMomentsJs, hostPredictMaskJs: the reference), and the committed module against its text.
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { assembleHostWat, hostWasmModule, MODULE_FILE } from '../../scripts/build-wasm.ts';
import {
  channelMoments,
  channelMomentsJs,
  hostAnalyzeScoreMap,
  hostGather,
  hostPredictMask,
  hostPredictMaskJs,
  hostPseudoLabels,
  hostTestTimeStage,
  hostTrain,
} from '../../src/core/hostStage.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { requestedPercentiles } from '../../src/core/pipeline.ts';
import type { FeatureTensor } from '../../src/core/types.ts';
import { HOST_WASM_BASE64 } from '../../src/core/wasm/hostWasm.ts';
import { hostWasm, isStaged, stageFeatures } from '../../src/core/wasm/hostKernels.ts';
import { syntheticFeatures, syntheticSample } from '../../src/synthetic.ts';

const count = (m: Uint8Array) => m.reduce((a, b) => a + b, 0);
const diffs = (a: Uint8Array, b: Uint8Array) => a.reduce((d, v, i) => d + (v !== b[i] ? 1 : 0), 0);

describe('host stage WebAssembly kernels', () => {
  it('the committed module is the assembly of host.wat (wabt), and it validates here (SIMD)', async () => {
    const bytes = await assembleHostWat();
    expect(readFileSync(MODULE_FILE, 'utf8')).toBe(hostWasmModule(bytes));
    expect(Buffer.from(HOST_WASM_BASE64, 'base64').equals(Buffer.from(bytes))).toBe(true);
    expect(WebAssembly.validate(Uint8Array.from(bytes))).toBe(true);
    // Node 20 has WebAssembly SIMD: the tests below run the kernels, not the fallback.
    expect(hostWasm()).not.toBeNull();
  });

  // Shapes with pixels not a multiple of 4 and every channel remainder of the 8/4/1 sweeps; a tile boundary
  // inside the image (2048 pixels).
  const shapes: [number, number, number][] = [[101, 37, 13], [64, 64, 25], [45, 51, 8], [33, 7, 3], [70, 30, 1], [48, 48, 152]];
  for (const [w, h, C] of shapes) {
    const sample = syntheticSample({ width: w, height: h, seed: w + C, defects: 2 });
    const features = syntheticFeatures(sample, C, 1);

    it(`moments are bit-identical to the JS loops (${w}x${h}, ${C} channels)`, () => {
      const a = channelMoments(features);
      const b = channelMomentsJs(features);
      // Same f64 sums in the same order: exactly equal (the brief's tolerance was 1e-12 relative).
      for (let c = 0; c < C; c++) {
        expect(a.mean[c]).toBe(b.mean[c]);
        expect(a.sd[c]).toBe(b.sd[c]);
        expect(b.sd[c]).toBeGreaterThan(0);
      }
    });

    it(`masks are identical to the JS loops (${w}x${h}, ${C} channels)`, () => {
      const st = channelMomentsJs(features);
      // Biases that put the decision boundary inside the data (standardized: 0.05; raw: -w.mean + 0.01).
      const wc0 = Array.from({ length: C }, (_, i) => Math.sin(1 + i * 1.7) * 0.4);
      const weightsFor = (s: typeof st | null) => [...wc0, s ? 0.05 : 0.01 - wc0.reduce((a, wc, c) => a + wc * st.mean[c], 0)];
      const scores = sample.scoreMap.data;
      const valid = Uint8Array.from({ length: w * h }, (_, i) => (i % 11 === 0 ? 0 : 1));
      for (const [standardization, floor, v] of [[st, -Infinity, null], [null, -Infinity, null], [st, 0.3, null], [st, -Infinity, valid]] as const) {
        const weights = weightsFor(standardization);
        const a = hostPredictMask(weights, features, standardization, scores, floor, v);
        const b = hostPredictMaskJs(weights, features, standardization, scores, floor, v);
        expect(diffs(a, b)).toBe(0);
        // Neither all nor nothing: the comparison can fail.
        expect(count(b)).toBeGreaterThan(0);
        expect(count(b)).toBeLessThan(w * h);
      }
    });
  }

  it('staged features are used only while they are the ones in memory; the memory grows for larger ones', () => {
    const small = syntheticFeatures(syntheticSample({ width: 40, height: 30, seed: 3, defects: 1 }), 9, 1);
    const large = syntheticFeatures(syntheticSample({ width: 200, height: 150, seed: 4, defects: 2 }), 60, 1);
    const s = stageFeatures(small.data, 40 * 30, 9);
    expect(isStaged(s, small.data)).toBe(true);
    expect(isStaged(s, large.data)).toBe(false);
    const before = hostWasm()!.memory.buffer.byteLength;
    const l = stageFeatures(large.data, 200 * 150, 60);
    expect(hostWasm()!.memory.buffer.byteLength).toBeGreaterThanOrEqual(Math.max(before, 200 * 150 * 60 * 4));
    // s is stale now: channelMoments copies the small features again instead of reading the large ones.
    expect(isStaged(s, small.data)).toBe(false);
    expect(Array.from(channelMoments(small, null, s).mean)).toEqual(Array.from(channelMomentsJs(small).mean));
    expect(Array.from(channelMoments(large, null, l).sd)).toEqual(Array.from(channelMomentsJs(large).sd));
    // Mismatched sizes are refused (the callers fall back to JS).
    expect(stageFeatures(small.data, 40 * 30, 8)).toBeNull();
  });

  it('the whole stage gives the mask of the JS loops', () => {
    const sample = syntheticSample({ width: 128, height: 96, seed: 21, defects: 3 });
    const features = syntheticFeatures(sample, 25, 1);
    const options = resolveOptions({});
    const pct = requestedPercentiles(options);
    const out = hostTestTimeStage(sample.scoreMap, features, options, pct, { mask: 0.2 });
    const analysis = hostAnalyzeScoreMap(sample.scoreMap, pct);
    const labels = hostPseudoLabels(sample.scoreMap, analysis, options);
    const st = channelMomentsJs(features);
    const classifier = hostTrain(hostGather(labels, features, st), labels.counts, options);
    expect(out.classifier!.weights).toEqual(classifier.weights);
    const ref = hostPredictMaskJs(classifier.weights, features, st, sample.scoreMap.data, 0.2);
    expect(count(ref)).toBeGreaterThan(50);
    expect(diffs(out.mask!, ref)).toBe(0);
  });
});

describe('score map statistics with the WebAssembly kernels', () => {
  // An all-ones validity mask runs the JS loops (the kernels serve the maps without one): the reference.
  const pct = requestedPercentiles(resolveOptions({}));
  for (const [w, h] of [[256, 256], [101, 37], [13, 7], [3, 1]] as const) {
    it(`bins per pixel identical, extremes identical, moments within 1e-12 (${w}x${h})`, () => {
      const map = syntheticSample({ width: w, height: h, seed: w * h, defects: 2 }).scoreMap;
      const a = hostAnalyzeScoreMap(map, pct);
      const b = hostAnalyzeScoreMap(map, pct, new Uint8Array(w * h).fill(1));
      expect(diffs(new Uint8Array(a.pixelBins.buffer), new Uint8Array(b.pixelBins.buffer))).toBe(0);
      expect(a.bins).toEqual(b.bins);
      expect(a.scale).toBe(b.scale);
      expect(a.stats.min).toBe(b.stats.min);
      expect(a.stats.max).toBe(b.stats.max);
      expect(a.stats.count).toBe(b.stats.count);
      expect(a.stats.percentiles).toEqual(b.stats.percentiles);
      // Four partial sums against one: the last bits only.
      expect(Math.abs(a.stats.mean - b.stats.mean)).toBeLessThanOrEqual(1e-12 * Math.abs(b.stats.mean));
      expect(Math.abs(a.stats.std - b.stats.std)).toBeLessThanOrEqual(1e-12 * b.stats.std);
      // The bins span the histogram (the comparison can fail).
      expect(Math.max(...a.pixelBins)).toBe(4095);
      expect(Math.min(...a.pixelBins)).toBe(0);
    });
  }

  it('a map with NaN runs the JS loops (their semantics), and a constant map is still refused', () => {
    const map = syntheticSample({ width: 64, height: 48, seed: 5, defects: 2 }).scoreMap;
    const data = map.data.slice();
    data[17] = NaN;
    const a = hostAnalyzeScoreMap({ ...map, data }, pct);
    const b = hostAnalyzeScoreMap({ ...map, data }, pct, new Uint8Array(64 * 48).fill(1));
    expect(a.stats.min).toBe(b.stats.min);
    expect(a.stats.max).toBe(b.stats.max);
    expect(Array.from(a.pixelBins)).toEqual(Array.from(b.pixelBins));
    expect(() => hostAnalyzeScoreMap({ ...map, data: new Float32Array(64 * 48).fill(0.5) }, pct)).toThrow(/constant/);
  });
});

describe('without WebAssembly SIMD', () => {
  for (const [what, stub] of [
    ['no WebAssembly', undefined],
    ['a module that does not validate (no SIMD)', { ...WebAssembly, validate: () => false }],
  ] as const) {
    it(`the JS loops run (${what}), with the same result`, async () => {
      const sample = syntheticSample({ width: 96, height: 80, seed: 31, defects: 3 });
      const features = syntheticFeatures(sample, 25, 1);
      const options = resolveOptions({});
      const pct = requestedPercentiles(options);
      const withWasm = hostTestTimeStage(sample.scoreMap, features, options, pct);
      vi.resetModules();
      vi.stubGlobal('WebAssembly', stub);
      try {
        const kernels = await import('../../src/core/wasm/hostKernels.ts');
        const host = await import('../../src/core/hostStage.ts');
        expect(kernels.hostWasm()).toBeNull();
        expect(kernels.stageFeatures(features.data, 96 * 80, 25)).toBeNull();
        const js = host.hostTestTimeStage(sample.scoreMap, features, options, pct);
        expect(count(js.mask!)).toBeGreaterThan(20);
        expect(diffs(js.mask!, withWasm.mask!)).toBe(0);
        expect(Array.from(js.analysis.pixelBins)).toEqual(Array.from(withWasm.analysis.pixelBins));
        expect(js.classifier!.weights).toEqual(withWasm.classifier!.weights);
      } finally {
        vi.unstubAllGlobals();
        vi.resetModules();
      }
    });
  }
});
