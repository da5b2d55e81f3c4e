import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeFeatures, decodeScoreMap } from '../../src/io/scoremap.ts';
import { encodeNpy } from '../../src/io/npy.ts';
import { expectTttError, npyFile, npyHeader, packValues, tiffFile } from '../helpers/files.ts';

const W = 6;
const H = 4;
const N = W * H;
const values = Array.from({ length: N }, (_, i) => Math.fround(i * 0.37 - 3));

/**
 * A 1-channel float32 TIFF written by sharp. sharp tags 1-channel float raw input as grey16 and casts it
 * to 16 bits on output; joining a second channel re-tags the image with the output colourspace (b-w)
 * without converting, and extracting the first channel back gives a float b-w image that tiffsave keeps.
 */
async function sharpFloatTiff(data: Float32Array, width: number, height: number): Promise<Uint8Array> {
  const raw = { raw: { width, height, channels: 1 as const } };
  // joinChannel's typings list Buffers only; at run time it takes typed arrays like the constructor.
  const bytes = await sharp(data, raw).joinChannel(data as unknown as Buffer, raw).toColourspace('b-w').extractChannel(0).tiff({ compression: 'deflate', predictor: 'float' }).toBuffer();
  const meta = await sharp(bytes).metadata();
  expect([meta.channels, meta.depth, meta.bitsPerSample]).toEqual([1, 'float', 32]);
  return new Uint8Array(bytes);
}

describe('decodeScoreMap', () => {
  it('.npy 2-D and with singleton axes: (h, w), (1, h, w), (h, w, 1), (1, 1, h, w)', async () => {
    for (const shape of [[H, W], [1, H, W], [H, W, 1], [1, 1, H, W]]) {
      const m = await decodeScoreMap(encodeNpy(Float32Array.from(values), shape), 'm.npy');
      expect([m.width, m.height]).toEqual([W, H]);
      expect(Array.from(m.data)).toEqual(values);
    }
  });

  it('.npy of other dtypes (float16 big-endian, float64, uint8) becomes float32', async () => {
    const half = await decodeScoreMap(npyFile(npyHeader('>f2', [2, 2]), packValues([0x3c00, 0x4000, 0xbc00, 0x3800], 'u', 2, false)), 'h.npy');
    expect(Array.from(half.data)).toEqual([1, 2, -1, 0.5]);
    const f8 = await decodeScoreMap(npyFile(npyHeader('<f8', [1, 3]), packValues([0.25, 1e10, -3], 'f', 8, true)), 'd.npy');
    expect(Array.from(f8.data)).toEqual([0.25, 1e10, -3]);
    const u1 = await decodeScoreMap(npyFile(npyHeader('|u1', [3, 1]), packValues([0, 7, 255], 'u', 1, true)), 'u.npy');
    expect([u1.width, u1.height, ...u1.data]).toEqual([1, 3, 0, 7, 255]);
  });

  it('NaN and Inf pass through unchanged (validation is the core\'s job)', async () => {
    const data = Float32Array.from(values);
    data[3] = NaN;
    data[7] = Infinity;
    data[8] = -Infinity;
    const fromNpy = await decodeScoreMap(encodeNpy(data, [H, W]), 'nan.npy');
    const fromTiff = await decodeScoreMap(await sharpFloatTiff(data, W, H), 'nan.tif');
    for (const m of [fromNpy, fromTiff]) expect(Array.from(m.data)).toEqual(Array.from(data));
  });

  it('float32 TIFF written by sharp, exact values', async () => {
    const m = await decodeScoreMap(await sharpFloatTiff(Float32Array.from(values), W, H), 'm.tif');
    expect([m.width, m.height]).toEqual([W, H]);
    expect(Array.from(m.data)).toEqual(values);
  });

  it('float32 TIFF as tifffile writes it, both byte orders; 8- and 16-bit grey TIFF keep integer codes', async () => {
    for (const bigEndian of [false, true]) {
      const f32 = await decodeScoreMap(tiffFile({ width: W, height: H, samples: 1, bits: 32, float: true, values, bigEndian }), 'f.tif');
      expect(Array.from(f32.data)).toEqual(values);
      const codes16 = Array.from({ length: N }, (_, i) => i * 2700);
      const u16 = await decodeScoreMap(tiffFile({ width: W, height: H, samples: 1, bits: 16, float: false, values: codes16, bigEndian }), 'w.tif');
      expect(Array.from(u16.data)).toEqual(codes16);
    }
    const codes8 = Array.from({ length: N }, (_, i) => i * 10);
    const u8 = await decodeScoreMap(tiffFile({ width: W, height: H, samples: 1, bits: 8, float: false, values: codes8 }), 'b.tif');
    expect(Array.from(u8.data)).toEqual(codes8);
  });

  it('float64 TIFF (libvips reads at most 32 bits per sample) -> UNSUPPORTED_FORMAT saying so, either byte order', async () => {
    for (const bigEndian of [false, true]) {
      const f64 = tiffFile({ width: W, height: H, samples: 1, bits: 64, float: true, values, bigEndian });
      await expectTttError(() => decodeScoreMap(f64, 'd.tif'), 'UNSUPPORTED_FORMAT', 'd.tif', /64-bit samples; up to 32 bits/);
    }
  });

  it('8- and 16-bit grey PNG: values are the integer codes (0..255, 0..65535), not rescaled', async () => {
    const codes8 = Uint8Array.from({ length: N }, (_, i) => (i * 11) % 256);
    const png8 = await sharp(codes8, { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    expect(Array.from((await decodeScoreMap(new Uint8Array(png8), 'm8.png')).data)).toEqual(Array.from(codes8));
    const codes16 = Uint16Array.from({ length: N }, (_, i) => (i * 2801 + 3) % 65536);
    const png16 = await sharp(codes16, { raw: { width: W, height: H, channels: 1 } }).toColourspace('grey16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const m16 = await decodeScoreMap(new Uint8Array(png16), 'm16.png');
    expect([m16.width, m16.height]).toEqual([W, H]);
    expect(Array.from(m16.data)).toEqual(Array.from(codes16));
  });

  it('content decides, not the name: a PNG named .npy and an .npy named .png both decode', async () => {
    const png8 = await sharp(new Uint8Array(N).fill(9), { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    expect((await decodeScoreMap(new Uint8Array(png8), 'map.npy')).data[0]).toBe(9);
    expect((await decodeScoreMap(encodeNpy(Float32Array.from(values), [H, W]), 'map.png')).data[1]).toBe(values[1]);
  });

  it('refuses multi-channel maps, JPEG, random bytes, bad shapes, zero size, oversize, truncation', async () => {
    const rgb = await sharp(new Uint8Array(N * 3), { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
    await expectTttError(() => decodeScoreMap(new Uint8Array(rgb), 'rgb.png'), 'INVALID_INPUT', 'rgb.png', /3 channels; a score map must have exactly one/);
    const ga = await sharp(new Uint8Array(N * 2), { raw: { width: W, height: H, channels: 2 } }).toColourspace('b-w').png().toBuffer();
    await expectTttError(() => decodeScoreMap(new Uint8Array(ga), 'ga.png'), 'INVALID_INPUT', 'ga.png', /2 channels \(with alpha\)/);
    const tif3 = tiffFile({ width: W, height: H, samples: 3, bits: 32, float: true, values: Array(3 * N).fill(0.5) });
    await expectTttError(() => decodeScoreMap(tif3, 'rgb.tif'), 'INVALID_INPUT', 'rgb.tif', /3 channels/);
    const jpg = await sharp(new Uint8Array(64).fill(3), { raw: { width: 8, height: 8, channels: 1 } }).jpeg().toBuffer();
    await expectTttError(() => decodeScoreMap(new Uint8Array(jpg), 'm.jpg'), 'UNSUPPORTED_FORMAT', 'm.jpg', /must be \.npy, TIFF or PNG, but the file is JPEG/);
    const noise = Uint8Array.from({ length: 500 }, (_, i) => (i * 7919 + 13) % 251);
    await expectTttError(() => decodeScoreMap(noise, 'noise.png'), 'UNSUPPORTED_FORMAT', 'noise.png', /unrecognised content/);
    await expectTttError(() => decodeScoreMap(new Uint8Array(0), 'empty.npy'), 'INVALID_INPUT', 'empty.npy', /empty/);
    await expectTttError(() => decodeScoreMap(encodeNpy(new Float32Array(3 * N), [3, H, W]), 'c.npy'), 'INVALID_INPUT', 'c.npy', /shape \(3, 4, 6\)/);
    await expectTttError(() => decodeScoreMap(encodeNpy(new Float32Array(N), [N]), 'v.npy'), 'INVALID_INPUT', 'v.npy', /shape \(24,\)/);
    await expectTttError(() => decodeScoreMap(encodeNpy(new Float32Array(0), [0, W]), 'z.npy'), 'INVALID_INPUT', 'z.npy', /zero or invalid size 6x0/);
    await expectTttError(() => decodeScoreMap(encodeNpy(new Float32Array(N), [H, W]), 'big.npy', { maxPixels: N - 1 }), 'TOO_LARGE', 'big.npy', /limit of 23/);
    const png8 = await sharp(new Uint8Array(N), { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    await expectTttError(() => decodeScoreMap(new Uint8Array(png8), 'big.png', { maxPixels: N - 1 }), 'TOO_LARGE', 'big.png', /6x4 = 24 pixels/);
    const npy = encodeNpy(Float32Array.from(values), [H, W]);
    await expectTttError(() => decodeScoreMap(npy.subarray(0, npy.length - 5), 'cut.npy'), 'INVALID_INPUT', 'cut.npy', /truncated: expected 96 bytes of data for shape \(4, 6\) <f4, got 91/);
    const tif = await sharpFloatTiff(Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i)), 64, 64);
    await expectTttError(() => decodeScoreMap(tif.subarray(0, tif.length - 2000), 'cut.tif'), 'INVALID_INPUT', 'cut.tif', /corrupt or truncated TIFF score map/);
  });
});

describe('decodeFeatures', () => {
  it('reads C x h x w and 1 x C x h x w', async () => {
    const data = Float32Array.from({ length: 3 * N }, (_, i) => i / 7);
    for (const shape of [[3, H, W], [1, 3, H, W]]) {
      const f = await decodeFeatures(encodeNpy(data, shape), 'f.npy');
      expect([f.channels, f.height, f.width]).toEqual([3, H, W]);
      expect(Array.from(f.data)).toEqual(Array.from(data));
    }
  });

  it('refuses other shapes, zero channels, non-.npy content, and element counts over the limit', async () => {
    await expectTttError(() => decodeFeatures(encodeNpy(new Float32Array(N), [H, W]), 'f.npy'), 'INVALID_INPUT', 'f.npy', /\(C, h, w\)/);
    await expectTttError(() => decodeFeatures(encodeNpy(new Float32Array(0), [0, H, W]), 'f.npy'), 'INVALID_INPUT', 'f.npy', /0 channels/);
    await expectTttError(() => decodeFeatures(encodeNpy(new Float32Array(0), [2, 0, W]), 'f.npy'), 'INVALID_INPUT', 'f.npy', /zero or invalid size/);
    const png8 = await sharp(new Uint8Array(N), { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    await expectTttError(() => decodeFeatures(new Uint8Array(png8), 'f.png'), 'UNSUPPORTED_FORMAT', 'f.png', /must be \.npy, but the file is PNG/);
    await expectTttError(() => decodeFeatures(encodeNpy(new Float32Array(2 * N), [2, H, W]), 'f.npy', 2 * N - 1), 'TOO_LARGE', 'f.npy');
  });
});
