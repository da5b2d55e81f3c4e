// Input checks that run on the host before anything reaches the GPU: every failure names the input and
// the problem.

import { TttError } from './errors.ts';
import type { FeatureTensor, ImageTensor, PointCloud, ScoreMap } from './types.ts';
import { countValid, pointValidity } from './validity.ts';

export function checkDimensions(what: string, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new TttError('INVALID_INPUT', `${what} has zero or invalid size ${width}x${height}`);
  }
}

export function checkFinite(what: string, data: Float32Array, width: number, height: number): void {
  const plane = width * height;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) {
      const r = i % plane;
      const where = `row ${Math.floor(r / width)}, column ${r % width}${data.length > plane ? `, channel ${Math.floor(i / plane)}` : ''}`;
      throw new TttError('NON_FINITE', `${what} contains ${v} at ${where}`);
    }
  }
}

/**
 * A map may be resampled to the image's size when their aspect ratios agree to less than one map pixel
 * either way (detectors at a stride round each side separately).
 */
export function checkAspect(what: string, map: { width: number; height: number }, image: { width: number; height: number }): void {
  if (map.width === image.width && map.height === image.height) return;
  const expectedH = (map.width * image.height) / image.width;
  const expectedW = (map.height * image.width) / image.height;
  if (Math.abs(map.height - expectedH) >= 1 || Math.abs(map.width - expectedW) >= 1) {
    throw new TttError(
      'SIZE_MISMATCH',
      `${what} (${map.width}x${map.height}) and the image (${image.width}x${image.height}) have different aspect ratios`,
    );
  }
}

export function validateImage(image: ImageTensor): void {
  checkDimensions('the image', image.width, image.height);
  if (image.channels !== 1 && image.channels !== 3) throw new TttError('INVALID_INPUT', `the image has ${image.channels} channels (expected 1 or 3)`);
  if (image.data.length !== image.width * image.height * image.channels) {
    throw new TttError('SIZE_MISMATCH', `the image holds ${image.data.length} values, expected ${image.width}x${image.height}x${image.channels}`);
  }
  checkFinite('the image', image.data, image.width, image.height);
}

export function validateScoreMap(map: ScoreMap, image: { width: number; height: number }): void {
  checkDimensions('the score map', map.width, map.height);
  if (map.data.length !== map.width * map.height) {
    throw new TttError('SIZE_MISMATCH', `the score map holds ${map.data.length} values, expected ${map.width}x${map.height}`);
  }
  checkFinite('the score map', map.data, map.width, map.height);
  checkAspect('the score map', map, image);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < map.data.length; i++) {
    if (map.data[i] < min) min = map.data[i];
    if (map.data[i] > max) max = map.data[i];
  }
  if (!(max > min)) throw new TttError('CONSTANT_MAP', `the score map is constant (every value is ${min}): it carries no evidence to segment`);
}

export function validateFeatures(f: FeatureTensor, image: { width: number; height: number }): void {
  checkDimensions('the feature maps', f.width, f.height);
  if (!Number.isInteger(f.channels) || f.channels < 1) throw new TttError('INVALID_INPUT', `the feature maps have ${f.channels} channels`);
  if (f.data.length !== f.channels * f.width * f.height) {
    throw new TttError('SIZE_MISMATCH', `the feature maps hold ${f.data.length} values, expected ${f.channels}x${f.height}x${f.width}`);
  }
  checkFinite('the feature maps', f.data, f.width, f.height);
  checkAspect('the feature maps', f, image);
}

/**
 * An organized point cloud for the image: width x height x 3 values, the image's aspect ratio (it is
 * resampled to the working resolution), at least one valid point. NaN and (0, 0, 0) mark holes; infinite
 * coordinates are refused. Returns the cloud's validity (pointValidity), which the check computes, for
 * the caller to reuse.
 */
export function validatePointCloud(pc: PointCloud, image: { width: number; height: number }): Uint8Array {
  checkDimensions('the point cloud', pc.width, pc.height);
  if (pc.data.length !== pc.width * pc.height * 3) {
    throw new TttError('SIZE_MISMATCH', `the point cloud holds ${pc.data.length} values, expected ${pc.width}x${pc.height}x3 (x, y, z per pixel)`);
  }
  for (let i = 0; i < pc.data.length; i++) {
    const v = pc.data[i];
    if (v === Infinity || v === -Infinity) {
      const p = Math.floor(i / 3);
      throw new TttError('NON_FINITE', `the point cloud contains ${v} at row ${Math.floor(p / pc.width)}, column ${p % pc.width} (holes are NaN or (0, 0, 0))`);
    }
  }
  checkAspect('the point cloud', pc, image);
  const valid = pointValidity(pc);
  if (countValid(valid) === 0) throw new TttError('INVALID_INPUT', 'the point cloud has no valid point (every point is (0, 0, 0) or NaN)');
  return valid;
}
