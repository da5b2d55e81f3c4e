// Minimal host-side image and .npy handling for the PatchCore commands (sharp): to be folded into src/io
// (decodeImage, decodeMask, encodeNpy there share these signatures).

import sharp from 'sharp';
import { TttError } from '../core/errors.ts';
import type { ImageTensor, ScoreMap } from '../core/types.ts';

async function raw(bytes: Uint8Array, name: string, grey: boolean | null) {
  try {
    const img = sharp(bytes, { failOn: 'error' });
    const meta = await img.metadata();
    const isGrey = grey ?? (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0) === 1;
    const { data, info } = await img.removeAlpha().toColourspace(isGrey ? 'b-w' : 'srgb').raw().toBuffer({ resolveWithObject: true });
    return { data, info, isGrey };
  } catch (e) {
    throw new TttError('UNSUPPORTED_FORMAT', `${name}: cannot decode the image (${(e as Error).message})`);
  }
}

/** An 8-bit image as planar float [0, 1]: 1 channel for grey sources, else 3; alpha dropped. */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<ImageTensor> {
  const { data, info, isGrey } = await raw(bytes, name, null);
  const channels: 1 | 3 = isGrey ? 1 : 3;
  if (info.channels !== channels) throw new TttError('INTERNAL', `${name}: decoded ${info.channels} channels, expected ${channels}`);
  const n = info.width * info.height;
  const out = new Float32Array(n * channels);
  for (let c = 0; c < channels; c++) for (let i = 0; i < n; i++) out[c * n + i] = data[i * channels + c] / 255;
  return { data: out, width: info.width, height: info.height, channels };
}

/** A ground-truth mask: 1 where the grey value is > 127. */
export async function decodeMask(bytes: Uint8Array, name: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await raw(bytes, name, true);
  return { data: Uint8Array.from(data, (v) => (v > 127 ? 1 : 0)), width: info.width, height: info.height };
}

/** A float32 little-endian .npy (format 1.0, C order). */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  const body = new DataView(out.buffer, 10 + header.length);
  for (let i = 0; i < data.length; i++) body.setFloat32(4 * i, data[i], true);
  return out;
}

/** A score map as a colour heat map PNG (black - red - yellow - white over the map's own range). */
export async function encodeHeatPng(map: ScoreMap): Promise<Uint8Array> {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of map.data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const span = hi > lo ? hi - lo : 1;
  const rgb = new Uint8Array(map.width * map.height * 3);
  map.data.forEach((v, i) => {
    const t = (v - lo) / span;
    rgb[3 * i] = Math.round(255 * Math.min(1, 3 * t));
    rgb[3 * i + 1] = Math.round(255 * Math.min(1, Math.max(0, 3 * t - 1)));
    rgb[3 * i + 2] = Math.round(255 * Math.min(1, Math.max(0, 3 * t - 2)));
  });
  return new Uint8Array(await sharp(rgb, { raw: { width: map.width, height: map.height, channels: 3 } }).png().toBuffer());
}
