// Hand-built .npy and TIFF bytes for the decoder tests: written from the format specifications, not by
// the code under test, so a round trip cannot hide a shared misreading.

import { expect } from 'vitest';
import { TttError } from '../../src/core/errors.ts';

/** A .npy file with the given header text (padded to 64 bytes and newline-terminated) and payload. */
export function npyFile(header: string, payload: Uint8Array, opts: { version?: number; rawHeader?: boolean } = {}): Uint8Array {
  const version = opts.version ?? 1;
  const lenBytes = version === 1 ? 2 : 4;
  let text = header;
  if (!opts.rawHeader) {
    const unpadded = 8 + lenBytes + text.length + 1;
    text += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  }
  const headerBytes = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + lenBytes + headerBytes.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const v = new DataView(out.buffer);
  if (version === 1) v.setUint16(8, headerBytes.length, true);
  else v.setUint32(8, headerBytes.length, true);
  out.set(headerBytes, 8 + lenBytes);
  out.set(payload, 8 + lenBytes + headerBytes.length);
  return out;
}

export const npyHeader = (descr: string, shape: readonly number[], fortran = false) =>
  `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;

/** Payload bytes of `values` as `kind`+`size` in the given byte order. */
export function packValues(values: readonly number[], kind: 'f' | 'u' | 'i', size: number, littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(values.length * size);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => {
    const p = i * size;
    const key = `${kind}${size}`;
    if (key === 'f4') v.setFloat32(p, x, littleEndian);
    else if (key === 'f8') v.setFloat64(p, x, littleEndian);
    else if (key === 'f2' || key === 'u2') v.setUint16(p, x, littleEndian);
    else if (key === 'u1') v.setUint8(p, x);
    else if (key === 'i1') v.setInt8(p, x);
    else if (key === 'i2') v.setInt16(p, x, littleEndian);
    else if (key === 'u4') v.setUint32(p, x, littleEndian);
    else if (key === 'i4') v.setInt32(p, x, littleEndian);
    else if (key === 'u8') v.setBigUint64(p, BigInt(x), littleEndian);
    else if (key === 'i8') v.setBigInt64(p, BigInt(x), littleEndian);
    else throw new Error(`packValues: ${key}`);
  });
  return out;
}

/**
 * A baseline uncompressed TIFF (one strip, chunky samples) as libtiff and tifffile write it:
 * minisblack for 1 sample, RGB for 3; SampleFormat 1 (uint) or 3 (IEEE float).
 */
export function tiffFile(opts: {
  width: number;
  height: number;
  samples: 1 | 3;
  bits: 8 | 16 | 32 | 64;
  float: boolean;
  values: readonly number[];
  bigEndian?: boolean;
}): Uint8Array {
  const { width, height, samples, bits, float, values } = opts;
  const le = !opts.bigEndian;
  const bytesPer = bits / 8;
  const pixelBytes = width * height * samples * bytesPer;
  if (values.length !== width * height * samples) throw new Error('tiffFile: value count');
  const SHORT = 3;
  const LONG = 4;
  // [tag, type, count, values]
  const entries: [number, number, number, number[]][] = [
    [256, LONG, 1, [width]],
    [257, LONG, 1, [height]],
    [258, SHORT, samples, Array(samples).fill(bits)],
    [259, SHORT, 1, [1]],
    [262, SHORT, 1, [samples === 1 ? 1 : 2]],
    [273, LONG, 1, [0]], // patched below
    [277, SHORT, 1, [samples]],
    [278, LONG, 1, [height]],
    [279, LONG, 1, [pixelBytes]],
    [284, SHORT, 1, [1]],
    [339, SHORT, samples, Array(samples).fill(float ? 3 : 1)],
  ];
  const ifdOffset = 8;
  const ifdSize = 2 + entries.length * 12 + 4;
  let extra = ifdOffset + ifdSize;
  const extraBlocks: { at: number; type: number; vals: number[] }[] = [];
  const fieldAt: number[] = [];
  for (const [, type, count, vals] of entries) {
    const size = (type === SHORT ? 2 : 4) * count;
    if (size > 4) {
      fieldAt.push(extra);
      extraBlocks.push({ at: extra, type, vals });
      extra += size + (size % 2);
    } else fieldAt.push(-1);
  }
  const dataOffset = extra;
  entries[5][3] = [dataOffset];
  const out = new Uint8Array(dataOffset + pixelBytes);
  const v = new DataView(out.buffer);
  out.set(le ? [0x49, 0x49] : [0x4d, 0x4d]);
  v.setUint16(2, 42, le);
  v.setUint32(4, ifdOffset, le);
  v.setUint16(ifdOffset, entries.length, le);
  entries.forEach(([tag, type, count, vals], k) => {
    const e = ifdOffset + 2 + k * 12;
    v.setUint16(e, tag, le);
    v.setUint16(e + 2, type, le);
    v.setUint32(e + 4, count, le);
    if (fieldAt[k] >= 0) v.setUint32(e + 8, fieldAt[k], le);
    else if (type === SHORT) vals.forEach((x, i) => v.setUint16(e + 8 + 2 * i, x, le));
    else v.setUint32(e + 8, vals[0], le);
  });
  v.setUint32(ifdOffset + 2 + entries.length * 12, 0, le);
  for (const b of extraBlocks) b.vals.forEach((x, i) => (b.type === SHORT ? v.setUint16(b.at + 2 * i, x, le) : v.setUint32(b.at + 4 * i, x, le)));
  values.forEach((x, i) => {
    const p = dataOffset + i * bytesPer;
    if (float && bits === 32) v.setFloat32(p, x, le);
    else if (float && bits === 64) v.setFloat64(p, x, le);
    else if (bits === 8) v.setUint8(p, x);
    else if (bits === 16) v.setUint16(p, x, le);
    else if (bits === 32) v.setUint32(p, x, le);
    else throw new Error('tiffFile: unsupported sample type');
  });
  return out;
}

/** Asserts that `fn` fails with a TttError of `code` whose message starts with the file name and matches `re`. */
export async function expectTttError(fn: () => unknown, code: string, name: string, re?: RegExp): Promise<TttError> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a TttError').toBeInstanceOf(TttError);
  const t = err as TttError;
  expect(t.code, t.message).toBe(code);
  expect(t.message.startsWith(`${name}: `), t.message).toBe(true);
  if (re) expect(t.message).toMatch(re);
  return t;
}
