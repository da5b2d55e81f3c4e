import { describe, expect, it } from 'vitest';
import { encodeNpy, parseNpy } from '../../src/io/npy.ts';
import { expectTttError, npyFile, npyHeader, packValues } from '../helpers/files.ts';

const f4 = (xs: number[]) => Array.from(Float32Array.from(xs));

describe('parseNpy: every dtype, both byte orders, built by hand', () => {
  const cases: { descr: string; values: number[]; expected?: number[] }[] = [];
  for (const order of ['<', '>']) {
    cases.push(
      { descr: `${order}f4`, values: [0, -1.5, 3.25, 1e-30, -7e20, Infinity, -Infinity] },
      { descr: `${order}f8`, values: [0.1, -2, 1e300, 5e-324], expected: f4([0.1, -2, Infinity, 0]) },
      { descr: `${order}u2`, values: [0, 1, 65535, 40000] },
      { descr: `${order}i2`, values: [-32768, 32767, -1] },
      { descr: `${order}u4`, values: [0, 4294967295, 123456] },
      { descr: `${order}i4`, values: [-2147483648, 2147483647, -5] },
      { descr: `${order}i8`, values: [-3, 2 ** 40, 0] },
      { descr: `${order}u8`, values: [7, 2 ** 50] },
    );
  }
  cases.push({ descr: '|u1', values: [0, 128, 255] }, { descr: '|i1', values: [-128, 127, 0] }, { descr: '|b1', values: [0, 1, 1] });
  for (const c of cases) {
    it(c.descr, () => {
      const kind = c.descr[1] === 'b' ? 'u' : (c.descr[1] as 'f' | 'u' | 'i');
      const size = Number(c.descr.slice(2));
      const payload = packValues(c.values, kind, size, c.descr[0] !== '>');
      const bytes = npyFile(npyHeader(c.descr, [1, c.values.length]), payload);
      const a = parseNpy(bytes, 'x.npy');
      expect(a.shape).toEqual([1, c.values.length]);
      expect(a.dtype).toBe(c.descr);
      expect(Array.from(a.data)).toEqual(c.expected ?? f4(c.values));
    });
  }

  it('float16 in both byte orders (normals, subnormals, signed zero, infinities, NaN)', () => {
    const bits = [0x0000, 0x8000, 0x3c00, 0xc000, 0x3800, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x3555, 0x7c00, 0xfc00, 0x7e00];
    const expected = [0, -0, 1, -2, 0.5, 65504, 2 ** -14, 2 ** -24, 1023 * 2 ** -24, 0.333251953125, Infinity, -Infinity, NaN];
    for (const le of [true, false]) {
      const a = parseNpy(npyFile(npyHeader(le ? '<f2' : '>f2', [bits.length]), packValues(bits, 'u', 2, le)), 'h.npy');
      expect(Array.from(a.data)).toEqual(expected);
      expect(Object.is(a.data[1], -0)).toBe(true);
    }
  });

  it('reads format versions 2.0 and 3.0 (4-byte header length; UTF-8 header)', () => {
    const payload = packValues([1, 2, 3, 4, 5, 6], 'f', 4, true);
    for (const version of [2, 3]) {
      const a = parseNpy(npyFile(npyHeader('<f4', [2, 3]), payload, { version }), 'v.npy');
      expect(a.shape).toEqual([2, 3]);
      expect(Array.from(a.data)).toEqual([1, 2, 3, 4, 5, 6]);
    }
  });

  it('accepts header variants NumPy and Python 2 wrote: no trailing comma, double quotes, key order, 1-D, 0-D, empty', () => {
    const one = packValues([2.5], 'f', 4, true);
    expect(parseNpy(npyFile(`{"shape": (1,), "fortran_order": False, "descr": "<f4"}`, one), 'a.npy').data[0]).toBe(2.5);
    expect(parseNpy(npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (1L,), }`, one), 'a.npy').shape).toEqual([1]);
    expect(parseNpy(npyFile(npyHeader('<f4', []), one), 'a.npy').shape).toEqual([]);
    const empty = parseNpy(npyFile(npyHeader('<f4', [0, 5]), new Uint8Array(0)), 'a.npy');
    expect(empty.shape).toEqual([0, 5]);
    expect(empty.data.length).toBe(0);
  });

  it('decodes an f4 payload at an odd byte offset (a subarray of a larger buffer)', () => {
    const file = npyFile(npyHeader('<f4', [3]), packValues([1, -2, 3.5], 'f', 4, true));
    const host = new Uint8Array(file.length + 1);
    host.set(file, 1);
    expect(Array.from(parseNpy(host.subarray(1), 'o.npy').data)).toEqual([1, -2, 3.5]);
  });

  it('decodes from a Node Buffer that views part of a larger pool (as fs.readFile may return)', () => {
    const file = npyFile(npyHeader('<f4', [2]), packValues([7, 8], 'f', 4, true));
    const pooled = Buffer.concat([Buffer.alloc(4, 0xaa), Buffer.from(file), Buffer.alloc(8, 0xbb)]);
    const view = pooled.subarray(4, 4 + file.length);
    expect(Array.from(parseNpy(view, 'b.npy').data)).toEqual([7, 8]);
  });
});

describe('encodeNpy', () => {
  it('writes a v1 <f4 file NumPy can read: 64-byte aligned header, exact values; parseNpy reads it back', () => {
    const data = Float32Array.from([0, 1.5, -2.25, NaN, Infinity, 3e-38]);
    const bytes = encodeNpy(data, [2, 3]);
    const text = new TextDecoder().decode(bytes.subarray(10, 10 + new DataView(bytes.buffer).getUint16(8, true)));
    expect(text).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
    expect((10 + text.length) % 64).toBe(0);
    const back = parseNpy(bytes, 'e.npy');
    expect(back.shape).toEqual([2, 3]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    expect(parseNpy(encodeNpy(Float32Array.from([4]), [1]), 'e.npy').shape).toEqual([1]);
  });

  it('refuses a shape that does not match the data', async () => {
    await expectTttError(() => encodeNpy(new Float32Array(5), [2, 3]), 'SIZE_MISMATCH', 'encodeNpy');
  });
});

describe('parseNpy: malformed files name the file and the problem', () => {
  const good = (shape = [2, 2], n = 4) => ({ h: npyHeader('<f4', shape), p: packValues(Array(n).fill(1), 'f', 4, true) });
  const withBytes = (mutate: (b: Uint8Array) => void) => {
    const b = npyFile(good().h, good().p);
    mutate(b);
    return b;
  };
  const table: { name: string; bytes: () => Uint8Array; code: string; re: RegExp; limit?: number }[] = [
    { name: 'bad magic', bytes: () => withBytes((b) => (b[5] = 0x5a)), code: 'INVALID_INPUT', re: /bad magic/ },
    { name: 'empty file', bytes: () => new Uint8Array(0), code: 'INVALID_INPUT', re: /bad magic/ },
    { name: 'preamble cut short', bytes: () => npyFile(good().h, good().p).subarray(0, 9), code: 'INVALID_INPUT', re: /truncated/ },
    { name: 'version 4.0', bytes: () => withBytes((b) => (b[6] = 4)), code: 'UNSUPPORTED_FORMAT', re: /version 4\.0/ },
    { name: 'version 1.1', bytes: () => withBytes((b) => (b[7] = 1)), code: 'UNSUPPORTED_FORMAT', re: /version 1\.1/ },
    { name: 'header length past the end', bytes: () => npyFile(good().h, new Uint8Array(0)).subarray(0, 40), code: 'INVALID_INPUT', re: /truncated: the header declares/ },
    { name: 'header not a dict', bytes: () => npyFile(`['<f4', False, (2, 2)]`, good().p), code: 'INVALID_INPUT', re: /not a dict/ },
    { name: 'header without newline', bytes: () => npyFile(`${good().h}   `, good().p, { rawHeader: true }), code: 'INVALID_INPUT', re: /newline/ },
    { name: 'unterminated dict', bytes: () => npyFile(`{'descr': '<f4', 'fortran_order': False`, good().p), code: 'INVALID_INPUT', re: /expected ',' or '}'/ },
    { name: 'missing shape', bytes: () => npyFile(`{'descr': '<f4', 'fortran_order': False}`, good().p), code: 'INVALID_INPUT', re: /missing key 'shape'/ },
    { name: 'missing descr and fortran_order', bytes: () => npyFile(`{'shape': (2, 2)}`, good().p), code: 'INVALID_INPUT', re: /missing keys 'descr', 'fortran_order'/ },
    { name: 'unexpected key', bytes: () => npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': True}`, good().p), code: 'INVALID_INPUT', re: /unexpected key 'x'/ },
    { name: 'duplicate key', bytes: () => npyFile(`{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,)}`, good().p), code: 'INVALID_INPUT', re: /duplicate key/ },
    { name: 'fortran order', bytes: () => npyFile(npyHeader('<f4', [2, 2], true), good().p), code: 'UNSUPPORTED_FORMAT', re: /Fortran/ },
    { name: 'fortran_order not a bool', bytes: () => npyFile(`{'descr': '<f4', 'fortran_order': 'no', 'shape': (4,)}`, good().p), code: 'INVALID_INPUT', re: /True or False/ },
    { name: 'shape not a tuple', bytes: () => npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (4)}`, good().p), code: 'INVALID_INPUT', re: /not a tuple/ },
    { name: 'negative dimension', bytes: () => npyFile(`{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 4)}`, good().p), code: 'INVALID_INPUT', re: /non-negative integer/ },
    { name: 'complex dtype', bytes: () => npyFile(npyHeader('<c8', [2]), good().p), code: 'UNSUPPORTED_FORMAT', re: /unsupported dtype '<c8'/ },
    { name: 'odd float size', bytes: () => npyFile(npyHeader('<f3', [2]), good().p), code: 'UNSUPPORTED_FORMAT', re: /'<f3'/ },
    { name: 'structured dtype', bytes: () => npyFile(`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,)}`, good().p), code: 'INVALID_INPUT', re: /unsupported value/ },
    { name: 'no byte order on a multi-byte type', bytes: () => npyFile(npyHeader('|f4', [4]), good().p), code: 'INVALID_INPUT', re: /byte order/ },
    {
      name: 'invalid UTF-8 in a v3 header',
      bytes: () => {
        const b = npyFile(good().h, good().p, { version: 3 });
        b[14] = 0xff; // inside 'descr'
        return b;
      },
      code: 'INVALID_INPUT',
      re: /not valid UTF-8/,
    },
    { name: 'truncated payload', bytes: () => npyFile(npyHeader('<f4', [4, 4]), packValues(Array(10).fill(0), 'f', 4, true)), code: 'INVALID_INPUT', re: /truncated: expected 64 bytes of data for shape \(4, 4\) <f4, got 40$/ },
    { name: 'payload longer than the shape (trailing garbage)', bytes: () => npyFile(npyHeader('<f4', [2, 3]), packValues(Array(7).fill(0), 'f', 4, true)), code: 'INVALID_INPUT', re: /4 unexpected bytes after the data/ },
    { name: 'huge declared shape', bytes: () => npyFile(npyHeader('<f4', [100000, 100000, 100000]), good().p), code: 'TOO_LARGE', re: /1000000000000000 elements, more than the limit of 134217728/ },
    { name: 'shape over a configured limit', bytes: () => npyFile(npyHeader('<f4', [10, 10]), packValues(Array(100).fill(0), 'f', 4, true)), code: 'TOO_LARGE', re: /limit of 99/, limit: 99 },
    // With no element limit, the payload check must still come before any allocation: a Float32Array of
    // 10^12 elements would throw a RangeError (not a TttError) if it were attempted.
    { name: 'huge shape with the limit lifted', bytes: () => npyFile(npyHeader('<f4', [1e12]), good().p), code: 'INVALID_INPUT', re: /truncated: expected 4000000000000 bytes/, limit: Infinity },
  ];
  for (const c of table) {
    it(c.name, async () => {
      const bytes = c.bytes();
      await expectTttError(() => parseNpy(bytes, 'dir/map.npy', c.limit === undefined ? {} : { maxElements: c.limit }), c.code, 'dir/map.npy', c.re);
    });
  }
});
