// Point clouds from .npy and float TIFF: every layout the reader claims, the encoder's output, and the
// typed errors of bad files.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePointCloud, readPointCloud } from '../../src/io/pointcloud.ts';
import { decodeFloatTiff, encodeFloatTiff } from '../../src/io/tiff.ts';
import { expectTttError, npyFile, npyHeader, packValues, tiffFile } from '../helpers/files.ts';

const W = 5;
const H = 4;
/** x = column, y = row, z = 1 + index / 100; a NaN hole at (1, 2) and a zero hole at (3, 0). */
function cloudValues(): number[] {
  const v: number[] = [];
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) v.push(x, y, 1 + (y * W + x) / 100);
  v.splice(3 * (2 * W + 1), 3, NaN, NaN, NaN);
  v.splice(3 * 3, 3, 0, 0, 0);
  return v;
}
const f32 = (xs: readonly number[]) => Array.from(Float32Array.from(xs));

/**
 * A little-endian TIFF with float32 samples laid out in strips or tiles, chunky or planar, optionally
 * Deflate-compressed: written from the TIFF 6.0 specification by hand.
 */
function layoutTiff(opts: { samples: number; planar: boolean; tile?: number; rowsPerStrip?: number; deflate?: boolean; values: readonly number[] }): Uint8Array {
  const { samples, planar } = opts;
  const bw = opts.tile ?? W;
  const bh = opts.tile ?? opts.rowsPerStrip ?? H;
  const across = Math.ceil(W / bw);
  const down = Math.ceil(H / bh);
  const blocks: Uint8Array[] = [];
  for (let plane = 0; plane < (planar ? samples : 1); plane++) {
    for (let b = 0; b < across * down; b++) {
      const bx = (b % across) * bw;
      const by = Math.floor(b / across) * bh;
      const rows = opts.tile ? bh : Math.min(bh, H - by);
      const per = planar ? 1 : samples;
      const vals: number[] = [];
      for (let y = 0; y < rows; y++) {
        for (let x = 0; x < bw; x++) {
          for (let s = 0; s < per; s++) {
            const inside = bx + x < W && by + y < H;
            vals.push(inside ? opts.values[((by + y) * W + bx + x) * samples + (planar ? plane : s)] : -999);
          }
        }
      }
      const raw = packValues(vals, 'f', 4, true);
      blocks.push(opts.deflate ? new Uint8Array(deflateSync(raw)) : raw);
    }
  }
  const tiled = opts.tile !== undefined;
  type Entry = [number, number, number[]];
  const listed: Entry[] = [
    [256, 4, [W]],
    [257, 4, [H]],
    [258, 3, Array(samples).fill(32)],
    [259, 3, [opts.deflate ? 8 : 1]],
    [262, 3, [1]],
    [277, 3, [samples]],
    [284, 3, [planar ? 2 : 1]],
    [339, 3, Array(samples).fill(3)],
    ...(tiled
      ? ([[322, 4, [bw]], [323, 4, [bh]], [324, 4, blocks.map(() => 0)], [325, 4, blocks.map((b) => b.length)]] as [number, number, number[]][])
      : ([[273, 4, blocks.map(() => 0)], [278, 4, [bh]], [279, 4, blocks.map((b) => b.length)]] as [number, number, number[]][])),
  ];
  const entries = listed.sort((a, b) => a[0] - b[0]);
  const ifdSize = 2 + entries.length * 12 + 4;
  let extra = 8 + ifdSize;
  const extraAt = entries.map(([, type, vals]) => {
    const size = vals.length * (type === 3 ? 2 : 4);
    if (size <= 4) return -1;
    const at = extra;
    extra += size;
    return at;
  });
  let dataAt = extra;
  const offsets = blocks.map((b) => {
    const at = dataAt;
    dataAt += b.length;
    return at;
  });
  for (const e of entries) if (e[0] === 273 || e[0] === 324) e[2] = offsets;
  const out = new Uint8Array(dataAt);
  const v = new DataView(out.buffer);
  out.set([0x49, 0x49, 42, 0]);
  v.setUint32(4, 8, true);
  v.setUint16(8, entries.length, true);
  entries.forEach(([tag, type, vals], k) => {
    const e = 10 + k * 12;
    v.setUint16(e, tag, true);
    v.setUint16(e + 2, type, true);
    v.setUint32(e + 4, vals.length, true);
    const at = extraAt[k] >= 0 ? extraAt[k] : e + 8;
    if (extraAt[k] >= 0) v.setUint32(e + 8, extraAt[k], true);
    vals.forEach((x, i) => (type === 3 ? v.setUint16(at + 2 * i, x, true) : v.setUint32(at + 4 * i, x, true)));
  });
  blocks.forEach((b, i) => out.set(b, offsets[i]));
  return out;
}

describe('decodePointCloud: TIFF', () => {
  const values = cloudValues();
  const expected = f32(values);

  it('the encoder round-trips, NaN included; sharp would misread the same file', async () => {
    const bytes = encodeFloatTiff(Float32Array.from(values), W, H, 3);
    const pc = decodePointCloud(bytes, 'xyz.tiff');
    expect([pc.width, pc.height]).toEqual([W, H]);
    expect(Array.from(pc.data)).toEqual(expected);
    // libvips treats a 3-sample float TIFF as scRGB and converts it: why this reader exists.
    const { data } = await sharp(bytes).raw({ depth: 'float' }).toBuffer({ resolveWithObject: true });
    expect(Array.from(new Float32Array(data.buffer, data.byteOffset, 15))).not.toEqual(expected.slice(0, 15));
  });

  it('big-endian and float64 (one strip, chunky)', () => {
    const be = tiffFile({ width: W, height: H, samples: 3, bits: 32, float: true, values, bigEndian: true });
    expect(Array.from(decodePointCloud(be, 'be.tif').data)).toEqual(expected);
    const f64 = tiffFile({ width: W, height: H, samples: 3, bits: 64, float: true, values });
    expect(Array.from(decodePointCloud(f64, 'f64.tif').data)).toEqual(expected);
  });

  for (const layout of [
    { name: 'strips of 3 rows, chunky', planar: false, rowsPerStrip: 3 },
    { name: 'strips of 1 row, planar', planar: true, rowsPerStrip: 1 },
    { name: '16 x 16 tiles, chunky', planar: false, tile: 16 },
    { name: '16 x 16 tiles, planar, Deflate', planar: true, tile: 16, deflate: true },
    { name: 'strips of 2 rows, chunky, Deflate', planar: false, rowsPerStrip: 2, deflate: true },
  ]) {
    it(layout.name, () => {
      const bytes = layoutTiff({ samples: 3, values, ...layout });
      expect(Array.from(decodePointCloud(bytes, 'l.tif').data)).toEqual(expected);
    });
  }

  it('refuses integer, 1-sample and truncated TIFFs, and BigTIFF, with typed errors naming the file', async () => {
    const ints = tiffFile({ width: W, height: H, samples: 3, bits: 8, float: false, values: values.map(() => 7) });
    await expectTttError(() => decodePointCloud(ints, 'u8.tif'), 'UNSUPPORTED_FORMAT', 'u8.tif', /unsigned integer samples of 8 bits; a point cloud needs 32- or 64-bit floats/);
    const grey = tiffFile({ width: W, height: H, samples: 1, bits: 32, float: true, values: Array(W * H).fill(1) });
    await expectTttError(() => decodePointCloud(grey, 'z.tif'), 'INVALID_INPUT', 'z.tif', /1 sample per pixel; x, y, z need 3/);
    const full = encodeFloatTiff(Float32Array.from(values), W, H, 3);
    await expectTttError(() => decodePointCloud(full.subarray(0, full.length - 8), 'cut.tif'), 'INVALID_INPUT', 'cut.tif', /runs past the end of the file/);
    const big = new Uint8Array([0x49, 0x49, 43, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    await expectTttError(() => decodePointCloud(big, 'big.tif'), 'UNSUPPORTED_FORMAT', 'big.tif', /BigTIFF/);
    expect(() => decodeFloatTiff(full, 10)).toThrow(/more than the limit of 10/);
  });
});

describe('decodePointCloud: .npy', () => {
  const values = cloudValues();
  it('(H, W, 3) float32 and float64, either byte order, and (1, H, W, 3)', () => {
    for (const [descr, size, le] of [['<f4', 4, true], ['>f4', 4, false], ['<f8', 8, true]] as const) {
      const pc = decodePointCloud(npyFile(npyHeader(descr, [H, W, 3]), packValues(values, 'f', size, le)), 'p.npy');
      expect([pc.width, pc.height]).toEqual([W, H]);
      expect(Array.from(pc.data)).toEqual(f32(values));
    }
    const batched = decodePointCloud(npyFile(npyHeader('<f4', [1, H, W, 3]), packValues(values, 'f', 4, true)), 'b.npy');
    expect(batched.width).toBe(W);
  });

  it('refuses other shapes, integer dtypes and image files', async () => {
    await expectTttError(() => decodePointCloud(npyFile(npyHeader('<f4', [H, W]), packValues(Array(W * H).fill(1), 'f', 4, true)), 'hw.npy'), 'INVALID_INPUT', 'hw.npy', /shape \(H, W, 3\), got shape \(4, 5\)/);
    await expectTttError(() => decodePointCloud(npyFile(npyHeader('<f4', [3, H, W]), packValues(values, 'f', 4, true)), 'chw.npy'), 'INVALID_INPUT', 'chw.npy', /got shape \(3, 4, 5\)/);
    await expectTttError(() => decodePointCloud(npyFile(npyHeader('<i2', [H, W, 3]), packValues(values.map(() => 1), 'i', 2, true)), 'i.npy'), 'UNSUPPORTED_FORMAT', 'i.npy', /float32 or float64 values, got dtype <i2/);
    const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).png().toBuffer();
    await expectTttError(() => decodePointCloud(png, 'rgb.png'), 'UNSUPPORTED_FORMAT', 'rgb.png', /must be .npy or TIFF, but the file is PNG/);
  });
});

describe('readPointCloud', () => {
  it('reads a file, and names it once in errors (missing or corrupt)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ttt-pc-'));
    try {
      const bad = join(dir, 'bad.tiff');
      await writeFile(bad, Buffer.from('II*\0garbage'));
      for (const path of [bad, join(dir, 'missing.tiff')]) {
        const e = await readPointCloud(path).then(() => null, (err: Error) => err);
        expect(e?.message.startsWith(`${path}: `)).toBe(true);
        expect(e!.message.split(path).length - 1).toBe(1);
      }
      const good = join(dir, 'good.tiff');
      await writeFile(good, encodeFloatTiff(Float32Array.from({ length: 2 * 2 * 3 }, (_, i) => i + 1), 2, 2, 3));
      expect(await readPointCloud(good)).toMatchObject({ width: 2, height: 2 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
