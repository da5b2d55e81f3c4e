// NumPy .npy files (format 1.0-3.0, C order, little- or big-endian numeric dtypes) to and from float32.
// Minimal version for the service; the io branch's fuller module replaces it.

import { TttError } from '../core/errors.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= 10 && MAGIC.every((b, i) => bytes[i] === b);
}

const READERS: Record<string, [size: number, read: (v: DataView, o: number, le: boolean) => number]> = {
  f2: [2, (v, o, le) => halfToFloat(v.getUint16(o, le))],
  f4: [4, (v, o, le) => v.getFloat32(o, le)],
  f8: [8, (v, o, le) => v.getFloat64(o, le)],
  u1: [1, (v, o) => v.getUint8(o)],
  i1: [1, (v, o) => v.getInt8(o)],
  u2: [2, (v, o, le) => v.getUint16(o, le)],
  i2: [2, (v, o, le) => v.getInt16(o, le)],
  u4: [4, (v, o, le) => v.getUint32(o, le)],
  i4: [4, (v, o, le) => v.getInt32(o, le)],
  b1: [1, (v, o) => v.getUint8(o)],
};

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export function parseNpy(bytes: Uint8Array, name: string): { shape: number[]; dtype: string; data: Float32Array } {
  const bad = (msg: string): never => {
    throw new TttError('UNSUPPORTED_FORMAT', `${name}: ${msg}`);
  };
  if (!isNpy(bytes)) bad('not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > bytes.length) bad('truncated header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) bad(`unreadable header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') bad('Fortran-ordered arrays are not supported (save with np.ascontiguousarray)');
  const shape = shapeText!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) bad(`invalid shape (${shapeText})`);
  const order = descr![0];
  const kind = descr!.slice(1);
  const reader = READERS[kind];
  if (!reader || !'<>|='.includes(order)) bad(`unsupported dtype ${descr} (numeric dtypes only)`);
  const [size, read] = reader!;
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (bytes.length - offset < count * size) {
    throw new TttError('SIZE_MISMATCH', `${name}: holds ${Math.floor((bytes.length - offset) / size)} values, shape (${shape.join(', ')}) needs ${count}`);
  }
  const le = order !== '>';
  const data = new Float32Array(count);
  if (kind === 'f4' && le && (bytes.byteOffset + offset) % 4 === 0) {
    data.set(new Float32Array(bytes.buffer, bytes.byteOffset + offset, count));
  } else {
    for (let i = 0; i < count; i++) data[i] = read(view, offset + i * size, le);
  }
  return { shape, dtype: descr!, data };
}

export function encodeNpy(data: Float32Array, shape: number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new TttError('SIZE_MISMATCH', `encodeNpy: shape (${shape.join(', ')}) needs ${count} values, got ${data.length}`);
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const body = new DataView(out.buffer, 10 + header.length);
  for (let i = 0; i < data.length; i++) body.setFloat32(i * 4, data[i], true);
  return out;
}
