// Reference of the score-map statistics stage: exact moments in f64, and the same 4096-bin histogram
// (same f32 bin arithmetic) and percentile rule as shaders/histogram.wgsl.

import { HISTOGRAM_BINS } from '../kernels.ts';
import { binLowerEdge, histogramScale, percentileRank } from '../stats.ts';
import type { ScoreMap, ScoreMapStats } from '../types.ts';

export function referenceMoments(values: Float32Array): { min: number; max: number; mean: number; std: number } {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const mean = sum / values.length;
  let ss = 0;
  for (let i = 0; i < values.length; i++) ss += (values[i] - mean) ** 2;
  return { min, max, mean, std: Math.sqrt(ss / values.length) };
}

/** The histogram bin of v, with the f32 operations of the shaders. */
export function binOf(v: number, min: number, scale: number): number {
  return Math.min(Math.floor(Math.max(Math.fround(Math.fround(v - min) * scale), 0)), HISTOGRAM_BINS - 1);
}

export interface ReferenceAnalysis {
  stats: ScoreMapStats;
  bins: number[];
  scale: number;
}

export function referenceAnalyzeScoreMap(map: ScoreMap, percentiles: readonly number[]): ReferenceAnalysis {
  const m = referenceMoments(map.data);
  const scale = histogramScale(m.min, m.max);
  const hist = new Uint32Array(HISTOGRAM_BINS);
  for (let i = 0; i < map.data.length; i++) hist[binOf(map.data[i], m.min, scale)]++;
  const n = map.data.length;
  const bins = percentiles.map((q) => {
    const rank = percentileRank(q, n);
    let cum = 0;
    for (let b = 0; b < HISTOGRAM_BINS; b++) {
      cum += hist[b];
      if (cum >= rank) return b;
    }
    return HISTOGRAM_BINS - 1;
  });
  const pct: Record<string, number> = {};
  percentiles.forEach((q, i) => (pct[String(q)] = binLowerEdge(bins[i], m.min, m.max)));
  return { stats: { ...m, count: n, percentiles: pct }, bins, scale };
}
