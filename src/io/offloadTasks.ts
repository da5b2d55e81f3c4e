// The tasks offload.ts runs in worker threads: decoding and checking a submission's files, and rendering
// the PNGs of the file routes. Each takes and returns structured-cloneable values.

import { withSubjectAsync } from '../core/errors.ts';
import { chooseExtractor, resolveModality } from '../core/features/index.ts';
import type { TttOptions } from '../core/options.ts';
import { checkImageSize, type DeviceLimits, type RunShape } from '../core/plan.ts';
import type { Region } from '../core/types.ts';
import { validateFeatures, validateImage, validatePointCloud, validateScoreMap } from '../core/validate.ts';
import { decodeImage, decodeMask, encodeOverlayPng, encodeScoreMapPng, IMAGE_FORMATS, inspectRaster } from './image.ts';
import { decodePointCloud } from './pointcloud.ts';
import { decodeFeatures, decodeScoreMap } from './scoremap.ts';

export interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

export interface SubmissionFiles {
  image: NamedBytes;
  scoreMap: NamedBytes | null;
  features: NamedBytes | null;
  pointCloud: NamedBytes | null;
  groundTruth: NamedBytes | null;
}

/** The sizes a submission's run is planned from (core/plan.ts), all that comes back from the worker. */
export interface SubmissionShape extends RunShape {
  readonly image: { width: number; height: number; channels: number };
}

/**
 * Decodes and validates every file of a submission against the image and the resolved options (typed
 * errors naming the field); returns their sizes. The decoded tensors stay in the worker.
 */
async function checkSubmission(files: SubmissionFiles, options: TttOptions, maxPixels: number, device: DeviceLimits): Promise<SubmissionShape> {
  const { image, scoreMap, features, pointCloud, groundTruth } = files;
  // From the image's header first: an image the device cannot process at its size is refused undecoded.
  await withSubjectAsync('image', () =>
    withSubjectAsync(image.name, async () => {
      const { meta } = await inspectRaster(image.bytes, IMAGE_FORMATS, 'image', maxPixels);
      checkImageSize(device, meta.width!, meta.height!);
    }),
  );
  const decodedImage = await withSubjectAsync('image', () => decodeImage(image.bytes, image.name, { maxPixels }));
  const decodedMap = scoreMap ? await withSubjectAsync('scoreMap', () => decodeScoreMap(scoreMap.bytes, scoreMap.name, { maxPixels })) : null;
  const decodedFeatures = features ? await withSubjectAsync('features', () => decodeFeatures(features.bytes, features.name)) : undefined;
  validateImage(decodedImage);
  if (decodedMap) validateScoreMap(decodedMap, decodedImage);
  if (decodedFeatures) validateFeatures(decodedFeatures, decodedImage);
  chooseExtractor(options, decodedFeatures);
  const decodedCloud = pointCloud ? await withSubjectAsync('pointCloud', async () => decodePointCloud(pointCloud.bytes, pointCloud.name, { maxPixels })) : null;
  if (decodedCloud) await withSubjectAsync('pointCloud', async () => validatePointCloud(decodedCloud, decodedImage));
  resolveModality(options, decodedCloud);
  if (groundTruth) await withSubjectAsync('groundTruth', () => decodeMask(groundTruth.bytes, groundTruth.name, decodedImage, maxPixels));
  const size = (t: { width: number; height: number } | null | undefined) => (t ? { width: t.width, height: t.height } : null);
  return {
    image: { width: decodedImage.width, height: decodedImage.height, channels: decodedImage.channels },
    scoreMap: size(decodedMap),
    features: decodedFeatures ? { width: decodedFeatures.width, height: decodedFeatures.height, channels: decodedFeatures.channels } : null,
    pointCloud: size(decodedCloud),
  };
}

/** The inferno heat map of a stored score map. */
async function renderScoreMap(map: NamedBytes, maxPixels: number): Promise<Uint8Array> {
  return encodeScoreMapPng(await decodeScoreMap(map.bytes, map.name, { maxPixels }));
}

/** The image with its mask blended in red and the regions' boxes in yellow. */
async function renderOverlay(image: NamedBytes, mask: NamedBytes, regions: Region[], maxPixels: number): Promise<Uint8Array> {
  const decoded = await decodeImage(image.bytes, image.name, { maxPixels });
  const bits = await decodeMask(mask.bytes, mask.name, decoded);
  return encodeOverlayPng(decoded, bits, regions);
}

export const TASKS = { checkSubmission, renderScoreMap, renderOverlay };

/** The buffers of a task's result that can be moved to the caller instead of copied. */
export function transferables(value: unknown): ArrayBuffer[] {
  return value instanceof Uint8Array && value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? [value.buffer] : [];
}
