// Score-map statistics on the GPU: moments by reduction, percentiles through a 4096-bin histogram.
// The histogram stays on the device; the percentile bins feed the pseudo-label kernels directly.

import { type Gpu, type GpuArray } from './gpu.ts';
import { HISTOGRAM_BINS, HISTOGRAM_CHUNK, REDUCE_CHUNK, groupsFor, kernels } from './kernels.ts';
import { TttError } from './errors.ts';
import type { GpuScoreMap, ScoreMapStats } from './types.ts';
import { maskedSpec, noValidity, type GpuValidity } from './validity.ts';

/** 1-based rank of percentile q (0..100) among n values. */
export const percentileRank = (q: number, n: number): number => Math.min(n, Math.max(1, Math.ceil((q / 100) * n)));

/** The histogram scale shared by GPU and reference: NB / (max - min), in f32. */
export const histogramScale = (min: number, max: number): number =>
  Math.fround(HISTOGRAM_BINS / Math.fround(max - min));

/** The value reported for a percentile bin: its lower edge. */
export const binLowerEdge = (bin: number, min: number, max: number): number =>
  Math.fround(min + (bin * (max - min)) / HISTOGRAM_BINS);

/**
 * Moments (min, max, mean, std, count at stride 8) of `segments` consecutive runs of `len` values; with a
 * validity mask (len pixels, the same for every segment), over the valid positions only.
 */
export function moments(gpu: Gpu, values: GpuArray, segments: number, len: number, validity?: GpuValidity | null): GpuArray {
  const pps = Math.ceil(len / REDUCE_CHUNK);
  const nparts = pps * segments;
  const parts = gpu.alloc(nparts * 8);
  const out = gpu.alloc(segments * 8);
  const params = { len, chunk: REDUCE_CHUNK, pps, nparts };
  const valid = validity ?? noValidity(gpu);
  gpu.run(maskedSpec(kernels.reducePartial, valid), params, { values, parts, valid: valid.data }, nparts);
  gpu.run(kernels.reduceFinal, params, { parts, out }, [segments, 1, 1]);
  gpu.release(parts);
  return out;
}

/** Adds the values (the valid ones, with a mask) to a histogram of HISTOGRAM_BINS bins over [min, ...). */
export function histogramInto(gpu: Gpu, values: GpuArray, n: number, min: number, scale: number, bins: GpuArray, validity?: GpuValidity | null): void {
  const valid = validity ?? noValidity(gpu);
  gpu.run(maskedSpec(kernels.histogram, valid), { n, nq: 0, mn: min, scale }, { values, bins, valid: valid.data }, groupsFor(n, HISTOGRAM_CHUNK));
}

export interface Moments {
  min: number;
  max: number;
  mean: number;
  std: number;
  count: number;
}

export interface ScoreMapAnalysis {
  stats: ScoreMapStats;
  /** Histogram bins of the requested percentiles, in request order (on the device). */
  qbins: GpuArray;
  /** The f32 histogram scale the bins were computed with. */
  scale: number;
  /** Bin index per requested percentile (read back). */
  bins: number[];
}

/**
 * Moments and percentiles of a score map (over the valid pixels, with a validity mask). Reads back the
 * moments (the histogram scale depends on the range) and the percentile bins; the bins also stay on the
 * device for the pseudo-label kernels.
 */
export async function analyzeScoreMap(gpu: Gpu, map: GpuScoreMap, percentiles: readonly number[], validity?: GpuValidity | null): Promise<ScoreMapAnalysis> {
  const pixels = map.width * map.height;
  const m = moments(gpu, map.data, 1, pixels, validity);
  const raw = await gpu.readF32(m, 5);
  gpu.release(m);
  const [min, max, mean, std, count] = raw;
  if (count === 0) throw new TttError('INVALID_INPUT', 'no pixel of the score map has a valid 3-D point');
  if (!(max > min)) throw new TttError('CONSTANT_MAP', `the score map is constant${validity?.masked ? ' over the valid points' : ''} (every value is ${min})`);
  const n = count;
  const scale = histogramScale(min, max);
  const bins = gpu.alloc(HISTOGRAM_BINS, true);
  histogramInto(gpu, map.data, pixels, min, scale, bins, validity);
  const ranks = gpu.upload(new Uint32Array(percentiles.map((q) => percentileRank(q, n))));
  const qbins = gpu.alloc(Math.max(1, percentiles.length));
  gpu.run(kernels.percentileBins, { n, nq: percentiles.length, mn: min, scale }, { bins, ranks, qbins }, [1, 1, 1]);
  const binsByRequest = Array.from(await gpu.readU32(qbins, percentiles.length));
  gpu.release(bins, ranks);
  const pct: Record<string, number> = {};
  percentiles.forEach((q, i) => (pct[String(q)] = binLowerEdge(binsByRequest[i], min, max)));
  return { stats: { min, max, mean, std, count: n, percentiles: pct }, qbins, scale, bins: binsByRequest };
}
