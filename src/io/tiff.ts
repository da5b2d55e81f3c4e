// Floating-point TIFF rasters with any number of samples, read and written here rather than through
// libvips: MVTec 3D-AD stores its organized point clouds as 3-sample 32-bit float TIFFs, which sharp
// decodes as an sRGB image (interpreting and clipping the values). Classic TIFF (not BigTIFF), either byte
// order, strips or tiles, chunky or planar samples, uncompressed or Deflate without a predictor.

import { inflateSync } from 'node:zlib';
import { TttError } from '../core/errors.ts';

export interface FloatRaster {
  /** Samples interleaved per pixel (x0 y0 z0 x1 ...), row-major, as float32. */
  data: Float32Array;
  width: number;
  height: number;
  samples: number;
}

const TAG = {
  width: 256,
  height: 257,
  bitsPerSample: 258,
  compression: 259,
  stripOffsets: 273,
  samplesPerPixel: 277,
  rowsPerStrip: 278,
  stripByteCounts: 279,
  planarConfiguration: 284,
  predictor: 317,
  tileWidth: 322,
  tileLength: 323,
  tileOffsets: 324,
  tileByteCounts: 325,
  sampleFormat: 339,
} as const;

const TYPE_SIZES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8 };

function invalid(message: string): never {
  throw new TttError('INVALID_INPUT', message);
}

function unsupported(message: string): never {
  throw new TttError('UNSUPPORTED_FORMAT', message);
}

/** The first IFD's tags as arrays of numbers (integer types only; the others are not needed here). */
function readTags(v: DataView, le: boolean): Map<number, number[]> {
  const size = v.byteLength;
  const ifd = v.getUint32(4, le);
  if (ifd + 2 > size) invalid(`the TIFF header points past the end of the file (IFD at ${ifd}, ${size} bytes)`);
  const count = v.getUint16(ifd, le);
  if (ifd + 2 + count * 12 > size) invalid('the TIFF directory is truncated');
  const tags = new Map<number, number[]>();
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + k * 12;
    const tag = v.getUint16(e, le);
    const type = v.getUint16(e + 2, le);
    const n = v.getUint32(e + 4, le);
    const itemSize = TYPE_SIZES[type];
    if (!itemSize || ![3, 4, 16].includes(type)) continue;
    const bytes = itemSize * n;
    const at = bytes <= 4 ? e + 8 : v.getUint32(e + 8, le);
    if (at + bytes > size) invalid(`TIFF tag ${tag} points past the end of the file`);
    const values: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = at + i * itemSize;
      values.push(type === 3 ? v.getUint16(p, le) : type === 4 ? v.getUint32(p, le) : Number(v.getBigUint64(p, le)));
    }
    tags.set(tag, values);
  }
  return tags;
}

/** Decodes the first image of a floating-point TIFF. Integer rasters are refused (UNSUPPORTED_FORMAT). */
export function decodeFloatTiff(bytes: Uint8Array, maxPixels = Infinity): FloatRaster {
  if (bytes.length < 8) invalid('the TIFF file is truncated');
  const le = bytes[0] === 0x49;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = v.getUint16(2, le);
  if (magic === 43) unsupported('BigTIFF is not supported (save a classic TIFF or .npy)');
  if (magic !== 42) invalid('not a TIFF file');
  const tags = readTags(v, le);
  const one = (tag: number, fallback?: number): number => {
    const t = tags.get(tag);
    if (t && t.length > 0) return t[0];
    if (fallback === undefined) invalid(`the TIFF lacks required tag ${tag}`);
    return fallback;
  };
  const width = one(TAG.width);
  const height = one(TAG.height);
  if (width < 1 || height < 1) invalid(`the TIFF has zero size ${width}x${height}`);
  if (width * height > maxPixels) throw new TttError('TOO_LARGE', `the TIFF has ${width}x${height} pixels, more than the limit of ${maxPixels}`);
  const samples = one(TAG.samplesPerPixel, 1);
  const bitsList = tags.get(TAG.bitsPerSample) ?? [1];
  const formats = tags.get(TAG.sampleFormat) ?? [1];
  const bits = bitsList[0];
  if (!bitsList.every((b) => b === bits)) unsupported(`the TIFF mixes sample sizes (${bitsList.join(', ')} bits)`);
  if (!formats.every((f) => f === 3)) {
    unsupported(`the TIFF holds ${formats[0] === 2 ? 'signed integer' : 'unsigned integer'} samples of ${bits} bits; a point cloud needs 32- or 64-bit floats`);
  }
  if (bits !== 32 && bits !== 64) unsupported(`the TIFF holds ${bits}-bit floats (supported: 32 or 64)`);
  const compression = one(TAG.compression, 1);
  if (compression !== 1 && compression !== 8 && compression !== 32946) {
    unsupported(`the TIFF uses compression ${compression} (supported: none, Deflate)`);
  }
  if (one(TAG.predictor, 1) !== 1) unsupported('the TIFF uses a predictor (supported: none)');
  const planar = one(TAG.planarConfiguration, 1) === 2;
  const bps = bits / 8;
  const tiled = tags.has(TAG.tileOffsets);
  const blockW = tiled ? one(TAG.tileWidth) : width;
  const blockH = tiled ? one(TAG.tileLength) : Math.min(one(TAG.rowsPerStrip, height), height);
  if (blockW < 1 || blockH < 1) invalid('the TIFF has zero-sized strips or tiles');
  const offsets = tags.get(tiled ? TAG.tileOffsets : TAG.stripOffsets) ?? invalid('the TIFF has no strip offsets');
  const counts = tags.get(tiled ? TAG.tileByteCounts : TAG.stripByteCounts) ?? invalid('the TIFF has no strip byte counts');
  const across = Math.ceil(width / blockW);
  const down = Math.ceil(height / blockH);
  const perPlane = across * down;
  const planes = planar ? samples : 1;
  if (offsets.length < perPlane * planes || counts.length < perPlane * planes) {
    invalid(`the TIFF lists ${offsets.length} ${tiled ? 'tiles' : 'strips'}, expected ${perPlane * planes}`);
  }
  const out = new Float32Array(width * height * samples);
  const blockSamples = planar ? 1 : samples;
  for (let plane = 0; plane < planes; plane++) {
    for (let b = 0; b < perPlane; b++) {
      const k = plane * perPlane + b;
      const start = offsets[k];
      const end = start + counts[k];
      if (end > bytes.length) invalid(`TIFF ${tiled ? 'tile' : 'strip'} ${k} runs past the end of the file`);
      let block = bytes.subarray(start, end);
      if (compression !== 1) {
        try {
          block = inflateSync(block);
        } catch (e) {
          invalid(`TIFF ${tiled ? 'tile' : 'strip'} ${k} does not inflate: ${(e as Error).message}`);
        }
      }
      const bx = (b % across) * blockW;
      const by = Math.floor(b / across) * blockH;
      // Strips hold only the rows they cover; tiles are always full size (padded at the edges).
      const rows = tiled ? blockH : Math.min(blockH, height - by);
      const need = rows * blockW * blockSamples * bps;
      if (block.length < need) invalid(`TIFF ${tiled ? 'tile' : 'strip'} ${k} holds ${block.length} bytes, expected ${need}`);
      const bv = new DataView(block.buffer, block.byteOffset, block.byteLength);
      for (let y = 0; y < rows && by + y < height; y++) {
        for (let x = 0; x < blockW && bx + x < width; x++) {
          for (let s = 0; s < blockSamples; s++) {
            const p = ((y * blockW + x) * blockSamples + s) * bps;
            const val = bits === 32 ? bv.getFloat32(p, le) : bv.getFloat64(p, le);
            out[((by + y) * width + bx + x) * samples + (planar ? plane : s)] = val;
          }
        }
      }
    }
  }
  return { data: out, width, height, samples };
}

/** A little-endian, uncompressed, single-strip float32 TIFF of `samples` interleaved samples per pixel. */
export function encodeFloatTiff(data: Float32Array, width: number, height: number, samples: number): Uint8Array {
  if (data.length !== width * height * samples) {
    throw new TttError('SIZE_MISMATCH', `encodeFloatTiff: ${data.length} values for ${width}x${height}x${samples}`);
  }
  const entries: [number, number, number, number[]][] = [
    [TAG.width, 4, 1, [width]],
    [TAG.height, 4, 1, [height]],
    [TAG.bitsPerSample, 3, samples, Array(samples).fill(32)],
    [TAG.compression, 3, 1, [1]],
    [262, 3, 1, [samples === 3 ? 2 : 1]], // PhotometricInterpretation: RGB or BlackIsZero
    [TAG.stripOffsets, 4, 1, [0]],
    [TAG.samplesPerPixel, 3, 1, [samples]],
    [TAG.rowsPerStrip, 4, 1, [height]],
    [TAG.stripByteCounts, 4, 1, [data.length * 4]],
    [TAG.planarConfiguration, 3, 1, [1]],
    [TAG.sampleFormat, 3, samples, Array(samples).fill(3)],
  ];
  const ifdSize = 2 + entries.length * 12 + 4;
  const extraAt = 8 + ifdSize;
  const extras = entries.filter(([, type, n]) => n * (type === 3 ? 2 : 4) > 4);
  const extraBytes = extras.reduce((a, [, type, n]) => a + n * (type === 3 ? 2 : 4), 0);
  const dataAt = Math.ceil((extraAt + extraBytes) / 8) * 8;
  const out = new Uint8Array(dataAt + data.length * 4);
  const v = new DataView(out.buffer);
  out.set([0x49, 0x49, 42, 0]);
  v.setUint32(4, 8, true);
  v.setUint16(8, entries.length, true);
  let extra = extraAt;
  entries.forEach(([tag, type, n, values], k) => {
    const e = 10 + k * 12;
    const size = type === 3 ? 2 : 4;
    if (tag === TAG.stripOffsets) values = [dataAt];
    v.setUint16(e, tag, true);
    v.setUint16(e + 2, type, true);
    v.setUint32(e + 4, n, true);
    let at = e + 8;
    if (n * size > 4) {
      v.setUint32(e + 8, extra, true);
      at = extra;
      extra += n * size;
    }
    values.forEach((x, i) => (size === 2 ? v.setUint16(at + i * 2, x, true) : v.setUint32(at + i * 4, x, true)));
  });
  v.setUint32(10 + entries.length * 12, 0, true); // no next IFD
  for (let i = 0; i < data.length; i++) v.setFloat32(dataAt + i * 4, data[i], true);
  return out;
}
