// Pseudo-labels on the GPU: anomalous = 3x3 local maxima at or above the anomalous percentile, dilated
// by `radius`; nominal = `nominalCount` pixels drawn uniformly without replacement among the others
// (optionally only at or below the nominal percentile). See shaders/pseudo_labels.wgsl.

import type { Gpu, GpuArray } from './gpu.ts';
import { COMPACT_BLOCK, KEY_CHUNK, imageGroups, kernels } from './kernels.ts';
import type { Calibration } from './calibration.ts';
import type { TttOptions } from './options.ts';
import { nominalSeedKey } from './rng.ts';
import type { GpuScoreMap, PseudoLabelCounts } from './types.ts';
import { maskedSpec, noValidity, type GpuValidity } from './validity.ts';

export const LABEL_NONE = 0;
export const LABEL_ANOMALOUS = 1;
export const LABEL_NOMINAL = 2;

export interface GpuPseudoLabels {
  /** One u32 per pixel: 0 none, 1 anomalous, 2 nominal. */
  labels: GpuArray;
  /** Labelled pixels per block of COMPACT_BLOCK pixels (input of the compaction). */
  blockCounts: GpuArray;
  counts: PseudoLabelCounts;
}

/** Nominal global mean + sigmas x std of the calibration (f32), or -Infinity without one or when off. */
function calibratedFloor(calibration: Calibration | null | undefined, mode: 'off' | 'sigma', sigmas: number): number {
  if (!calibration || mode === 'off') return -Infinity;
  return Math.fround(calibration.globalMean + sigmas * calibration.globalStd);
}

/**
 * The lowest score a seed may have (pseudoLabels.seedFloor): a seed must look anomalous against
 * defect-free parts too.
 */
export function seedFloor(calibration: Calibration | null | undefined, options: TttOptions): number {
  return calibratedFloor(calibration, options.pseudoLabels.seedFloor, options.pseudoLabels.seedFloorSigmas);
}

/** The score a defective pixel must exceed (mask.scoreFloor). */
export function maskScoreFloor(calibration: Calibration | null | undefined, options: TttOptions): number {
  return calibratedFloor(calibration, options.mask.scoreFloor, options.mask.scoreFloorSigmas);
}

/**
 * `qbins` holds the histogram bins of [anomalous percentile, nominal percentile]; `mn` and `scale` are
 * the histogram's, so bins are compared exactly as the histogram counted them.
 */
export async function pseudoLabels(
  gpu: Gpu,
  map: GpuScoreMap,
  qbins: GpuArray,
  histogram: { min: number; scale: number },
  options: TttOptions,
  floor = -Infinity,
  validity?: GpuValidity | null,
): Promise<GpuPseudoLabels> {
  const { width, height } = map;
  const n = width * height;
  const o = options.pseudoLabels;
  const params = {
    width,
    height,
    radius: o.radius,
    seedKey: nominalSeedKey(options.seed),
    nominalCount: o.nominalCount,
    restrictNominal: o.nominalPercentile < 100 ? 1 : 0,
    mn: histogram.min,
    scale: histogram.scale,
    seedFloor: floor,
  };
  const labels = gpu.alloc(n, true);
  const hist = gpu.alloc(4096, true);
  const sel = gpu.alloc(8, true);
  const blocks = Math.ceil(n / COMPACT_BLOCK);
  const blockCounts = gpu.alloc(blocks, true);
  const scores = map.data;
  const image = imageGroups(width, height);
  const chunks = Math.ceil(n / KEY_CHUNK);
  const v = validity ?? noValidity(gpu);
  const valid = v.data;
  gpu.run(maskedSpec(kernels.anomalousSeeds, v), params, { scores, qbins, labels, sel, blockCounts, valid }, image);
  const levels = [
    [kernels.nominalHist0, kernels.selectLevel0],
    [kernels.nominalHist1, kernels.selectLevel1],
    [kernels.nominalHist2, kernels.selectLevel2],
  ] as const;
  for (const [histogram, choose] of levels) {
    gpu.run(maskedSpec(histogram, v), params, { scores, qbins, labels, hist, sel, valid }, chunks);
    gpu.run(choose, params, { hist, sel }, [1, 1, 1]);
  }
  gpu.run(maskedSpec(kernels.markNominal, v), params, { scores, qbins, labels, sel, blockCounts, valid }, chunks);
  const s = await gpu.readU32(sel, 2);
  gpu.release(hist, sel);
  const anomalous = s[0];
  const eligible = s[1];
  return { labels, blockCounts, counts: { anomalous, eligible, nominal: Math.min(o.nominalCount, eligible) } };
}
