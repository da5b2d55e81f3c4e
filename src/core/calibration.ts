// Calibration from nominal (defect-free) score maps: the statistics every threshold baseline and the
// image-level gate need. Computed on the CPU once per product; per-pixel statistics are taken at the
// resolution of the first map (others are resampled bilinearly to it).

import { TttError } from './errors.ts';
import { referenceBilinear } from './reference/features.ts';
import type { ScoreMap } from './types.ts';

/** Distance bands of the border profile: 0, 1, ..., BORDER_BANDS - 1 units and beyond. */
export const BORDER_BANDS = 32;

/** A band is 1/BORDER_SCALE of the map's longest side, so one profile serves maps of any resolution. */
export const BORDER_SCALE = 256;

/**
 * The band of pixel (x, y) of a width x height map: its distance to the nearest border in units of
 * 1/256 of the longest side (integer arithmetic, as the shader), capped at bands - 1.
 */
export const borderBand = (x: number, y: number, width: number, height: number, bands: number): number =>
  Math.min(Math.floor((Math.min(x, y, width - 1 - x, height - 1 - y) * BORDER_SCALE) / Math.max(width, height)), bands - 1);

/**
 * Nominal score statistics per distance to the map border, and the nominal maps' statistics once
 * normalized by them (in nominal standard deviations: the floors and the gate of a normalized run).
 */
export interface BorderProfile {
  readonly mean: readonly number[];
  /** Population std per band (a band without spread gets 1). */
  readonly std: readonly number[];
  readonly normalized: { readonly globalMean: number; readonly globalStd: number; readonly maxScore: number; readonly imageScores: { readonly mean: number; readonly std: number; readonly max: number } };
}

export interface Calibration {
  /** Number of nominal maps. */
  readonly count: number;
  /** Mean and population std of all nominal pixels together. */
  readonly globalMean: number;
  readonly globalStd: number;
  /** The largest nominal pixel score. */
  readonly maxScore: number;
  /** Image scores (map maxima) of the nominal maps. */
  readonly imageScores: { readonly mean: number; readonly std: number; readonly max: number };
  /** Per-pixel mean and std at width x height. */
  readonly width: number;
  readonly height: number;
  readonly pixelMean: Float32Array;
  readonly pixelStd: Float32Array;
  /** Absent in calibrations stored before it existed: map.borderNormalize then has no effect. */
  readonly border?: BorderProfile;
}

/** (score - mean[b]) / std[b] per pixel, in f32 as the GPU computes it (the reference of shaders/normalize.wgsl). */
export function borderNormalize(map: ScoreMap, profile: Pick<BorderProfile, 'mean' | 'std'>): Float32Array {
  const { width, height } = map;
  const bands = profile.mean.length;
  const inv = profile.std.map((s) => Math.fround(1 / s));
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const b = borderBand(x, y, width, height, bands);
      out[y * width + x] = Math.fround(map.data[y * width + x] - Math.fround(profile.mean[b])) * inv[b];
    }
  }
  return out;
}

/**
 * The calibration a run uses: with map.borderNormalize and a border profile, the map is normalized first, so
 * the floors and the gate take the normalized nominal statistics; otherwise the calibration as it is.
 */
export function runCalibration(c: Calibration | null | undefined, normalize: boolean): { calibration: Calibration | null; profile: BorderProfile | null } {
  if (!c) return { calibration: null, profile: null };
  if (!normalize || !c.border) return { calibration: c, profile: null };
  return { calibration: { ...c, ...c.border.normalized }, profile: c.border };
}

/**
 * The calibration moved to the level of one image's map (map.level): every calibrated threshold (the gate's
 * image scores, the global mean behind the seed and score floors, the largest nominal score) shifts by the
 * map's median minus the nominal global mean; 'down' only when that is negative. The per-pixel statistics
 * (for thr_pixel_3sigma, not the pipeline) are left as they are.
 */
export function levelCalibration(c: Calibration | null, median: number, mode: 'off' | 'median' | 'down'): Calibration | null {
  if (!c || mode === 'off' || !Number.isFinite(median)) return c;
  const d = mode === 'down' ? Math.min(0, median - c.globalMean) : median - c.globalMean;
  if (d === 0) return c;
  const s = c.imageScores;
  return { ...c, globalMean: c.globalMean + d, maxScore: c.maxScore + d, imageScores: { mean: s.mean + d, std: s.std, max: s.max + d } };
}

/** Mean, std and maximum of values, and of the per-map maxima. */
function summary(maps: readonly { data: ArrayLike<number>; valid: Uint8Array | null }[]): BorderProfile['normalized'] {
  let sum = 0;
  let sq = 0;
  let count = 0;
  const maxima: number[] = [];
  for (const m of maps) {
    let mx = -Infinity;
    for (let i = 0; i < m.data.length; i++) {
      if (m.valid && !m.valid[i]) continue;
      const v = m.data[i];
      sum += v;
      sq += v * v;
      count++;
      if (v > mx) mx = v;
    }
    maxima.push(mx);
  }
  const mean = sum / count;
  const imean = maxima.reduce((a, b) => a + b, 0) / maxima.length;
  const top = Math.max(...maxima);
  return {
    globalMean: mean,
    globalStd: Math.sqrt(Math.max(sq / count - mean * mean, 0)),
    maxScore: top,
    imageScores: { mean: imean, std: Math.sqrt(maxima.reduce((a, b) => a + (b - imean) ** 2, 0) / maxima.length), max: top },
  };
}

/** The border profile of nominal maps (valid pixels only), each map at its own size. */
function borderProfile(maps: readonly ScoreMap[], valid?: readonly (Uint8Array | null)[]): BorderProfile {
  const sum = new Float64Array(BORDER_BANDS);
  const sq = new Float64Array(BORDER_BANDS);
  const count = new Float64Array(BORDER_BANDS);
  maps.forEach((m, k) => {
    const ok = valid?.[k] ?? null;
    for (let y = 0; y < m.height; y++) {
      for (let x = 0; x < m.width; x++) {
        const i = y * m.width + x;
        if (ok && !ok[i]) continue;
        const b = borderBand(x, y, m.width, m.height, BORDER_BANDS);
        sum[b] += m.data[i];
        sq[b] += m.data[i] * m.data[i];
        count[b]++;
      }
    }
  });
  // A band without a valid pixel (maps too small to reach it, or holes all along the border) takes the
  // statistics of the nearest band that has some, the outer one first; calibrate() ensures one has.
  const filled = (b: number): number => {
    for (let d = 0; d < BORDER_BANDS; d++) {
      if (b - d >= 0 && count[b - d] > 0) return b - d;
      if (b + d < BORDER_BANDS && count[b + d] > 0) return b + d;
    }
    throw new TttError('INTERNAL', 'border profile: no band has a valid pixel');
  };
  const mean: number[] = [];
  const std: number[] = [];
  for (let b = 0; b < BORDER_BANDS; b++) {
    const k = filled(b);
    const m = sum[k] / count[k];
    const s = Math.sqrt(Math.max(sq[k] / count[k] - m * m, 0));
    mean.push(m);
    std.push(s > 1e-12 * Math.max(1, Math.abs(m)) ? s : 1);
  }
  const normalized = summary(maps.map((m, k) => ({ data: borderNormalize(m, { mean, std }), valid: valid?.[k] ?? null })));
  return { mean, std, normalized };
}

/**
 * With validity masks (one per map, at its size; null: all valid), pixels without a measurement (holes of
 * a point cloud) are left out of the global statistics and the image scores; the per-pixel statistics use
 * every pixel.
 */
export function calibrate(maps: readonly ScoreMap[], valid?: readonly (Uint8Array | null)[]): Calibration {
  if (maps.length === 0) throw new TttError('INVALID_INPUT', 'calibration needs at least one nominal score map');
  const { width, height } = maps[0];
  const n = width * height;
  const sum = new Float64Array(n);
  const sumSq = new Float64Array(n);
  maps.forEach((m, k) => {
    for (let i = 0; i < m.data.length; i++) {
      if (!Number.isFinite(m.data[i])) throw new TttError('NON_FINITE', `nominal score map ${k} contains ${m.data[i]}`);
    }
    const ok = valid?.[k] ?? null;
    if (ok && !ok.some((v) => v !== 0)) throw new TttError('INVALID_INPUT', `nominal score map ${k} has no valid pixel`);
    const at = m.width === width && m.height === height ? m.data : referenceBilinear(m.data, 1, m, { width, height });
    for (let i = 0; i < n; i++) {
      sum[i] += at[i];
      sumSq[i] += at[i] * at[i];
    }
  });
  const pixelMean = new Float32Array(n);
  const pixelStd = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const mean = sum[i] / maps.length;
    pixelMean[i] = mean;
    pixelStd[i] = Math.sqrt(Math.max(sumSq[i] / maps.length - mean * mean, 0));
  }
  const global = summary(maps.map((m, k) => ({ data: m.data, valid: valid?.[k] ?? null })));
  return {
    count: maps.length,
    ...global,
    width,
    height,
    pixelMean,
    pixelStd,
    border: borderProfile(maps, valid),
  };
}

/** A JSON-safe form (per-pixel maps as base64 of little-endian f32). */
export interface CalibrationJson {
  version: 1;
  count: number;
  globalMean: number;
  globalStd: number;
  maxScore: number;
  imageScores: { mean: number; std: number; max: number };
  width: number;
  height: number;
  pixelMean: string;
  pixelStd: string;
  border?: { mean: number[]; std: number[]; normalized: BorderProfile['normalized'] };
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function toBase64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i];
    const b = i + 1 < bytes.length ? bytes[i + 1] : 0;
    const c = i + 2 < bytes.length ? bytes[i + 2] : 0;
    out += B64[a >> 2] + B64[((a & 3) << 4) | (b >> 4)];
    out += i + 1 < bytes.length ? B64[((b & 15) << 2) | (c >> 6)] : '=';
    out += i + 2 < bytes.length ? B64[c & 63] : '=';
  }
  return out;
}

function fromBase64(s: string): Uint8Array {
  const clean = s.replace(/=+$/, '');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let k = 0;
  for (const ch of clean) {
    const v = B64.indexOf(ch);
    if (v < 0) throw new TttError('INVALID_INPUT', 'calibration: invalid base64');
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[k++] = (acc >> bits) & 255;
    }
  }
  return out;
}

export function calibrationToJson(c: Calibration): CalibrationJson {
  const f32 = (a: Float32Array) => toBase64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const { pixelMean, pixelStd, border, ...rest } = c;
  return {
    version: 1,
    ...rest,
    imageScores: { ...c.imageScores },
    pixelMean: f32(pixelMean),
    pixelStd: f32(pixelStd),
    ...(border ? { border: { mean: [...border.mean], std: [...border.std], normalized: structuredClone(border.normalized) } } : {}),
  };
}

export function calibrationFromJson(j: CalibrationJson): Calibration {
  if (j?.version !== 1) throw new TttError('INVALID_INPUT', `calibration: unsupported version ${j?.version}`);
  const f32 = (s: string) => {
    const b = fromBase64(s);
    const out = new Float32Array(b.length / 4);
    new Uint8Array(out.buffer).set(b);
    return out;
  };
  const pixelMean = f32(j.pixelMean);
  const pixelStd = f32(j.pixelStd);
  if (pixelMean.length !== j.width * j.height || pixelStd.length !== pixelMean.length) {
    throw new TttError('INVALID_INPUT', 'calibration: per-pixel maps do not match their size');
  }
  if (j.border) {
    const b = j.border;
    const finite = (a: unknown) => Array.isArray(a) && a.length === BORDER_BANDS && a.every((v) => typeof v === 'number' && Number.isFinite(v));
    if (!finite(b.mean) || !finite(b.std) || b.std.some((s) => s <= 0) || !Number.isFinite(b.normalized?.globalStd)) {
      throw new TttError('INVALID_INPUT', `calibration: the border profile must have ${BORDER_BANDS} finite means and positive stds`);
    }
  }
  const { version: _v, ...rest } = j;
  return { ...rest, pixelMean, pixelStd };
}
