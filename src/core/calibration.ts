// Calibration from nominal (defect-free) score maps: the statistics every threshold baseline and the
// image-level gate need. Computed on the CPU once per product; per-pixel statistics are taken at the
// resolution of the first map (others are resampled bilinearly to it).

import { TttError } from './errors.ts';
import { referenceBilinear } from './reference/features.ts';
import type { ScoreMap } from './types.ts';

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
  let gSum = 0;
  let gSq = 0;
  let gCount = 0;
  let maxScore = -Infinity;
  const imageScores: number[] = [];
  maps.forEach((m, k) => {
    for (let i = 0; i < m.data.length; i++) {
      if (!Number.isFinite(m.data[i])) throw new TttError('NON_FINITE', `nominal score map ${k} contains ${m.data[i]}`);
    }
    let mx = -Infinity;
    const ok = valid?.[k] ?? null;
    for (let i = 0; i < m.data.length; i++) {
      if (ok && !ok[i]) continue;
      const v = m.data[i];
      gSum += v;
      gSq += v * v;
      gCount++;
      if (v > mx) mx = v;
    }
    if (mx === -Infinity) throw new TttError('INVALID_INPUT', `nominal score map ${k} has no valid pixel`);
    maxScore = Math.max(maxScore, mx);
    imageScores.push(mx);
    const at = m.width === width && m.height === height ? m.data : referenceBilinear(m.data, 1, m, { width, height });
    for (let i = 0; i < n; i++) {
      sum[i] += at[i];
      sumSq[i] += at[i] * at[i];
    }
  });
  const globalMean = gSum / gCount;
  const globalStd = Math.sqrt(Math.max(gSq / gCount - globalMean * globalMean, 0));
  const pixelMean = new Float32Array(n);
  const pixelStd = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const mean = sum[i] / maps.length;
    pixelMean[i] = mean;
    pixelStd[i] = Math.sqrt(Math.max(sumSq[i] / maps.length - mean * mean, 0));
  }
  const isMean = imageScores.reduce((a, b) => a + b, 0) / imageScores.length;
  const isStd = Math.sqrt(imageScores.reduce((a, b) => a + (b - isMean) ** 2, 0) / imageScores.length);
  return {
    count: maps.length,
    globalMean,
    globalStd,
    maxScore,
    imageScores: { mean: isMean, std: isStd, max: Math.max(...imageScores) },
    width,
    height,
    pixelMean,
    pixelStd,
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
  const { pixelMean, pixelStd, ...rest } = c;
  return { version: 1, ...rest, imageScores: { ...c.imageScores }, pixelMean: f32(pixelMean), pixelStd: f32(pixelStd) };
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
  const { version: _v, ...rest } = j;
  return { ...rest, pixelMean, pixelStd };
}
