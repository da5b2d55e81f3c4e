// Reference of the score-map statistics stage: exact moments in f64, and the same 4096-bin histogram
// (same f32 bin arithmetic) and percentile rule as shaders/histogram.wgsl.

import { TttError } from '../errors.ts';
import { HISTOGRAM_BINS } from '../kernels.ts';
import { binLowerEdge, histogramScale, percentileRank } from '../stats.ts';
import type { ScoreMap, ScoreMapStats } from '../types.ts';

/** Moments of the values (of the valid ones, with a validity mask); count is how many were taken. */
export function referenceMoments(values: Float32Array, valid?: Uint8Array | null): { min: number; max: number; mean: number; std: number; count: number } {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (valid && !valid[i]) continue;
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    count++;
  }
  const mean = sum / count;
  let ss = 0;
  for (let i = 0; i < values.length; i++) if (!valid || valid[i]) ss += (values[i] - mean) ** 2;
  return { min, max, mean, std: Math.sqrt(ss / count), count };
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

export function referenceAnalyzeScoreMap(map: ScoreMap, percentiles: readonly number[], valid?: Uint8Array | null): ReferenceAnalysis {
  const { count: n, ...m } = referenceMoments(map.data, valid);
  if (n === 0) throw new TttError('INVALID_INPUT', 'no pixel of the score map has a valid 3-D point');
  if (!(m.max > m.min)) throw new TttError('CONSTANT_MAP', `the score map is constant${valid ? ' over the valid points' : ''} (every value is ${m.min})`);
  const scale = histogramScale(m.min, m.max);
  const hist = new Uint32Array(HISTOGRAM_BINS);
  for (let i = 0; i < map.data.length; i++) if (!valid || valid[i]) hist[binOf(map.data[i], m.min, scale)]++;
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
