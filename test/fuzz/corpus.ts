// Writes the committed fuzz corpus (test/fuzz/corpus/): small valid images, score maps and feature maps,
// and hostile variants of them (truncated, lying or huge declared sizes, bad chunks and CRCs, bad TIFF IFD
// offsets, malformed .npy headers, random bytes), with the outcome each must have in manifest.json.
// Deterministic: `npx tsx test/fuzz/corpus.ts` rewrites the same bytes.

import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

export const CORPUS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'corpus');

/** What the decoders must answer: decoded, refused as too large, or any typed error. */
export type Expect = 'ok' | 'TOO_LARGE' | 'error';

/** Per file: the outcome of the image decoder and of the score-map decoder ('any': either is fine). */
export type Manifest = Record<string, { image: Expect | 'any'; scoreMap: Expect | 'any' }>;

export const W = 16;
export const H = 12;

/** A small deterministic generator (xorshift32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

// ---- PNG chunks ----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface Chunk {
  type: string;
  data: Uint8Array;
}

function pngChunks(png: Uint8Array): Chunk[] {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: Chunk[] = [];
  for (let at = 8; at + 12 <= png.length; ) {
    const len = v.getUint32(at);
    out.push({ type: String.fromCharCode(...png.subarray(at + 4, at + 8)), data: png.slice(at + 8, at + 8 + len) });
    at += 12 + len;
  }
  return out;
}

/** Rebuilds a PNG; `crc` overrides a chunk's CRC, `length` its declared length. */
function pngFrom(chunks: (Chunk & { crc?: number; length?: number })[]): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])];
  for (const c of chunks) {
    const head = new Uint8Array(8);
    new DataView(head.buffer).setUint32(0, c.length ?? c.data.length);
    head.set([...c.type].map((ch) => ch.charCodeAt(0)), 4);
    const crc = new Uint8Array(4);
    new DataView(crc.buffer).setUint32(0, c.crc ?? crc32(new Uint8Array([...head.subarray(4), ...c.data])));
    parts.push(head, c.data, crc);
  }
  return concat(parts);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

/** The PNG with IHDR declaring another size (CRC recomputed, so only the size lies). */
function withPngSize(png: Uint8Array, width: number, height: number): Uint8Array {
  return pngFrom(
    pngChunks(png).map((c) => {
      if (c.type !== 'IHDR') return c;
      const data = c.data.slice();
      new DataView(data.buffer).setUint32(0, width);
      new DataView(data.buffer).setUint32(4, height);
      return { ...c, data };
    }),
  );
}

// ---- TIFF (one strip, one channel, inline entries) ----

const SHORT = 3;
const LONG = 4;

function tiff(opts: { width: number; height: number; bits: 8 | 16 | 32 | 64; float: boolean; pixels: Uint8Array; patch?: Record<number, number>; ifdOffset?: number; nextIfd?: number }): Uint8Array {
  const { width, height, bits, float, pixels } = opts;
  const entries: [number, number, number][] = [
    [256, LONG, width],
    [257, LONG, height],
    [258, SHORT, bits],
    [259, SHORT, 1],
    [262, SHORT, 1],
    [273, LONG, 0],
    [277, SHORT, 1],
    [278, LONG, height],
    [279, LONG, pixels.length],
    [339, SHORT, float ? 3 : 1],
  ];
  const ifdSize = 2 + entries.length * 12 + 4;
  const dataAt = 8 + ifdSize;
  const out = new Uint8Array(dataAt + pixels.length);
  const v = new DataView(out.buffer);
  out.set([0x49, 0x49]);
  v.setUint16(2, 42, true);
  v.setUint32(4, opts.ifdOffset ?? 8, true);
  v.setUint16(8, entries.length, true);
  entries.forEach(([tag, type, value], k) => {
    const e = 10 + k * 12;
    const patched = opts.patch?.[tag] ?? (tag === 273 ? dataAt : value);
    v.setUint16(e, tag, true);
    v.setUint16(e + 2, type, true);
    v.setUint32(e + 4, 1, true);
    if (type === SHORT) v.setUint16(e + 8, patched, true);
    else v.setUint32(e + 8, patched, true);
  });
  v.setUint32(8 + 2 + entries.length * 12, opts.nextIfd ?? 0, true);
  out.set(pixels, dataAt);
  return out;
}

// ---- .npy ----

function npy(header: string, payload: Uint8Array, opts: { version?: number; declaredLength?: number; pad?: boolean } = {}): Uint8Array {
  const version = opts.version ?? 1;
  const lenBytes = version === 1 ? 2 : 4;
  let text = header;
  if (opts.pad !== false) text += ' '.repeat((64 - ((8 + lenBytes + text.length + 1) % 64)) % 64) + '\n';
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + lenBytes + h.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const v = new DataView(out.buffer);
  if (version === 1) v.setUint16(8, opts.declaredLength ?? h.length, true);
  else v.setUint32(8, opts.declaredLength ?? h.length, true);
  out.set(h, 8 + lenBytes);
  out.set(payload, 8 + lenBytes + h.length);
  return out;
}

const header = (descr: string, shape: string, fortran = 'False') => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

function floats(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = r();
  return new Uint8Array(f.buffer);
}

function randomBytes(n: number, seed: number, prefix: number[] = []): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256);
  out.set(prefix);
  return out;
}

/** Every corpus file with its expected outcomes. */
export async function buildCorpus(): Promise<{ files: Record<string, Uint8Array>; manifest: Manifest }> {
  const r = rng(7);
  const grey = new Uint8Array(W * H).map(() => Math.floor(r() * 256));
  const rgb = new Uint8Array(W * H * 3).map(() => Math.floor(r() * 256));
  const png = new Uint8Array(await sharp(grey, { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png().toBuffer());
  const rgbPng = new Uint8Array(await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer());
  const jpeg = new Uint8Array(await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).jpeg().toBuffer());
  const chunks = pngChunks(png);
  const mapBytes = floats(W * H, 3);

  const files: Record<string, Uint8Array> = {};
  const manifest: Manifest = {};
  const add = (name: string, bytes: Uint8Array, image: Expect | 'any', scoreMap: Expect | 'any') => {
    files[name] = bytes;
    manifest[name] = { image, scoreMap };
  };

  // Valid seeds (also the mutation run's starting points).
  add('valid-grey.png', png, 'ok', 'ok');
  add('valid-rgb.png', rgbPng, 'ok', 'error');
  add('valid.jpg', jpeg, 'ok', 'error');
  add('valid-grey8.tif', tiff({ width: W, height: H, bits: 8, float: false, pixels: grey }), 'ok', 'ok');
  add('valid-float.tif', tiff({ width: W, height: H, bits: 32, float: true, pixels: mapBytes }), 'error', 'ok');
  add('valid-map.npy', npy(header('<f4', `(${H}, ${W})`), mapBytes), 'error', 'ok');
  add('valid-features.npy', npy(header('<f4', `(3, ${H}, ${W})`), floats(3 * W * H, 4)), 'error', 'error');

  // PNG: truncated, bad CRC, corrupt image data, lying and huge sizes, absurd chunk length, no IEND.
  add('png-truncated-half.png', png.slice(0, Math.floor(png.length / 2)), 'error', 'error');
  add('png-truncated-header.png', png.slice(0, 20), 'error', 'error');
  add('png-ihdr-bad-crc.png', pngFrom(chunks.map((c) => (c.type === 'IHDR' ? { ...c, crc: 0xdeadbeef } : c))), 'error', 'error');
  add(
    'png-idat-corrupt.png',
    pngFrom(chunks.map((c) => (c.type === 'IDAT' ? { ...c, data: c.data.map((b, i) => (i > 2 ? b ^ 0x5a : b)) } : c))),
    'error',
    'error',
  );
  add('png-lying-size.png', withPngSize(png, 2000, 1500), 'error', 'error');
  add('png-bomb-100k.png', withPngSize(png, 100_000, 100_000), 'TOO_LARGE', 'TOO_LARGE');
  add('png-bomb-wide.png', withPngSize(png, 0x7fffffff, 1), 'error', 'error');
  add('png-zero-size.png', withPngSize(png, 0, H), 'error', 'error');
  add('png-huge-chunk-length.png', pngFrom(chunks.map((c) => (c.type === 'IDAT' ? { ...c, length: 0x7ffffff0 } : c))), 'error', 'error');
  add('png-no-iend.png', pngFrom(chunks.filter((c) => c.type !== 'IEND')), 'any', 'any');

  // JPEG: truncated, a frame header declaring 40000 x 40000, garbage after the start marker.
  add('jpeg-truncated.jpg', jpeg.slice(0, Math.floor(jpeg.length / 2)), 'error', 'error');
  const sof = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
  const huge = jpeg.slice();
  new DataView(huge.buffer).setUint16(sof + 5, 40_000);
  new DataView(huge.buffer).setUint16(sof + 7, 40_000);
  add('jpeg-bomb-40000.jpg', huge, 'TOO_LARGE', 'error');
  add('jpeg-garbage.jpg', randomBytes(400, 11, [0xff, 0xd8, 0xff]), 'error', 'error');

  // TIFF: IFD offsets outside the file or looping, strips outside the file, huge and zero sizes, 64-bit samples.
  const tgrey = (o: Partial<Parameters<typeof tiff>[0]>) => tiff({ width: W, height: H, bits: 8, float: false, pixels: grey, ...o });
  add('tiff-ifd-offset-past-end.tif', tgrey({ ifdOffset: 0x7fff0000 }), 'error', 'error');
  add('tiff-ifd-offset-zero.tif', tgrey({ ifdOffset: 0 }), 'error', 'error');
  add('tiff-ifd-loop.tif', tgrey({ nextIfd: 8 }), 'any', 'any');
  add('tiff-strip-past-end.tif', tgrey({ patch: { 273: 0x7fff0000 } }), 'error', 'error');
  add('tiff-strip-bytecount-huge.tif', tgrey({ patch: { 279: 0xfffffff0 } }), 'any', 'any');
  add('tiff-bomb-100k.tif', tgrey({ patch: { 256: 100_000, 257: 100_000 } }), 'TOO_LARGE', 'TOO_LARGE');
  add('tiff-zero-width.tif', tgrey({ patch: { 256: 0 } }), 'error', 'error');
  add('tiff-64bit.tif', tiff({ width: W, height: H, bits: 64, float: true, pixels: new Uint8Array(W * H * 8) }), 'error', 'error');
  add('tiff-truncated.tif', tgrey({}).slice(0, 60), 'error', 'error');

  // .npy: every header field wrong in turn, sizes that overflow, truncated and trailing data.
  add('npy-bad-version.npy', npy(header('<f4', `(${H}, ${W})`), mapBytes, { version: 9 }), 'error', 'error');
  add('npy-header-length-past-end.npy', npy(header('<f4', `(${H}, ${W})`), new Uint8Array(0), { version: 2, declaredLength: 0x7fffffff }), 'error', 'error');
  add('npy-header-not-dict.npy', npy('[1, 2, 3]', mapBytes), 'error', 'error');
  add('npy-header-unterminated.npy', npy("{'descr': '<f4", mapBytes), 'error', 'error');
  add('npy-negative-shape.npy', npy(header('<f4', `(-${H}, ${W})`), mapBytes), 'error', 'error');
  add('npy-bomb-shape.npy', npy(header('<f4', '(100000, 100000)'), mapBytes), 'error', 'TOO_LARGE');
  add('npy-overflow-shape.npy', npy(header('<f4', '(18446744073709551616, 18446744073709551616)'), mapBytes), 'error', 'TOO_LARGE');
  add('npy-complex-dtype.npy', npy(header('<c8', `(${H}, ${W})`), mapBytes), 'error', 'error');
  add('npy-fortran.npy', npy(header('<f4', `(${H}, ${W})`, 'True'), mapBytes), 'error', 'error');
  add('npy-truncated-data.npy', npy(header('<f4', `(${H}, ${W})`), mapBytes.slice(0, 100)), 'error', 'error');
  add('npy-trailing-data.npy', npy(header('<f4', `(${H}, ${W})`), concat([mapBytes, new Uint8Array(7)])), 'error', 'error');
  add('npy-nan-header.npy', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (nan, 3), }", mapBytes), 'error', 'error');
  add('npy-huge-header.npy', npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (${H}, ${W}), '${'x'.repeat(70_000)}': 1, }`, mapBytes, { version: 2 }), 'error', 'error');

  // Random bytes, bare and behind each format's magic; an empty file.
  add('random.bin', randomBytes(512, 1), 'error', 'error');
  add('random-png-magic.png', randomBytes(512, 2, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'error', 'error');
  add('random-tiff-magic.tif', randomBytes(512, 3, [0x49, 0x49, 0x2a, 0x00]), 'error', 'error');
  add('random-npy-magic.npy', randomBytes(512, 4, [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]), 'error', 'error');
  add('empty.png', new Uint8Array(0), 'error', 'error');
  return { files, manifest };
}

async function main(): Promise<void> {
  const { files, manifest } = await buildCorpus();
  rmSync(CORPUS_DIR, { recursive: true, force: true });
  mkdirSync(CORPUS_DIR, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(CORPUS_DIR, name), bytes);
  writeFileSync(join(CORPUS_DIR, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const total = readdirSync(CORPUS_DIR).length - 1;
  console.log(`wrote ${total} files to ${CORPUS_DIR}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
