// Reference of the threshold baselines: the same thresholds and masks as src/core/baselines.ts computed on
// the CPU, with the shaders' f32 comparisons (the Otsu histogram with binOf, the bilinear resampling with
// referenceBilinear, a direct 2-D minimum for MEBin's erosion).

import {
  type BaselineMethod,
  type BaselineResult,
  calibratedThreshold,
  checkBaselineInput,
  checkCalibrationSize,
  constantMapError,
  otsuBin,
  otsuThreshold,
  pixelThresholds,
} from '../baselines.ts';
import type { Calibration } from '../calibration.ts';
import { HISTOGRAM_BINS } from '../kernels.ts';
import { MEBIN, mebinThreshold } from '../mebin.ts';
import { histogramScale } from '../stats.ts';
import type { ScoreMap } from '../types.ts';
import { referenceBilinear } from './features.ts';
import { binOf, referenceMoments } from './stats.ts';

/** Grey-level erosion: the minimum over offsets lo..hi in x and y, the window clipped at the border. */
export function referenceErode(values: Float32Array, width: number, height: number, lo: number = MEBIN.erodeLo, hi: number = MEBIN.erodeHi): Float32Array {
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let m = Infinity;
      for (let yy = Math.max(y + lo, 0); yy <= Math.min(y + hi, height - 1); yy++) {
        for (let xx = Math.max(x + lo, 0); xx <= Math.min(x + hi, width - 1); xx++) m = Math.min(m, values[yy * width + xx]);
      }
      out[y * width + x] = m;
    }
  }
  return out;
}

/** The 4096-bin histogram of shaders/histogram.wgsl. */
export function referenceHistogram(values: Float32Array, min: number, max: number): Uint32Array {
  const scale = histogramScale(min, max);
  const hist = new Uint32Array(HISTOGRAM_BINS);
  for (let i = 0; i < values.length; i++) hist[binOf(values[i], min, scale)]++;
  return hist;
}

const above = (values: Float32Array, threshold: number): Uint8Array => {
  const mask = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) mask[i] = values[i] > threshold ? 1 : 0;
  return mask;
};

export function referenceBaselineMask(map: ScoreMap, method: BaselineMethod, calibration: Calibration | null): BaselineResult {
  checkBaselineInput(map, method, calibration);
  const { data, width, height } = map;
  if (method === 'thr_pixel_3sigma') {
    const c = calibration!;
    checkCalibrationSize(map, c);
    const t = pixelThresholds(c);
    const thresholds = c.width === width && c.height === height ? t : referenceBilinear(t, 1, c, map);
    const mask = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) mask[i] = data[i] > thresholds[i] ? 1 : 0;
    return { mask, threshold: null };
  }
  if (method === 'otsu' || method === 'mebin') {
    const { min, max } = referenceMoments(data);
    if (!(max > min)) throw constantMapError(min, method);
    if (method === 'otsu') {
      const threshold = otsuThreshold(otsuBin(referenceHistogram(data, min, max)), min, max);
      return { mask: above(data, threshold), threshold };
    }
    const eroded = referenceErode(data, width, height);
    const threshold = Math.fround(mebinThreshold(eroded, width, height, min, max).threshold);
    return { mask: above(eroded, threshold), threshold };
  }
  const threshold = Math.fround(calibratedThreshold(method, calibration!));
  return { mask: above(data, threshold), threshold };
}
