// A photometric shift of the test images (`ttt eval --shift`): the line drifts after the nominal samples
// were taken (lighting, exposure, the part's finish), while the detector and the calibration stay as they
// were. Parsed strictly from "key=value,..." and applied to an image at the working resolution.

import { TttError } from '../core/errors.ts';
import type { ImageTensor } from '../core/types.ts';

export interface PhotometricShift {
  /** Gain on every pixel (exposure, lamp power). 1: none. */
  brightness: number;
  /** Contrast about `pivot`: v -> pivot + contrast (v - pivot). 1: none. */
  contrast: number;
  /** 'grey': mid-grey (0.5); 'mean': the image's own mean (after the gain and the gradient). */
  pivot: 'grey' | 'mean';
  /** Added after the contrast. 0: none. */
  offset: number;
  /** v -> v^gamma after clamping to [0, 1]. 1: none. */
  gamma: number;
  /**
   * A smooth illumination gradient: the gain runs linearly from 1 - gradient to 1 + gradient across the
   * image along `angle` (degrees; 0: left to right, 90: top to bottom). 0: none.
   */
  gradient: number;
  angle: number;
}

export const NO_SHIFT: Readonly<PhotometricShift> = { brightness: 1, contrast: 1, pivot: 'grey', offset: 0, gamma: 1, gradient: 0, angle: 0 };

type NumericKey = Exclude<keyof PhotometricShift, 'pivot'>;

/** Each numeric key's accepted range (closed unless `open`) and meaning, for messages and --help. */
export const SHIFT_KEYS: Readonly<Record<NumericKey, { min: number; max: number; openMin?: boolean; help: string }>> = {
  brightness: { min: 0, max: 4, openMin: true, help: 'gain on every pixel' },
  contrast: { min: 0, max: 4, help: 'contrast about the pivot' },
  offset: { min: -1, max: 1, help: 'added after the contrast' },
  gamma: { min: 0.1, max: 10, help: 'v^gamma after clamping' },
  gradient: { min: 0, max: 1, help: 'illumination gain from 1-g to 1+g across the image' },
  angle: { min: -360, max: 360, help: 'direction of the gradient in degrees (0: left to right)' },
};

/** The keys --shift accepts, for messages and --help. */
export const SHIFT_KEY_NAMES: readonly string[] = [...Object.keys(SHIFT_KEYS), 'pivot'];

/**
 * "brightness=0.8,contrast=1.2" -> a shift (keys not given stay neutral). Unknown or repeated keys, values
 * that are not finite numbers and values out of range are refused with INVALID_OPTION naming the key.
 */
export function parseShift(spec: string): PhotometricShift {
  const out: PhotometricShift = { ...NO_SHIFT };
  const seen = new Set<string>();
  const parts = spec.split(',').map((p) => p.trim());
  if (spec.trim() === '' || parts.some((p) => p === '')) {
    throw new TttError('INVALID_OPTION', `--shift expects key=value[,key=value...] (keys: ${SHIFT_KEY_NAMES.join(', ')}), got ${JSON.stringify(spec)}`);
  }
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new TttError('INVALID_OPTION', `--shift: expected key=value, got ${JSON.stringify(part)}`);
    const key = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    if (!SHIFT_KEY_NAMES.includes(key)) throw new TttError('INVALID_OPTION', `--shift: unknown key "${key}" (known: ${SHIFT_KEY_NAMES.join(', ')})`);
    if (seen.has(key)) throw new TttError('INVALID_OPTION', `--shift: "${key}" is given twice`);
    seen.add(key);
    if (key === 'pivot') {
      if (raw !== 'grey' && raw !== 'mean') throw new TttError('INVALID_OPTION', `--shift: pivot must be grey or mean, got ${JSON.stringify(raw)}`);
      out.pivot = raw;
      continue;
    }
    const range = SHIFT_KEYS[key as NumericKey];
    const v = raw === '' ? NaN : Number(raw);
    if (!Number.isFinite(v)) throw new TttError('INVALID_OPTION', `--shift: ${key} must be a finite number, got ${JSON.stringify(raw)}`);
    if (v > range.max || (range.openMin ? v <= range.min : v < range.min)) {
      throw new TttError('INVALID_OPTION', `--shift: ${key} must be in ${range.openMin ? '(' : '['}${range.min}, ${range.max}], got ${v}`);
    }
    out[key as NumericKey] = v;
  }
  return out;
}

/** The shift as its canonical spec (only the keys that differ from no shift), for reports. */
export function formatShift(s: PhotometricShift): string {
  const parts: string[] = [];
  for (const k of Object.keys(SHIFT_KEYS) as NumericKey[]) if (s[k] !== NO_SHIFT[k]) parts.push(`${k}=${s[k]}`);
  if (s.pivot !== NO_SHIFT.pivot) parts.push(`pivot=${s.pivot}`);
  return parts.length ? parts.join(',') : 'none';
}

/**
 * The shifted image: per pixel v (each channel alike), with t the pixel's position along the gradient
 * direction in [-1, 1] (the image's corners at the extremes):
 *   v1 = v * brightness * (1 + gradient * t)
 *   v2 = pivot + contrast * (v1 - pivot) + offset      (pivot 0.5, or the mean of v1 over the image)
 *   v' = clamp(v2, 0, 1) ^ gamma
 */
export function applyShift(image: ImageTensor, s: PhotometricShift): ImageTensor {
  const { width: w, height: h, channels } = image;
  const n = w * h;
  const a = (s.angle * Math.PI) / 180;
  const dx = Math.cos(a);
  const dy = Math.sin(a);
  // Half the extent of the image along the direction, so that t spans [-1, 1] over the corners.
  const half = (Math.abs(dx) * (w - 1) + Math.abs(dy) * (h - 1)) / 2;
  const gain = new Float32Array(n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const t = half > 0 ? (dx * (x - (w - 1) / 2) + dy * (y - (h - 1) / 2)) / half : 0;
      gain[y * w + x] = s.brightness * (1 + s.gradient * t);
    }
  }
  const v1 = new Float32Array(image.data.length);
  let sum = 0;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < n; i++) {
      const v = image.data[c * n + i] * gain[i];
      v1[c * n + i] = v;
      sum += v;
    }
  }
  const pivot = s.pivot === 'mean' ? sum / v1.length : 0.5;
  const out = new Float32Array(v1.length);
  for (let i = 0; i < v1.length; i++) {
    const v = Math.min(1, Math.max(0, pivot + s.contrast * (v1[i] - pivot) + s.offset));
    out[i] = s.gamma === 1 ? v : v ** s.gamma;
  }
  return { data: out, width: w, height: h, channels };
}
