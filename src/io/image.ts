// Images in and out through sharp (libvips): PNG/JPEG/TIFF sniffed from the bytes and checked (size, pixel
// budget, corruption) before any pixel is decoded; masks, heat maps and overlays encoded as PNG.

import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';
import { TttError, withSubjectAsync } from '../core/errors.ts';
import type { ImageTensor, Region, ScoreMap } from '../core/types.ts';
import { FORMAT_LABELS, requireFormat, type Format } from './sniff.ts';

/**
 * The one decode limit (MAX_IMAGE_PIXELS' default, 64 Mi pixels = 8192 x 8192): every raster and array
 * decoder refuses more pixels from the file's header, before any pixel is decoded; the submission and
 * the job decode under the same configured value.
 */
export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024;

export interface DecodeImageOptions {
  /** Images whose header declares more pixels are refused before decoding (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** Downscale (lanczos3) so that the longest side is at most this many pixels. */
  maxSide?: number;
}


/** A PNG's IHDR size, read directly: libvips reports a zero width only as a "corrupt header". */
function pngHeaderSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < 24) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

/**
 * The first IFD's BitsPerSample of a classic TIFF, or null when it cannot be read here (BigTIFF, odd
 * layouts: libvips then has the last word). libvips refuses samples over 32 bits as a "corrupt header",
 * which would mislead the user about a valid float64 file.
 */
function tiffBitsPerSample(bytes: Uint8Array): number | null {
  if (bytes.length < 8) return null;
  const le = bytes[0] === 0x49;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint16(2, le) !== 42) return null;
  const ifd = v.getUint32(4, le);
  if (ifd + 2 > bytes.length) return null;
  const count = v.getUint16(ifd, le);
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + k * 12;
    if (e + 12 > bytes.length) return null;
    if (v.getUint16(e, le) !== 258) continue;
    const n = v.getUint32(e + 4, le);
    if (v.getUint16(e + 2, le) !== 3 || n < 1) return null;
    const at = n <= 2 ? e + 8 : v.getUint32(e + 8, le);
    return at + 2 <= bytes.length ? v.getUint16(at, le) : null;
  }
  return null;
}

/** The formats an image may come in. */
export const IMAGE_FORMATS = ['png', 'jpeg', 'tiff'] as const;

/**
 * Header checks shared by every raster decoder: the format is sniffed, the size is non-zero and within
 * `maxPixels`. Errors carry no file name (callers wrap them with it).
 */
export async function inspectRaster<F extends Format>(
  bytes: Uint8Array,
  accepted: readonly F[],
  what: string,
  maxPixels = DEFAULT_MAX_PIXELS,
): Promise<{ format: F; meta: Metadata }> {
  const format = requireFormat(bytes, accepted, what);
  if (format === 'png') {
    const s = pngHeaderSize(bytes);
    if (s && (s.width === 0 || s.height === 0)) throw new TttError('INVALID_INPUT', `the ${what} has zero size (${s.width}x${s.height})`);
  }
  if (format === 'tiff') {
    const bits = tiffBitsPerSample(bytes);
    if (bits !== null && bits > 32) {
      throw new TttError('UNSUPPORTED_FORMAT', `the ${what} is a TIFF with ${bits}-bit samples; up to 32 bits are supported (save float64 data as float32, or as .npy)`);
    }
  }
  let meta: Metadata;
  try {
    // The header only: no pixel is decoded here, so sharp's own default pixel limit (which would report a
    // bomb as a corrupt file) is lifted; `maxPixels` below refuses it as TOO_LARGE.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new TttError('INVALID_INPUT', `corrupt or truncated ${FORMAT_LABELS[format]} ${what}: ${(e as Error).message.trim()}`);
  }
  const { width, height } = meta;
  if (!width || !height) throw new TttError('INVALID_INPUT', `the ${what} has zero size (${width ?? 0}x${height ?? 0})`);
  if (width * height > maxPixels) {
    throw new TttError('TOO_LARGE', `the ${what} is ${width}x${height} = ${width * height} pixels, more than the limit of ${maxPixels}`);
  }
  return { format, meta };
}

/** Runs a sharp pipeline to raw pixels, turning libvips' decode failures into INVALID_INPUT. */
export async function decodeRaw(
  pipeline: Sharp,
  format: Format,
  what: string,
): Promise<{ data: Buffer; info: OutputInfo }> {
  try {
    return await pipeline.toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = (e as Error).message.trim();
    if (/exceeds pixel limit/.test(msg)) throw new TttError('TOO_LARGE', `the ${what} exceeds the pixel limit`);
    throw new TttError('INVALID_INPUT', `corrupt or truncated ${FORMAT_LABELS[format]} ${what}: ${msg}`);
  }
}

/** sharp's input options: refuse what the header check refused, and fail on decoder errors (truncation). */
export function sharpInput(bytes: Uint8Array, maxPixels: number): Sharp {
  return sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' });
}

/** 16-bit samples of sharp's raw output (native byte order), copied only if the view would be misaligned. */
export function samples16(data: Uint8Array): Uint16Array {
  if (data.byteOffset % 2 === 0) return new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
  return new Uint16Array(Uint8Array.from(data).buffer);
}

function isGrey(meta: Metadata): boolean {
  return meta.space === 'b-w' || meta.space === 'grey16';
}

/** Target size with the longest side at most maxSide, keeping the aspect ratio. */
export function fitSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const longest = Math.max(width, height);
  if (longest <= maxSide) return { width, height };
  const s = maxSide / longest;
  return { width: Math.max(1, Math.round(width * s)), height: Math.max(1, Math.round(height * s)) };
}

/**
 * An image as planar float [0, 1]: grey sources give 1 channel, everything else 3 (sRGB); alpha is
 * dropped; 8-bit values are divided by 255, 16-bit by 65535. EXIF orientation is not applied (score maps
 * come from detectors that read the stored pixel grid).
 */
export function decodeImage(bytes: Uint8Array, name: string, opts: DecodeImageOptions = {}): Promise<ImageTensor> {
  return withSubjectAsync(name, async () => {
    const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
    if (opts.maxSide !== undefined && !(Number.isInteger(opts.maxSide) && opts.maxSide >= 1)) {
      throw new TttError('INVALID_OPTION', `maxSide must be a positive integer, got ${opts.maxSide}`);
    }
    const { format, meta } = await inspectRaster(bytes, IMAGE_FORMATS, 'image', maxPixels);
    if (meta.depth !== 'uchar' && meta.depth !== 'ushort') {
      throw new TttError('UNSUPPORTED_FORMAT', `the image has ${meta.depth} samples; images must be 8- or 16-bit (float TIFFs are read as score maps)`);
    }
    const grey = isGrey(meta);
    const wide = meta.depth === 'ushort';
    const channels: 1 | 3 = grey ? 1 : 3;
    let p = sharpInput(bytes, maxPixels).removeAlpha();
    const size = opts.maxSide ? fitSize(meta.width!, meta.height!, opts.maxSide) : { width: meta.width!, height: meta.height! };
    if (size.width !== meta.width || size.height !== meta.height) p = p.resize(size.width, size.height, { fit: 'fill', kernel: 'lanczos3' });
    p = p.toColourspace(grey ? (wide ? 'grey16' : 'b-w') : wide ? 'rgb16' : 'srgb').raw({ depth: wide ? 'ushort' : 'uchar' });
    const { data, info } = await decodeRaw(p, format, 'image');
    if (info.channels !== channels || info.width !== size.width || info.height !== size.height) {
      throw new TttError('INTERNAL', `decoder gave ${info.width}x${info.height}x${info.channels}, expected ${size.width}x${size.height}x${channels}`);
    }
    const src = wide ? samples16(data) : data;
    const max = wide ? 65535 : 255;
    const n = size.width * size.height;
    const out = new Float32Array(n * channels);
    for (let c = 0; c < channels; c++) for (let i = 0; i < n; i++) out[c * n + i] = src[i * channels + c] / max;
    return { data: out, width: size.width, height: size.height, channels };
  });
}

/**
 * A ground-truth mask (any PNG/JPEG/TIFF; colour is converted to grey): 1 where the grey value is above
 * half the range (> 127 for 8-bit), else 0. A mask whose size differs from `size` is refused.
 */
export function decodeMask(bytes: Uint8Array, name: string, size: { width: number; height: number }, maxPixels = DEFAULT_MAX_PIXELS): Promise<Uint8Array> {
  return withSubjectAsync(name, async () => {
    const { format, meta } = await inspectRaster(bytes, ['png', 'jpeg', 'tiff'], 'mask', maxPixels);
    if (meta.width !== size.width || meta.height !== size.height) {
      throw new TttError('SIZE_MISMATCH', `the mask is ${meta.width}x${meta.height} but the image is ${size.width}x${size.height}`);
    }
    const wide = meta.depth === 'ushort';
    const p = sharpInput(bytes, maxPixels)
      .removeAlpha()
      .toColourspace(wide ? 'grey16' : 'b-w')
      .raw({ depth: wide ? 'ushort' : 'uchar' });
    const { data, info } = await decodeRaw(p, format, 'mask');
    if (info.channels !== 1) throw new TttError('INTERNAL', `mask decoded to ${info.channels} channels`);
    const src = wide ? samples16(data) : data;
    const threshold = wide ? 32767 : 127;
    const out = new Uint8Array(size.width * size.height);
    for (let i = 0; i < out.length; i++) out[i] = src[i] > threshold ? 1 : 0;
    return out;
  });
}

function checkPlane(what: string, length: number, width: number, height: number): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 1 && height >= 1)) {
    throw new TttError('INVALID_INPUT', `${what}: invalid size ${width}x${height}`);
  }
  if (length !== width * height) throw new TttError('SIZE_MISMATCH', `${what}: ${length} values for ${width}x${height}`);
}

/** A 1-channel 8-bit PNG: 255 where the mask is non-zero (defective), 0 elsewhere. */
export async function encodeMaskPng(mask: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  checkPlane('mask', mask.length, width, height);
  const px = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) px[i] = mask[i] ? 255 : 0;
  return new Uint8Array(await sharp(px, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer());
}

/** An 8-bit PNG of an image tensor (grey or RGB), values clamped to [0, 1] and rounded. */
export async function encodeImagePng(image: ImageTensor): Promise<Uint8Array> {
  const { width, height, channels } = image;
  checkPlane('image', image.data.length / channels, width, height);
  const n = width * height;
  const px = new Uint8Array(n * channels);
  for (let c = 0; c < channels; c++) for (let i = 0; i < n; i++) px[i * channels + c] = Math.round(Math.min(1, Math.max(0, image.data[c * n + i])) * 255);
  const p = sharp(px, { raw: { width, height, channels } });
  return new Uint8Array(await (channels === 1 ? p.toColourspace('b-w') : p).png().toBuffer());
}

// Control points of the "inferno" colour map (perceptually uniform, readable in greyscale print).
const INFERNO: readonly (readonly [number, number, number])[] = [
  [0, 0, 4],
  [40, 11, 84],
  [101, 21, 110],
  [159, 42, 99],
  [212, 72, 66],
  [245, 125, 21],
  [250, 193, 39],
  [252, 255, 164],
];

/**
 * A colour heat map of a score map (inferno colours, low = black-purple, high = pale yellow). `range`
 * fixes the scale (e.g. a calibration's range, so maps of different images compare); by default the map's
 * own finite min and max. Values outside the range are clamped; NaN pixels are drawn in cyan so they stand out.
 */
export async function encodeScoreMapPng(map: ScoreMap, range?: { min: number; max: number }): Promise<Uint8Array> {
  const { width, height, data } = map;
  checkPlane('score map', data.length, width, height);
  let lo = range?.min ?? Infinity;
  let hi = range?.max ?? -Infinity;
  if (!range) {
    for (const v of data) {
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (range && !(Number.isFinite(lo) && Number.isFinite(hi) && hi >= lo)) {
    throw new TttError('INVALID_OPTION', `heat map range: must be finite with min <= max, got [${range.min}, ${range.max}]`);
  }
  const span = hi > lo ? hi - lo : 1;
  const px = new Uint8Array(width * height * 3);
  const last = INFERNO.length - 1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Number.isNaN(v)) {
      px.set([0, 255, 255], i * 3);
      continue;
    }
    const t = Math.min(1, Math.max(0, Number.isFinite(lo) ? (v - lo) / span : 0)) * last;
    const k = Math.min(last - 1, Math.floor(t));
    const f = t - k;
    const a = INFERNO[k];
    const b = INFERNO[k + 1];
    for (let c = 0; c < 3; c++) px[i * 3 + c] = Math.round(a[c] + (b[c] - a[c]) * f);
  }
  return new Uint8Array(await sharp(px, { raw: { width, height, channels: 3 } }).png().toBuffer());
}

/**
 * The image (grey shown as RGB) with defective pixels blended 50% towards red and each region's
 * bounding box outlined by a 1-pixel yellow rectangle.
 */
export async function encodeOverlayPng(image: ImageTensor, mask: Uint8Array, regions: readonly Region[]): Promise<Uint8Array> {
  const { width, height, channels } = image;
  const n = width * height;
  checkPlane('image', image.data.length / channels, width, height);
  checkPlane('mask', mask.length, width, height);
  const px = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.round(Math.min(1, Math.max(0, image.data[(channels === 1 ? 0 : c) * n + i])) * 255);
      px[i * 3 + c] = mask[i] ? Math.round(0.5 * v + 0.5 * (c === 0 ? 255 : 0)) : v;
    }
  }
  const paint = (x: number, y: number) => {
    if (x >= 0 && y >= 0 && x < width && y < height) px.set([255, 255, 0], (y * width + x) * 3);
  };
  for (const r of regions) {
    const { x, y, width: w, height: h } = r.bbox;
    const x1 = x + w - 1;
    const y1 = y + h - 1;
    for (let xx = x; xx <= x1; xx++) {
      paint(xx, y);
      paint(xx, y1);
    }
    for (let yy = y; yy <= y1; yy++) {
      paint(x, yy);
      paint(x1, yy);
    }
  }
  return new Uint8Array(await sharp(px, { raw: { width, height, channels: 3 } }).png().toBuffer());
}
