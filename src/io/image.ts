// Images in and out through sharp: decode an upload into a planar float ImageTensor, encode masks, score
// maps and overlays as PNG. Minimal version for the service; the io branch's fuller module replaces it.

import sharp, { type Metadata } from 'sharp';
import { TttError } from '../core/errors.ts';
import type { ImageTensor, Region, ScoreMap } from '../core/types.ts';
import { isNpy, parseNpy } from './npy.ts';

export interface DecodeLimits {
  /** Images with more pixels are rejected (TOO_LARGE). */
  maxPixels?: number;
  /** Images with a longer side are rejected (TOO_LARGE). */
  maxSide?: number;
}

interface Raster {
  data: Float32Array;
  width: number;
  height: number;
  channels: number;
}

/** Decodes any format sharp reads into interleaved floats scaled to [0, 1] (float rasters keep their values). */
export async function decodeRaster(bytes: Uint8Array, name: string, what: string, limits: DecodeLimits = {}, grey = false): Promise<Raster> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes).metadata();
  } catch (e) {
    throw new TttError('UNSUPPORTED_FORMAT', `${name}: not a readable ${what} (${(e as Error).message})`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (limits.maxPixels !== undefined && width * height > limits.maxPixels) {
    throw new TttError('TOO_LARGE', `${name}: ${width}x${height} exceeds the limit of ${limits.maxPixels} pixels`);
  }
  if (limits.maxSide !== undefined && Math.max(width, height) > limits.maxSide) {
    throw new TttError('TOO_LARGE', `${name}: ${width}x${height} exceeds the limit of ${limits.maxSide} pixels per side`);
  }
  const bands = (meta.channels ?? 1) - (meta.hasAlpha ? 1 : 0);
  const channels = grey || bands < 3 ? 1 : 3;
  const depth = meta.depth === 'ushort' || meta.depth === 'short' ? 'ushort' : meta.depth === 'float' || meta.depth === 'double' ? 'float' : 'uchar';
  try {
    let p = sharp(bytes, { limitInputPixels: false }).removeAlpha();
    if (channels === 1) p = p.extractChannel(0);
    if (depth === 'ushort') p = p.toColourspace(channels === 1 ? 'grey16' : 'rgb16');
    else if (depth === 'uchar' && channels === 3) p = p.toColourspace('srgb');
    const { data, info } = await p.raw({ depth }).toBuffer({ resolveWithObject: true });
    const n = info.width * info.height * info.channels;
    const out = new Float32Array(n);
    if (depth === 'float') out.set(new Float32Array(data.buffer, data.byteOffset, n));
    else if (depth === 'ushort') {
      const src = new Uint16Array(data.buffer, data.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = src[i] / 65535;
    } else for (let i = 0; i < n; i++) out[i] = data[i] / 255;
    return { data: out, width: info.width, height: info.height, channels: info.channels };
  } catch (e) {
    throw new TttError('UNSUPPORTED_FORMAT', `${name}: cannot decode the ${what} (${(e as Error).message})`);
  }
}

function planar(r: Raster): Float32Array {
  if (r.channels === 1) return r.data;
  const n = r.width * r.height;
  const out = new Float32Array(n * r.channels);
  for (let i = 0; i < n; i++) for (let c = 0; c < r.channels; c++) out[c * n + i] = r.data[i * r.channels + c];
  return out;
}

export async function decodeImage(bytes: Uint8Array, name: string, opts: DecodeLimits = {}): Promise<ImageTensor> {
  const r = await decodeRaster(bytes, name, 'image', opts);
  return { data: planar(r), width: r.width, height: r.height, channels: r.channels as 1 | 3 };
}

export async function decodeMask(bytes: Uint8Array, name: string, size: { width: number; height: number }): Promise<Uint8Array> {
  let values: Float32Array;
  let width: number;
  let height: number;
  if (isNpy(bytes)) {
    const a = parseNpy(bytes, name);
    const dims = a.shape.filter((d) => d !== 1);
    if (dims.length !== 2) throw new TttError('UNSUPPORTED_FORMAT', `${name}: a mask must be 2-D, got shape (${a.shape.join(', ')})`);
    [height, width] = a.shape.length === 2 ? a.shape : dims;
    values = a.data;
  } else {
    const r = await decodeRaster(bytes, name, 'mask', {}, true);
    ({ width, height } = r);
    values = r.data;
  }
  if (width !== size.width || height !== size.height) {
    throw new TttError('SIZE_MISMATCH', `${name}: the mask is ${width}x${height} but the image is ${size.width}x${size.height}`);
  }
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = values[i] > 0 ? 1 : 0;
  return out;
}

function png(data: Uint8Array, width: number, height: number, channels: 1 | 3): Promise<Uint8Array> {
  let p = sharp(data, { raw: { width, height, channels } });
  if (channels === 1) p = p.toColourspace('b-w');
  return p.png().toBuffer().then((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
}

export function encodeMaskPng(mask: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  if (mask.length !== width * height) throw new TttError('SIZE_MISMATCH', `mask holds ${mask.length} values, expected ${width}x${height}`);
  const grey = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) grey[i] = mask[i] ? 255 : 0;
  return png(grey, width, height, 1);
}

/** The map as an 8-bit grey PNG, scaled linearly from range (default: the map's min and max) to 0..255. */
export function encodeScoreMapPng(map: ScoreMap, range?: { min: number; max: number }): Promise<Uint8Array> {
  let min = range?.min ?? Infinity;
  let max = range?.max ?? -Infinity;
  if (!range) for (const v of map.data) if (Number.isFinite(v)) (min = Math.min(min, v)), (max = Math.max(max, v));
  const scale = max > min ? 255 / (max - min) : 0;
  const grey = new Uint8Array(map.data.length);
  for (let i = 0; i < grey.length; i++) grey[i] = Math.round(Math.min(255, Math.max(0, (map.data[i] - min) * scale)));
  return png(grey, map.width, map.height, 1);
}

/** The image in RGB with the mask tinted red and each region's bounding box outlined in yellow. */
export function encodeOverlayPng(image: ImageTensor, mask: Uint8Array, regions: readonly Region[]): Promise<Uint8Array> {
  const { width, height, channels } = image;
  const n = width * height;
  if (mask.length !== n) throw new TttError('SIZE_MISMATCH', `mask holds ${mask.length} values, the image is ${width}x${height}`);
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = image.data[(channels === 3 ? c * n : 0) + i] * 255;
      rgb[i * 3 + c] = mask[i] ? Math.round(c === 0 ? 0.5 * v + 127.5 : 0.5 * v) : Math.round(v);
    }
  }
  const paint = (x: number, y: number) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    rgb.set([255, 230, 0], (y * width + x) * 3);
  };
  for (const r of regions) {
    const { x, y, width: w, height: h } = r.bbox;
    for (let i = x; i < x + w; i++) paint(i, y), paint(i, y + h - 1);
    for (let j = y; j < y + h; j++) paint(x, j), paint(x + w - 1, j);
  }
  return png(rgb, width, height, 3);
}
