// Reference of the pseudo-label stage: the same seeds, dilation, eligibility and keyed draw as
// shaders/pseudo_labels.wgsl, so the label maps must be identical.

import type { TttOptions } from '../options.ts';
import { LABEL_ANOMALOUS, LABEL_NOMINAL } from '../pseudoLabels.ts';
import { nominalSeedKey, pcgHash } from '../rng.ts';
import type { PseudoLabelCounts, ScoreMap } from '../types.ts';
import { binOf } from './stats.ts';

export function referencePseudoLabels(
  map: ScoreMap,
  bins: { anomalous: number; nominal: number },
  histogram: { min: number; scale: number },
  options: TttOptions,
  floor = -Infinity,
  valid?: Uint8Array | null,
): { labels: Uint32Array; counts: PseudoLabelCounts } {
  const { width, height, data } = map;
  const n = width * height;
  const o = options.pseudoLabels;
  const bin = (i: number) => binOf(data[i], histogram.min, histogram.scale);
  const ok = (i: number) => !valid || valid[i] !== 0;
  const seeds = new Uint8Array(n);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const v = data[i];
      if (bin(i) < bins.anomalous || v < floor || !ok(i)) continue;
      let isMax = true;
      for (let dy = -1; dy <= 1 && isMax; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          const yy = y + dy;
          if (xx >= 0 && yy >= 0 && xx < width && yy < height && data[yy * width + xx] > v && ok(yy * width + xx)) isMax = false;
        }
      }
      if (isMax) seeds[i] = 1;
    }
  }
  const labels = new Uint32Array(n);
  let anomalous = 0;
  const r = o.radius;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let hit = false;
      if (!ok(y * width + x)) continue;
      for (let yy = Math.max(y - r, 0); yy <= Math.min(y + r, height - 1) && !hit; yy++) {
        for (let xx = Math.max(x - r, 0); xx <= Math.min(x + r, width - 1); xx++) {
          if (seeds[yy * width + xx]) hit = true;
        }
      }
      if (hit) {
        labels[y * width + x] = LABEL_ANOMALOUS;
        anomalous++;
      }
    }
  }
  const restrict = o.nominalPercentile < 100;
  const seedKey = nominalSeedKey(options.seed);
  const isEligible = (i: number) => labels[i] === 0 && ok(i) && !(restrict && bin(i) > bins.nominal);
  // The M smallest keys among the eligible pixels: sort the keys, take the M-th as the cut-off (keys
  // are distinct), then mark every eligible pixel whose key is at or below it.
  const keys = new Uint32Array(n);
  let eligible = 0;
  for (let i = 0; i < n; i++) if (isEligible(i)) keys[eligible++] = pcgHash((i ^ seedKey) >>> 0);
  const take = Math.min(o.nominalCount, eligible);
  if (take > 0) {
    const sorted = keys.subarray(0, eligible).sort();
    const cut = sorted[take - 1];
    for (let i = 0; i < n; i++) if (isEligible(i) && pcgHash((i ^ seedKey) >>> 0) <= cut) labels[i] = LABEL_NOMINAL;
  }
  return { labels, counts: { anomalous, nominal: take, eligible } };
}
