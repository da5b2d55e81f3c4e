// NumPy .npy files (format versions 1.0, 2.0, 3.0): a strict header parser that checks every field before
// allocating, numeric payloads of either byte order decoded to float32, and a little-endian f4 encoder.

import { TttError } from '../core/errors.ts';

export interface NpyArray {
  shape: number[];
  /** The header's descr, as written (e.g. '<f4', '>f2', '|u1'). */
  dtype: string;
  data: Float32Array;
}

export interface NpyLimits {
  /** Largest element count accepted; checked against the declared shape before anything is allocated. */
  maxElements?: number;
}

/** 2^27 elements: 512 MiB once decoded to float32. */
export const DEFAULT_MAX_NPY_ELEMENTS = 1 << 27;

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

type Kind = 'f' | 'u' | 'i' | 'b';
const ITEM_SIZES: Record<Kind, readonly number[]> = { f: [2, 4, 8], u: [1, 2, 4, 8], i: [1, 2, 4, 8], b: [1] };

function invalid(message: string): never {
  throw new TttError('INVALID_INPUT', message);
}

// ---- the header: a Python dict literal with str keys and str / bool / tuple-of-int values ----

type PyValue = string | boolean | number[];

function parseHeaderDict(text: string): Map<string, PyValue> {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  };
  const expect = (ch: string) => {
    ws();
    if (text[i] !== ch) invalid(`malformed header: expected '${ch}' at offset ${i}, found ${text[i] === undefined ? 'the end' : JSON.stringify(text[i])}`);
    i++;
  };
  const str = (): string => {
    ws();
    const q = text[i];
    if (q !== "'" && q !== '"') invalid(`malformed header: expected a string at offset ${i}`);
    const end = text.indexOf(q, i + 1);
    if (end < 0) invalid('malformed header: unterminated string');
    const s = text.slice(i + 1, end);
    if (s.includes('\\')) invalid('malformed header: escapes in strings are not supported');
    i = end + 1;
    return s;
  };
  const value = (): PyValue => {
    ws();
    const ch = text[i];
    if (ch === "'" || ch === '"') return str();
    if (text.startsWith('True', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('False', i)) {
      i += 5;
      return false;
    }
    if (ch === '(') {
      i++;
      const items: number[] = [];
      for (;;) {
        ws();
        if (text[i] === ')') {
          i++;
          break;
        }
        const m = /^[0-9]+L?/.exec(text.slice(i));
        if (!m) invalid(`malformed header: expected a non-negative integer in the shape at offset ${i}`);
        items.push(Number(m[0].replace('L', '')));
        i += m[0].length;
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== ')') invalid(`malformed header: expected ',' or ')' in the shape at offset ${i}`);
      }
      // Python needs a comma for a 1-tuple: "(5)" is the integer 5, not a shape.
      if (items.length === 1 && !/,\s*\)$/.test(text.slice(0, i))) invalid('malformed header: the shape (n) is not a tuple; expected (n,)');
      return items;
    }
    return invalid(`malformed header: unsupported value at offset ${i}`);
  };

  const out = new Map<string, PyValue>();
  ws();
  if (text[i] !== '{') invalid('malformed header: not a dict literal');
  i++;
  for (;;) {
    ws();
    if (text[i] === '}') {
      i++;
      break;
    }
    const key = str();
    expect(':');
    if (out.has(key)) invalid(`malformed header: duplicate key '${key}'`);
    out.set(key, value());
    ws();
    if (text[i] === ',') i++;
    else if (text[i] !== '}') invalid(`malformed header: expected ',' or '}' at offset ${i}`);
  }
  ws();
  if (i !== text.length) invalid('malformed header: unexpected text after the dict');
  return out;
}

// NumPy itself refuses headers over 10000 bytes unless told otherwise; a numeric array needs far less.
const MAX_HEADER_BYTES = 65536;

/** Versions 1 and 2 store the header in latin-1, version 3 in UTF-8. */
function decodeHeaderText(raw: Uint8Array, major: number): string {
  if (major === 3) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      return invalid('malformed header: not valid UTF-8');
    }
  }
  let s = '';
  for (const b of raw) s += String.fromCharCode(b);
  return s;
}

interface Header {
  descr: string;
  kind: Kind;
  itemSize: number;
  littleEndian: boolean;
  shape: number[];
  dataOffset: number;
}

function parseHeader(bytes: Uint8Array): Header {
  if (!isNpy(bytes)) invalid('not a .npy file (bad magic: expected \\x93NUMPY)');
  if (bytes.length < 10) invalid(`truncated: ${bytes.length} bytes is shorter than a .npy preamble`);
  const major = bytes[6];
  const minor = bytes[7];
  if (major < 1 || major > 3 || minor !== 0) throw new TttError('UNSUPPORTED_FORMAT', `unsupported .npy format version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) invalid(`truncated: the header length field needs ${8 + lenBytes} bytes, got ${bytes.length}`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  if (headerLen === 0) invalid('malformed header: its length is 0');
  if (start + headerLen > bytes.length) invalid(`truncated: the header declares ${headerLen} bytes but the file has ${bytes.length - start} after the preamble`);
  if (headerLen > MAX_HEADER_BYTES) invalid(`malformed header: ${headerLen} bytes is more than the ${MAX_HEADER_BYTES} a numeric array needs`);
  const text = decodeHeaderText(bytes.subarray(start, start + headerLen), major);
  if (!text.endsWith('\n')) invalid('malformed header: it does not end with a newline');
  const dict = parseHeaderDict(text);
  const keys = ['descr', 'fortran_order', 'shape'];
  const missing = keys.filter((k) => !dict.has(k));
  if (missing.length) invalid(`malformed header: missing key${missing.length > 1 ? 's' : ''} ${missing.map((k) => `'${k}'`).join(', ')}`);
  const extra = [...dict.keys()].filter((k) => !keys.includes(k));
  if (extra.length) invalid(`malformed header: unexpected key${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')}`);

  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') invalid("malformed header: 'fortran_order' must be True or False");
  if (fortran) throw new TttError('UNSUPPORTED_FORMAT', 'Fortran-order arrays are not supported; save a C-order array (np.ascontiguousarray)');
  const shape = dict.get('shape');
  if (!Array.isArray(shape)) invalid("malformed header: 'shape' must be a tuple of integers");
  const descr = dict.get('descr');
  if (typeof descr !== 'string') invalid("malformed header: 'descr' must be a string (structured dtypes are not supported)");
  const m = /^([<>|])([fuib])([0-9]+)$/.exec(descr);
  if (!m) throw new TttError('UNSUPPORTED_FORMAT', `unsupported dtype '${descr}' (supported: float16/32/64, int and uint 8 to 64 bits, bool)`);
  const kind = m[2] as Kind;
  const itemSize = Number(m[3]);
  if (!ITEM_SIZES[kind].includes(itemSize)) throw new TttError('UNSUPPORTED_FORMAT', `unsupported dtype '${descr}'`);
  if (m[1] === '|' && itemSize !== 1) invalid(`malformed header: dtype '${descr}' needs a byte order ('<' or '>')`);
  return { descr, kind, itemSize, littleEndian: m[1] !== '>', shape, dataOffset: start + headerLen };
}

// ---- payload ----

let halfTable: Float32Array | null = null;

/** float16 bit patterns to float32: a 64K-entry table, built on first use. */
function halfToFloat(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 31) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  halfTable = t;
  return t;
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function decodePayload(bytes: Uint8Array, h: Header, count: number): Float32Array {
  const off = h.dataOffset;
  if (h.kind === 'f' && h.itemSize === 4 && h.littleEndian === HOST_LITTLE_ENDIAN) {
    // A byte copy into a fresh buffer: the input may sit at any offset (and Buffer#slice is a view).
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes.subarray(off, off + count * 4));
    return out;
  }
  const out = new Float32Array(count);
  const v = new DataView(bytes.buffer, bytes.byteOffset + off, count * h.itemSize);
  const le = h.littleEndian;
  const s = h.itemSize;
  const read: (p: number) => number = (() => {
    switch (`${h.kind}${s}`) {
      case 'f2': {
        const t = halfToFloat();
        return (p) => t[v.getUint16(p, le)];
      }
      case 'f4':
        return (p) => v.getFloat32(p, le);
      case 'f8':
        return (p) => v.getFloat64(p, le);
      case 'u1':
      case 'b1':
        return (p) => v.getUint8(p);
      case 'i1':
        return (p) => v.getInt8(p);
      case 'u2':
        return (p) => v.getUint16(p, le);
      case 'i2':
        return (p) => v.getInt16(p, le);
      case 'u4':
        return (p) => v.getUint32(p, le);
      case 'i4':
        return (p) => v.getInt32(p, le);
      case 'u8':
        return (p) => Number(v.getBigUint64(p, le));
      case 'i8':
        return (p) => Number(v.getBigInt64(p, le));
      default:
        throw new TttError('INTERNAL', `no decoder for ${h.descr}`);
    }
  })();
  for (let i = 0, p = 0; i < count; i++, p += s) out[i] = read(p);
  return out;
}

/** Parses a whole .npy file; every error names `name`. Values of any supported dtype become float32. */
export function parseNpy(bytes: Uint8Array, name: string, limits: NpyLimits = {}): NpyArray {
  const maxElements = limits.maxElements ?? DEFAULT_MAX_NPY_ELEMENTS;
  try {
    const h = parseHeader(bytes);
    // Multiply in floating point: an absurd shape must not wrap around to a small count.
    const count = h.shape.reduce((a, b) => a * b, 1);
    if (count > maxElements) {
      throw new TttError('TOO_LARGE', `shape (${h.shape.join(', ')}) holds ${count} elements, more than the limit of ${maxElements}`);
    }
    const expected = count * h.itemSize;
    const got = bytes.length - h.dataOffset;
    if (got < expected) invalid(`truncated: expected ${expected} bytes of data for shape (${h.shape.join(', ')}) ${h.descr}, got ${got}`);
    if (got > expected) invalid(`${got - expected} unexpected bytes after the data (expected ${expected} bytes for shape (${h.shape.join(', ')}) ${h.descr}, got ${got})`);
    return { shape: h.shape, dtype: h.descr, data: decodePayload(bytes, h, count) };
  } catch (e) {
    if (e instanceof TttError) throw new TttError(e.code, `${name}: ${e.message}`);
    throw e;
  }
}

/** A version 1.0 .npy file of little-endian float32 in C order. */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new TttError('INVALID_INPUT', `encodeNpy: invalid shape (${shape.join(', ')})`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new TttError('SIZE_MISMATCH', `encodeNpy: shape (${shape.join(', ')}) holds ${count} elements but the data has ${data.length}`);
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${tuple}, }`;
  // NumPy pads the header with spaces so that the data starts on a 64-byte boundary.
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.length * 4);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const payload = new DataView(out.buffer, 10 + header.length);
  for (let i = 0; i < data.length; i++) payload.setFloat32(i * 4, data[i], true);
  return out;
}
