// Score maps and feature maps from files, told apart by content: .npy arrays, single-channel float TIFFs,
// 8- or 16-bit grey PNG/TIFF. Values pass through unchanged (NaN and Inf included: the core's validation
// reports them with their position); integer rasters keep their integer codes (0..255 or 0..65535).

import { TttError, withSubject, withSubjectAsync } from '../core/errors.ts';
import type { FeatureTensor, ScoreMap } from '../core/types.ts';
import { checkDimensions } from '../core/validate.ts';
import { DEFAULT_MAX_PIXELS, decodeRaw, inspectRaster, samples16, sharpInput } from './image.ts';
import { DEFAULT_MAX_NPY_ELEMENTS, parseNpy } from './npy.ts';
import { requireFormat } from './sniff.ts';

export interface DecodeMapOptions {
  /** Largest map accepted, in pixels (default DEFAULT_MAX_PIXELS); checked before decoding. */
  maxPixels?: number;
}

const shapeText = (shape: readonly number[]) => `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;

/** (h, w), or with singleton axes around it: (1, h, w), (h, w, 1), (1, 1, h, w). */
function mapShape(shape: readonly number[]): { width: number; height: number } {
  const s = [...shape];
  while (s.length > 2 && s[0] === 1) s.shift();
  if (s.length === 3 && s[2] === 1) s.pop();
  if (s.length !== 2) {
    throw new TttError('INVALID_INPUT', `a score map must be a 2-D array (h, w), possibly with a singleton axis, got shape ${shapeText(shape)}`);
  }
  checkDimensions('the score map', s[1], s[0]);
  return { width: s[1], height: s[0] };
}

async function decodeRasterMap(bytes: Uint8Array, format: 'png' | 'tiff', maxPixels: number): Promise<ScoreMap> {
  const { meta } = await inspectRaster(bytes, [format], 'score map', maxPixels);
  if (meta.channels !== 1) {
    throw new TttError('INVALID_INPUT', `the score map has ${meta.channels} channels${meta.hasAlpha ? ' (with alpha)' : ''}; a score map must have exactly one`);
  }
  const depth = meta.depth;
  const float = depth === 'float';
  if (!float && depth !== 'uchar' && depth !== 'ushort') {
    throw new TttError('UNSUPPORTED_FORMAT', `the score map has ${depth} samples (supported: 8- or 16-bit unsigned integers, 32-bit floats)`);
  }
  // The target colourspace is the source's own, so libvips converts nothing and values stay as stored.
  const p = sharpInput(bytes, maxPixels)
    .toColourspace(depth === 'ushort' ? 'grey16' : 'b-w')
    .raw({ depth });
  const { data, info } = await decodeRaw(p, format, 'score map');
  const width = meta.width!;
  const height = meta.height!;
  if (info.channels !== 1 || info.width !== width || info.height !== height) {
    throw new TttError('INTERNAL', `decoder gave ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x1`);
  }
  let values: Float32Array;
  if (float) {
    values = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
  } else if (depth === 'ushort') {
    values = Float32Array.from(samples16(data));
  } else {
    values = Float32Array.from(data);
  }
  return { data: values, width, height };
}

/** A score map from .npy (any numeric dtype), a 1-channel float32/8-/16-bit TIFF, or an 8-/16-bit grey PNG. */
export async function decodeScoreMap(bytes: Uint8Array, name: string, opts: DecodeMapOptions = {}): Promise<ScoreMap> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const format = withSubject(name, () => requireFormat(bytes, ['npy', 'tiff', 'png'], 'score map'));
  if (format === 'npy') {
    const arr = parseNpy(bytes, name, { maxElements: maxPixels });
    return withSubject(name, () => ({ data: arr.data, ...mapShape(arr.shape) }));
  }
  return withSubjectAsync(name, () => decodeRasterMap(bytes, format, maxPixels));
}

/** Feature maps C x h x w (or 1 x C x h x w) from a .npy file of any numeric dtype. */
export async function decodeFeatures(bytes: Uint8Array, name: string, maxElements = DEFAULT_MAX_NPY_ELEMENTS): Promise<FeatureTensor> {
  withSubject(name, () => requireFormat(bytes, ['npy'], 'feature maps'));
  const arr = parseNpy(bytes, name, { maxElements });
  return withSubject(name, () => {
    const s = arr.shape.length === 4 && arr.shape[0] === 1 ? arr.shape.slice(1) : arr.shape;
    if (s.length !== 3) {
      throw new TttError('INVALID_INPUT', `feature maps must be a 3-D array (C, h, w) or (1, C, h, w), got shape ${shapeText(arr.shape)}`);
    }
    checkDimensions('the feature maps', s[2], s[1]);
    if (s[0] < 1) throw new TttError('INVALID_INPUT', 'the feature maps have 0 channels');
    return { data: arr.data, channels: s[0], height: s[1], width: s[2] };
  });
}
