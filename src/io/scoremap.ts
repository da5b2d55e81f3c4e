// Score maps and feature maps from uploads: .npy (any numeric dtype) or, for score maps, a single-channel
// image (8/16-bit PNG or TIFF scaled to [0, 1], float TIFF as is). Minimal version for the service; the io
// branch's fuller module replaces it.

import { TttError } from '../core/errors.ts';
import type { FeatureTensor, ScoreMap } from '../core/types.ts';
import { decodeRaster } from './image.ts';
import { isNpy, parseNpy } from './npy.ts';

export async function decodeScoreMap(bytes: Uint8Array, name: string): Promise<ScoreMap> {
  if (isNpy(bytes)) {
    const a = parseNpy(bytes, name);
    const dims = a.shape.filter((d) => d !== 1);
    if (dims.length > 2 || a.shape.length < 2) {
      throw new TttError('UNSUPPORTED_FORMAT', `${name}: a score map must be 2-D (h, w), got shape (${a.shape.join(', ')})`);
    }
    const [height, width] = a.shape.slice(-2);
    if (a.shape.slice(0, -2).some((d) => d !== 1)) {
      throw new TttError('UNSUPPORTED_FORMAT', `${name}: a score map must be 2-D (h, w), got shape (${a.shape.join(', ')})`);
    }
    return { data: a.data, width, height };
  }
  const r = await decodeRaster(bytes, name, 'score map', {}, true);
  return { data: r.data, width: r.width, height: r.height };
}

export async function decodeFeatures(bytes: Uint8Array, name: string): Promise<FeatureTensor> {
  if (!isNpy(bytes)) throw new TttError('UNSUPPORTED_FORMAT', `${name}: feature maps must be a .npy array of shape (C, h, w)`);
  const a = parseNpy(bytes, name);
  const shape = a.shape.length === 4 && a.shape[0] === 1 ? a.shape.slice(1) : a.shape;
  if (shape.length !== 3) throw new TttError('UNSUPPORTED_FORMAT', `${name}: feature maps must have shape (C, h, w), got (${a.shape.join(', ')})`);
  const [channels, height, width] = shape;
  return { data: a.data, channels, width, height };
}
