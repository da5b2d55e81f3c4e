// A compact, self-describing file of named tensors (the network weights the project ships): a small JSON
// header (names, shapes, storage type, offsets, a checksum of the data) followed by the raw little-endian
// data. Convolution kernels are stored as float16, batch norm parameters as float32 (they are folded at load
// in float32 arithmetic). Runtime-agnostic: the host reads the bytes, this module decodes them.
//
// Layout: "TTTW" | u32 version (1) | u32 header length H | H bytes of UTF-8 JSON (space padded to a multiple
// of 4) | data. Every tensor's data starts at a multiple of 4 bytes from the start of the data section.

import { TttError } from '../../errors.ts';
import { halfToFloat } from '../mobilenet/weights.ts';
import type { DecodedTensor } from '../mobilenet/weights.ts';

export const WEIGHTS_MAGIC = 'TTTW';
export const WEIGHTS_VERSION = 1;

export type StoredType = 'float16' | 'float32';

interface TensorEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: StoredType;
  /** Byte offset from the start of the data section. */
  readonly offset: number;
}

interface Header {
  readonly source: string;
  readonly tensors: readonly TensorEntry[];
  /** Bytes in the data section. */
  readonly bytes: number;
  /** FNV-1a (32 bit) of the data section. */
  readonly fnv1a: number;
}

export interface TensorFile {
  readonly source: string;
  readonly tensors: ReadonlyMap<string, DecodedTensor>;
  /** FNV-1a (32 bit) of the data section, as stored and verified. */
  readonly checksum: number;
}

/** FNV-1a (32 bit) over bytes. */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> float16 bits, rounding to nearest even; overflow gives infinity (the encoder refuses it). */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: units of 2^-24.
    const shift = 14 - e;
    if (shift > 24) return sign;
    mant |= 0x800000;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is the right rounding
  return sign | h;
}

const HALF_MAX = 65504;
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

let table: Float32Array | null = null;
/** Every float16 bit pattern's value. */
function halfTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = halfToFloat(h);
  }
  return table;
}

/** Encodes tensors (in the given order) into one file. */
export function encodeTensorFile(source: string, tensors: readonly { name: string; shape: readonly number[]; dtype: StoredType; values: Float32Array }[]): Uint8Array {
  const entries: TensorEntry[] = [];
  let bytes = 0;
  for (const t of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.values.length) throw new TttError('SIZE_MISMATCH', `${t.name}: shape ${t.shape.join('x')} but ${t.values.length} values`);
    entries.push({ name: t.name, shape: [...t.shape], dtype: t.dtype, offset: bytes });
    bytes += Math.ceil((size * (t.dtype === 'float16' ? 2 : 4)) / 4) * 4;
  }
  const data = new Uint8Array(bytes);
  const view = new DataView(data.buffer);
  tensors.forEach((t, i) => {
    const o = entries[i].offset;
    for (let k = 0; k < t.values.length; k++) {
      const v = t.values[k];
      if (!Number.isFinite(v) || (t.dtype === 'float16' && Math.abs(v) > HALF_MAX)) {
        throw new TttError('NON_FINITE', `${t.name}[${k}] = ${v} cannot be stored as ${t.dtype}`);
      }
      if (t.dtype === 'float16') view.setUint16(o + 2 * k, floatToHalf(v), true);
      else view.setFloat32(o + 4 * k, v, true);
    }
  });
  const header: Header = { source, tensors: entries, bytes, fnv1a: fnv1a(data) };
  let json = JSON.stringify(header);
  json += ' '.repeat((4 - (new TextEncoder().encode(json).length % 4)) % 4);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(12 + head.length + bytes);
  out.set(new TextEncoder().encode(WEIGHTS_MAGIC), 0);
  const ov = new DataView(out.buffer);
  ov.setUint32(4, WEIGHTS_VERSION, true);
  ov.setUint32(8, head.length, true);
  out.set(head, 12);
  out.set(data, 12 + head.length);
  return out;
}

/** Decodes a tensor file; anything malformed, truncated or corrupted is an UNSUPPORTED_FORMAT / INVALID_INPUT error naming `what`. */
export function decodeTensorFile(file: Uint8Array, what: string): TensorFile {
  const bad = (code: 'UNSUPPORTED_FORMAT' | 'INVALID_INPUT', message: string): never => {
    throw new TttError(code, `${what}: ${message}`);
  };
  if (file.length < 12 || new TextDecoder().decode(file.subarray(0, 4)) !== WEIGHTS_MAGIC) bad('UNSUPPORTED_FORMAT', `not a weights file (expected the signature ${WEIGHTS_MAGIC})`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const version = view.getUint32(4, true);
  if (version !== WEIGHTS_VERSION) bad('UNSUPPORTED_FORMAT', `weights file version ${version} (this build reads ${WEIGHTS_VERSION})`);
  const headLength = view.getUint32(8, true);
  if (12 + headLength > file.length) bad('INVALID_INPUT', `truncated: the header needs ${headLength} bytes, the file holds ${file.length - 12} after the signature`);
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.subarray(12, 12 + headLength))) as Header;
  } catch (e) {
    return bad('UNSUPPORTED_FORMAT', `unreadable header (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || !Array.isArray(header.tensors) || typeof header.bytes !== 'number' || typeof header.fnv1a !== 'number') {
    bad('UNSUPPORTED_FORMAT', 'the header lacks tensors, bytes or fnv1a');
  }
  const start = 12 + headLength;
  if (file.length - start !== header.bytes) {
    bad('INVALID_INPUT', `${file.length - start < header.bytes ? 'truncated' : 'trailing data'}: the header describes ${header.bytes} bytes of data, the file holds ${file.length - start}`);
  }
  const data = file.subarray(start);
  const sum = fnv1a(data);
  if (sum !== header.fnv1a) bad('INVALID_INPUT', `corrupted: the data's checksum is ${sum.toString(16)}, the header says ${header.fnv1a.toString(16)}`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const tensors = new Map<string, DecodedTensor>();
  for (const t of header.tensors) {
    if (typeof t?.name !== 'string' || !Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d > 0) || !Number.isInteger(t.offset) || t.offset < 0 || t.offset % 4) {
      bad('UNSUPPORTED_FORMAT', `malformed tensor entry ${JSON.stringify(t)}`);
    }
    if (t.dtype !== 'float16' && t.dtype !== 'float32') bad('UNSUPPORTED_FORMAT', `${t.name}: unsupported storage type ${JSON.stringify(t.dtype)}`);
    if (tensors.has(t.name)) bad('UNSUPPORTED_FORMAT', `tensor ${t.name} is listed twice`);
    const size = t.shape.reduce((a, b) => a * b, 1);
    const width = t.dtype === 'float16' ? 2 : 4;
    if (t.offset + size * width > data.length) bad('INVALID_INPUT', `${t.name} (bytes ${t.offset}..${t.offset + size * width}) lies past the data (${data.length} bytes)`);
    const values = new Float32Array(size);
    if (t.dtype === 'float16') {
      const lut = halfTable();
      if (LITTLE_ENDIAN && (data.byteOffset + t.offset) % 2 === 0) {
        const bits = new Uint16Array(data.buffer, data.byteOffset + t.offset, size);
        for (let i = 0; i < size; i++) values[i] = lut[bits[i]];
      } else {
        for (let i = 0; i < size; i++) values[i] = lut[dv.getUint16(t.offset + 2 * i, true)];
      }
    } else {
      for (let i = 0; i < size; i++) values[i] = dv.getFloat32(t.offset + 4 * i, true);
    }
    tensors.set(t.name, { shape: t.shape, values });
  }
  return { source: typeof header.source === 'string' ? header.source : what, tensors, checksum: sum };
}
