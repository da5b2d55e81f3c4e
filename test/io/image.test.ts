import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { ImageTensor, Region } from '../../src/core/types.ts';
import {
  decodeImage,
  decodeMask,
  encodeImagePng,
  encodeMaskPng,
  encodeOverlayPng,
  encodeScoreMapPng,
  fitSize,
} from '../../src/io/image.ts';
import { expectTttError, tiffFile } from '../helpers/files.ts';

const W = 7;
const H = 5;
const N = W * H;

/** Interleaved 8-bit pixels with distinct values per channel and position. */
function pixels8(channels: number): Uint8Array {
  const px = new Uint8Array(N * channels);
  for (let i = 0; i < N; i++) for (let c = 0; c < channels; c++) px[i * channels + c] = (i * 7 + c * 61) % 256;
  return px;
}

async function png(px: Uint8Array | Uint16Array, channels: number, colourspace: string, width = W, height = H): Promise<Uint8Array> {
  return new Uint8Array(await sharp(px, { raw: { width, height, channels: channels as 1 | 2 | 3 | 4 } }).toColourspace(colourspace).png().toBuffer());
}

/** The planar [0, 1] tensor decodeImage should give for interleaved pixels (first `keep` channels). */
function planar(px: ArrayLike<number>, channels: number, keep: number, max: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < keep; c++) for (let i = 0; i < N; i++) out.push(Math.fround(px[i * channels + c] / max));
  return out;
}

describe('decodeImage', () => {
  it('grey 8-bit PNG: 1 channel, exact values / 255', async () => {
    const px = pixels8(1);
    const img = await decodeImage(await png(px, 1, 'b-w'), 'g.png');
    expect([img.width, img.height, img.channels]).toEqual([W, H, 1]);
    expect(Array.from(img.data)).toEqual(planar(px, 1, 1, 255));
  });

  it('RGB 8-bit PNG: 3 planar channels', async () => {
    const px = pixels8(3);
    const img = await decodeImage(await png(px, 3, 'srgb'), 'c.png');
    expect(img.channels).toBe(3);
    expect(Array.from(img.data)).toEqual(planar(px, 3, 3, 255));
  });

  it('drops alpha: RGBA -> 3 channels, grey+alpha -> 1 channel', async () => {
    const rgba = pixels8(4);
    const a = await decodeImage(await png(rgba, 4, 'srgb'), 'a.png');
    expect(a.channels).toBe(3);
    expect(Array.from(a.data)).toEqual(planar(rgba, 4, 3, 255));
    const ga = pixels8(2);
    const b = await decodeImage(await png(ga, 2, 'b-w'), 'b.png');
    expect(b.channels).toBe(1);
    expect(Array.from(b.data)).toEqual(planar(ga, 2, 1, 255));
  });

  it('16-bit grey and RGB PNG: scaled by 1/65535 without losing the low byte', async () => {
    for (const [channels, space] of [
      [1, 'grey16'],
      [3, 'rgb16'],
    ] as const) {
      const px = new Uint16Array(N * channels);
      for (let i = 0; i < px.length; i++) px[i] = (i * 2027 + 1) % 65536;
      const img = await decodeImage(await png(px, channels, space), 'w.png');
      expect(img.channels).toBe(channels);
      const expected = planar(px, channels, channels, 65535);
      expect(Array.from(img.data)).toEqual(expected);
    }
  });

  it('TIFF: 8-bit RGB written by sharp (LZW; its default is lossy JPEG), 16-bit grey built by hand (both byte orders)', async () => {
    const px = pixels8(3);
    const rgb = new Uint8Array(await sharp(px, { raw: { width: W, height: H, channels: 3 } }).tiff({ compression: 'lzw' }).toBuffer());
    expect(Array.from((await decodeImage(rgb, 'c.tif')).data)).toEqual(planar(px, 3, 3, 255));
    const values = Array.from({ length: N }, (_, i) => i * 1800);
    for (const bigEndian of [false, true]) {
      const img = await decodeImage(tiffFile({ width: W, height: H, samples: 1, bits: 16, float: false, values, bigEndian }), 'g.tif');
      expect(img.channels).toBe(1);
      expect(Array.from(img.data)).toEqual(values.map((v) => Math.fround(v / 65535)));
    }
  });

  it('JPEG: grey stays 1 channel, colour 3, values close to the source', async () => {
    const flat = new Uint8Array(64 * 48).fill(100);
    const grey = new Uint8Array(await sharp(flat, { raw: { width: 64, height: 48, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 95 }).toBuffer());
    const g = await decodeImage(grey, 'g.jpg');
    expect([g.width, g.height, g.channels]).toEqual([64, 48, 1]);
    for (const v of g.data) expect(Math.abs(v - 100 / 255)).toBeLessThan(2 / 255);
    const colour = new Uint8Array(await sharp({ create: { width: 32, height: 16, channels: 3, background: { r: 200, g: 40, b: 90 } } }).jpeg({ quality: 95 }).toBuffer());
    const c = await decodeImage(colour, 'c.jpg');
    expect(c.channels).toBe(3);
    const n = 32 * 16;
    expect(Math.abs(c.data[0] - 200 / 255)).toBeLessThan(4 / 255);
    expect(Math.abs(c.data[n] - 40 / 255)).toBeLessThan(4 / 255);
    expect(Math.abs(c.data[2 * n] - 90 / 255)).toBeLessThan(4 / 255);
  });

  it('sniffs the content, not the name: a PNG named .npy decodes', async () => {
    const px = pixels8(1);
    expect((await decodeImage(await png(px, 1, 'b-w'), 'actually-a-png.npy')).width).toBe(W);
  });

  it('maxSide downscales (aspect kept, lanczos keeps a flat image flat); smaller images are not upscaled', async () => {
    const flat = new Uint8Array(200 * 100).fill(51);
    const bytes = new Uint8Array(await sharp(flat, { raw: { width: 200, height: 100, channels: 1 } }).toColourspace('b-w').png().toBuffer());
    const img = await decodeImage(bytes, 'big.png', { maxSide: 50 });
    expect([img.width, img.height]).toEqual([50, 25]);
    for (const v of img.data) expect(v).toBeCloseTo(0.2, 6);
    const same = await decodeImage(bytes, 'big.png', { maxSide: 500 });
    expect([same.width, same.height]).toEqual([200, 100]);
    expect(fitSize(640, 480, 256)).toEqual({ width: 256, height: 192 });
    expect(fitSize(3, 1000, 100)).toEqual({ width: 1, height: 100 });
  });

  it('a downscaled edge keeps its position (no shift or flip)', async () => {
    const px = new Uint8Array(100 * 40);
    for (let y = 0; y < 40; y++) for (let x = 50; x < 100; x++) px[y * 100 + x] = 255;
    const bytes = new Uint8Array(await sharp(px, { raw: { width: 100, height: 40, channels: 1 } }).toColourspace('b-w').png().toBuffer());
    const img = await decodeImage(bytes, 'edge.png', { maxSide: 50 });
    expect([img.width, img.height]).toEqual([50, 20]);
    const row = Array.from(img.data.subarray(10 * 50, 11 * 50));
    expect(Math.max(...row.slice(0, 23))).toBeLessThan(0.05);
    expect(Math.min(...row.slice(27))).toBeGreaterThan(0.95);
  });
});

describe('decodeImage: malformed and oversized inputs', () => {
  const random = () => {
    const b = new Uint8Array(2048);
    let s = 12345;
    for (let i = 0; i < b.length; i++) b[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    return b;
  };
  it('random bytes named .png/.tif/.jpg -> UNSUPPORTED_FORMAT naming the file', async () => {
    for (const name of ['noise.png', 'noise.tif', 'noise.jpg']) await expectTttError(() => decodeImage(random(), name), 'UNSUPPORTED_FORMAT', name, /unrecognised content/);
  });

  it('formats we do not decode are named: GIF, WebP', async () => {
    const gif = new Uint8Array(await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } }).gif().toBuffer());
    await expectTttError(() => decodeImage(gif, 'x.png'), 'UNSUPPORTED_FORMAT', 'x.png', /GIF/);
    const webp = new Uint8Array(await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } }).webp().toBuffer());
    await expectTttError(() => decodeImage(webp, 'x.png'), 'UNSUPPORTED_FORMAT', 'x.png', /WebP/);
  });

  it('an empty file -> INVALID_INPUT', async () => {
    await expectTttError(() => decodeImage(new Uint8Array(0), 'empty.png'), 'INVALID_INPUT', 'empty.png', /empty/);
  });

  it('truncated PNG (pixel data cut, and header cut) -> INVALID_INPUT', async () => {
    const px = new Uint8Array(64 * 64 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 31) % 256;
    const bytes = new Uint8Array(await sharp(px, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer());
    await expectTttError(() => decodeImage(bytes.subarray(0, bytes.length - 200), 'cut.png'), 'INVALID_INPUT', 'cut.png', /corrupt or truncated PNG image/);
    await expectTttError(() => decodeImage(bytes.subarray(0, 30), 'cut.png'), 'INVALID_INPUT', 'cut.png', /corrupt or truncated PNG image/);
  });

  it('truncated JPEG and TIFF -> INVALID_INPUT', async () => {
    const px = new Uint8Array(64 * 64 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 31) % 256;
    const jpg = new Uint8Array(await sharp(px, { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer());
    await expectTttError(() => decodeImage(jpg.subarray(0, jpg.length / 2), 'cut.jpg'), 'INVALID_INPUT', 'cut.jpg', /corrupt or truncated JPEG/);
    const tif = tiffFile({ width: 64, height: 64, samples: 1, bits: 8, float: false, values: Array(64 * 64).fill(9) });
    await expectTttError(() => decodeImage(tif.subarray(0, tif.length - 1000), 'cut.tif'), 'INVALID_INPUT', 'cut.tif', /corrupt or truncated TIFF/);
  });

  it('zero-size PNG -> INVALID_INPUT', async () => {
    const bytes = await png(pixels8(1), 1, 'b-w');
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(16, 0); // IHDR width
    await expectTttError(() => decodeImage(bytes, 'zero.png'), 'INVALID_INPUT', 'zero.png', /zero size \(0x5\)/);
  });

  it('more pixels than maxPixels -> TOO_LARGE from the header alone (9000x8000 PNG, default 64 Mi pixels)', async () => {
    const bytes = new Uint8Array(
      await sharp(new Uint8Array(9000 * 8000), { raw: { width: 9000, height: 8000, channels: 1 } }).toColourspace('b-w').png({ compressionLevel: 9 }).toBuffer(),
    );
    expect(bytes.length).toBeLessThan(100_000);
    await expectTttError(() => decodeImage(bytes, 'huge.png'), 'TOO_LARGE', 'huge.png', /9000x8000 = 72000000 pixels, more than the limit of 67108864/);
    const small = await png(pixels8(1), 1, 'b-w');
    await expectTttError(() => decodeImage(small, 'small.png', { maxPixels: 34 }), 'TOO_LARGE', 'small.png', /limit of 34/);
  });

  it('float TIFF as an image -> UNSUPPORTED_FORMAT', async () => {
    const tif = tiffFile({ width: 2, height: 2, samples: 1, bits: 32, float: true, values: [0, 0.5, 1, 0.25] });
    await expectTttError(() => decodeImage(tif, 'f.tif'), 'UNSUPPORTED_FORMAT', 'f.tif', /float/);
  });
});

describe('decodeMask', () => {
  it('defective where > 127; 16-bit masks at half range; colour converted to grey', async () => {
    const px = new Uint8Array(N);
    for (let i = 0; i < N; i++) px[i] = [0, 127, 128, 255][i % 4];
    const m = await decodeMask(await png(px, 1, 'b-w'), 'gt.png', { width: W, height: H });
    expect(Array.from(m)).toEqual(Array.from(px, (v) => (v > 127 ? 1 : 0)));
    const px16 = Uint16Array.from({ length: N }, (_, i) => [0, 32767, 32768, 65535][i % 4]);
    const m16 = await decodeMask(await png(px16, 1, 'grey16'), 'gt16.png', { width: W, height: H });
    expect(Array.from(m16)).toEqual(Array.from(px16, (v) => (v > 32767 ? 1 : 0)));
    const rgb = new Uint8Array(N * 3);
    for (let i = 0; i < N; i++) rgb.fill(i % 2 ? 255 : 0, i * 3, i * 3 + 3);
    const mc = await decodeMask(await png(rgb, 3, 'srgb'), 'gtc.png', { width: W, height: H });
    expect(Array.from(mc)).toEqual(Array.from({ length: N }, (_, i) => i % 2));
  });

  it('a mask of another size -> SIZE_MISMATCH naming both sizes', async () => {
    await expectTttError(() => decodeMask(new Uint8Array(0), 'e.png', { width: W, height: H }), 'INVALID_INPUT', 'e.png');
    const bytes = await png(pixels8(1), 1, 'b-w');
    await expectTttError(() => decodeMask(bytes, 'gt.png', { width: 8, height: 5 }), 'SIZE_MISMATCH', 'gt.png', /7x5 but the image is 8x5/);
  });
});

describe('encoders', () => {
  it('encodeMaskPng: a 1-channel 8-bit PNG, 255 where defective; decodeMask reads it back', async () => {
    const mask = Uint8Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const bytes = await encodeMaskPng(mask, W, H);
    const meta = await sharp(bytes).metadata();
    expect([meta.format, meta.channels, meta.depth, meta.width, meta.height]).toEqual(['png', 1, 'uchar', W, H]);
    const raw = await sharp(bytes).toColourspace('b-w').raw().toBuffer();
    expect(Array.from(raw)).toEqual(Array.from(mask, (v) => v * 255));
    expect(Array.from(await decodeMask(bytes, 'm.png', { width: W, height: H }))).toEqual(Array.from(mask));
    await expectTttError(() => encodeMaskPng(mask, W + 1, H), 'SIZE_MISMATCH', 'mask');
  });

  it('encodeImagePng round-trips through decodeImage at 8-bit precision', async () => {
    const data = Float32Array.from({ length: 3 * N }, (_, i) => (i % 17) / 16);
    const image: ImageTensor = { data, width: W, height: H, channels: 3 };
    const back = await decodeImage(await encodeImagePng(image), 'i.png');
    expect(back.channels).toBe(3);
    for (let i = 0; i < data.length; i++) expect(Math.abs(back.data[i] - data[i])).toBeLessThanOrEqual(0.5 / 255 + 1e-7);
  });

  it('encodeScoreMapPng: colour map ends at min and max, range clamps, NaN in cyan', async () => {
    const data = Float32Array.from({ length: N }, (_, i) => i);
    data[5] = NaN;
    const decode = async (bytes: Uint8Array) => {
      const { data: px, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
      expect(info.channels).toBe(3);
      return (i: number) => Array.from(px.subarray(i * 3, i * 3 + 3));
    };
    const at = await decode(await encodeScoreMapPng({ data, width: W, height: H }));
    expect(at(0)).toEqual([0, 0, 4]);
    expect(at(N - 1)).toEqual([252, 255, 164]);
    expect(at(5)).toEqual([0, 255, 255]);
    // Brightness grows with the score.
    const lum = (p: number[]) => p[0] + p[1] + p[2];
    expect(lum(at(10))).toBeGreaterThan(lum(at(2)));
    expect(lum(at(30))).toBeGreaterThan(lum(at(10)));
    const clamped = await decode(await encodeScoreMapPng({ data, width: W, height: H }, { min: 10, max: 20 }));
    expect(clamped(3)).toEqual([0, 0, 4]);
    expect(clamped(25)).toEqual([252, 255, 164]);
    await expectTttError(() => encodeScoreMapPng({ data, width: W, height: H }, { min: 2, max: 1 }), 'INVALID_OPTION', 'heat map range');
  });

  it('encodeOverlayPng: mask blended 50% to red, region boxes as 1-px yellow rectangles, the rest untouched', async () => {
    const w = 12;
    const h = 10;
    const grey = Float32Array.from({ length: w * h }, () => 0.4); // 102
    const mask = new Uint8Array(w * h);
    for (let y = 3; y <= 5; y++) for (let x = 4; x <= 7; x++) mask[y * w + x] = 1;
    const region: Region = { id: 1, area: 12, bbox: { x: 3, y: 2, width: 6, height: 5 }, centroid: { x: 5.5, y: 4 }, meanScore: 1, maxScore: 1 };
    const bytes = await encodeOverlayPng({ data: grey, width: w, height: h, channels: 1 }, mask, [region]);
    const { data: px, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([w, h, 3]);
    const at = (x: number, y: number) => Array.from(px.subarray((y * w + x) * 3, (y * w + x) * 3 + 3));
    expect(at(0, 0)).toEqual([102, 102, 102]);
    expect(at(5, 4)).toEqual([179, 51, 51]); // inside the mask, inside the box
    for (const [x, y] of [
      [3, 2],
      [8, 2],
      [3, 6],
      [8, 6],
      [5, 2],
      [3, 4],
      [8, 4],
      [5, 6],
    ])
      expect(at(x, y), `${x},${y}`).toEqual([255, 255, 0]);
    expect(at(2, 2)).toEqual([102, 102, 102]);
    expect(at(9, 6)).toEqual([102, 102, 102]);
    expect(at(3, 7)).toEqual([102, 102, 102]);
  });
});
