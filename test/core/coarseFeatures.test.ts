// The host stage on coarse layers (src/core/coarseFeatures.ts) against the same stage on their resampled
// maps materialized (resampleBilinearHost + channelMoments / hostGather / hostPredictMask): upsampling
// (strides 4, 8, 16 as MobileNetV2's layers), odd sizes, downsampling and a layer already at full size.
import { describe, expect, it } from 'vitest';
import { coarseGather, coarseMoments, coarsePredictMask, materializeCoarse, type CoarseFeatures } from '../../src/core/coarseFeatures.ts';
import { channelMoments, hostGather, hostPredictMask, type HostPseudoLabels } from '../../src/core/hostStage.ts';
import { LABEL_ANOMALOUS, LABEL_NOMINAL } from '../../src/core/pseudoLabels.ts';

function layer(channels: number, width: number, height: number, seed: number) {
  const data = new Float32Array(channels * width * height);
  for (let i = 0; i < data.length; i++) data[i] = 3 * Math.sin(i * 0.7 + seed) + Math.cos(i * 0.013 * seed) + (i % 5) * 0.1 + seed;
  return { data, channels, width, height };
}

const cases: [string, CoarseFeatures][] = [
  ['strides 4, 8, 16 to 64x64', { layers: [layer(3, 16, 16, 1), layer(4, 8, 8, 2), layer(5, 4, 4, 3)], channels: 12, width: 64, height: 64 }],
  ['odd sizes, up and down, one layer at full size', { layers: [layer(2, 13, 7, 4), layer(3, 50, 40, 5), layer(2, 37, 23, 6)], channels: 7, width: 37, height: 23 }],
];

function labelsFor(width: number, height: number): HostPseudoLabels {
  const n = width * height;
  const labels = new Uint8Array(n);
  const pixels: number[] = [];
  for (let p = 0; p < n; p += 7) {
    labels[p] = p % 3 === 0 ? LABEL_ANOMALOUS : LABEL_NOMINAL;
    pixels.push(p);
  }
  const anomalous = pixels.filter((p) => labels[p] === LABEL_ANOMALOUS).length;
  return { labels, pixels: Uint32Array.from(pixels), counts: { anomalous, nominal: pixels.length - anomalous, eligible: pixels.length } };
}

describe('the host stage on coarse layers = on their resampled maps', () => {
  for (const [name, f] of cases) {
    it(name, () => {
      const full = { data: materializeCoarse(f), channels: f.channels, width: f.width, height: f.height };
      expect(full.data.length).toBe(f.channels * f.width * f.height);
      const want = channelMoments(full);
      const got = coarseMoments(f);
      for (let c = 0; c < f.channels; c++) {
        expect(Math.abs(got.mean[c] - want.mean[c])).toBeLessThan(1e-5 * want.sd[c]);
        expect(Math.abs(got.sd[c] - want.sd[c])).toBeLessThan(1e-5 * want.sd[c]);
      }
      const labels = labelsFor(f.width, f.height);
      const a = coarseGather(labels, f, want);
      const b = hostGather(labels, full, want);
      expect([a.rows, a.channels, Array.from(a.targets)]).toEqual([b.rows, b.channels, Array.from(b.targets)]);
      let worst = 0;
      for (let i = 0; i < a.x.length; i++) worst = Math.max(worst, Math.abs(a.x[i] - b.x[i]));
      expect(worst).toBeLessThan(1e-5);
      // A classifier whose decision crosses zero over the image: the masks agree except within rounding of 0.
      const weights = Array.from({ length: f.channels }, (_, c) => (c % 2 ? 0.8 : -0.5) / (1 + c));
      weights.push(0.05);
      const scores = new Float32Array(f.width * f.height).map((_, i) => i % 11);
      const mc = coarsePredictMask(weights, f, want, scores, 0.5);
      const mh = hostPredictMask(weights, full, want, scores, 0.5);
      let positive = 0;
      let differ = 0;
      for (let i = 0; i < mc.length; i++) {
        positive += mh[i];
        differ += mc[i] !== mh[i] ? 1 : 0;
      }
      expect(positive).toBeGreaterThan(mc.length * 0.05);
      expect(positive).toBeLessThan(mc.length * 0.95);
      expect(differ).toBeLessThanOrEqual(Math.ceil(mc.length * 0.001));
      for (let i = 0; i < mc.length; i += 11) expect(mc[i]).toBe(0); // score 0 is not above the floor
    });
  }

  it('a constant coarse channel has sd 0 and its mean exactly', () => {
    const l = layer(2, 5, 4, 1);
    l.data.fill(2.5, 0, 20);
    const m = coarseMoments({ layers: [l], channels: 2, width: 17, height: 9 });
    expect([m.mean[0], m.sd[0]]).toEqual([2.5, 0]);
  });
});
