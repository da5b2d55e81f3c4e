// Organized point clouds from files: .npy of shape (H, W, 3) (or (1, H, W, 3)) in float32 or float64, or a
// 3-sample 32/64-bit float TIFF as MVTec 3D-AD stores its xyz maps. NaN and (0, 0, 0) pass through: they
// mark points without a measurement, which the pipeline masks out. Infinite coordinates are refused by
// the core's validation, with their position.

import { TttError, withSubject } from '../core/errors.ts';
import type { PointCloud } from '../core/types.ts';
import { checkDimensions } from '../core/validate.ts';
import { readInputFile } from './files.ts';
import { DEFAULT_MAX_PIXELS } from './image.ts';
import { parseNpy } from './npy.ts';
import { requireFormat } from './sniff.ts';
import { decodeFloatTiff } from './tiff.ts';

/** File extensions of a point cloud on disk (float TIFF, or .npy h x w x 3). */
export const POINT_CLOUD_EXTENSIONS: readonly string[] = ['.tiff', '.tif', '.npy'];

const shapeText = (shape: readonly number[]) => `(${shape.join(', ')})`;

/** A point cloud from .npy (H, W, 3) float32/float64 or a 3-sample float TIFF. */
export function decodePointCloud(bytes: Uint8Array, name: string, opts: { maxPixels?: number } = {}): PointCloud {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  return withSubject(name, () => {
    const format = requireFormat(bytes, ['npy', 'tiff'], 'point cloud');
    if (format === 'npy') {
      const arr = parseNpy(bytes, name, { maxElements: 3 * maxPixels });
      const kind = arr.dtype.slice(1);
      if (kind !== 'f4' && kind !== 'f8') {
        throw new TttError('UNSUPPORTED_FORMAT', `a point cloud must hold float32 or float64 values, got dtype ${arr.dtype}`);
      }
      const s = arr.shape.length === 4 && arr.shape[0] === 1 ? arr.shape.slice(1) : arr.shape;
      if (s.length !== 3 || s[2] !== 3) {
        throw new TttError('INVALID_INPUT', `a point cloud must be an array of shape (H, W, 3), got shape ${shapeText(arr.shape)}`);
      }
      checkDimensions('the point cloud', s[1], s[0]);
      return { data: arr.data, width: s[1], height: s[0] };
    }
    const r = decodeFloatTiff(bytes, maxPixels);
    if (r.samples !== 3) throw new TttError('INVALID_INPUT', `the point cloud TIFF has ${r.samples} sample${r.samples === 1 ? '' : 's'} per pixel; x, y, z need 3`);
    return { data: r.data, width: r.width, height: r.height };
  });
}

/** Reads and decodes the point cloud file at `path` (errors name the file once). */
export async function readPointCloud(path: string): Promise<PointCloud> {
  return decodePointCloud(await readInputFile(path, 'point cloud'), path);
}
