// Feature stage: choose the extractor, extract at the working resolution, standardize every channel.

import type { Gpu } from '../gpu.ts';
import { TttError } from '../errors.ts';
import { MAX_CHANNELS } from '../kernels.ts';
import type { Modality, TttOptions } from '../options.ts';
import type { FeatureTensor, GpuFeatures, ImageTensor, PointCloud } from '../types.ts';
import type { FeatureExtractor } from './extractor.ts';
import { filterbankExtractor } from './filterbank.ts';
import { mobilenetExtractor } from './mobilenet/extractor.ts';
import { resnetExtractor } from './resnet/extractor.ts';
import { standardizeFeatures } from './standardize.ts';
import { suppliedExtractor } from './supplied.ts';

export type { FeatureExtractor } from './extractor.ts';

/** The extractor the options and inputs ask for (supplied features win when given). */
export function chooseExtractor(options: TttOptions, supplied?: FeatureTensor): FeatureExtractor {
  if (supplied) return suppliedExtractor(supplied);
  if (options.features.extractor === 'supplied') {
    throw new TttError('INVALID_INPUT', 'features.extractor=supplied but no feature maps were given');
  }
  if (options.features.extractor === 'mobilenetv2') {
    return mobilenetExtractor({ layers: options.features.layers, inputSize: options.features.inputSize });
  }
  if (options.features.extractor === 'resnet50') {
    return resnetExtractor({ layers: options.features.layers, inputSize: options.features.inputSize });
  }
  return filterbankExtractor(options.features.sigmas);
}

/** `standardize`: false leaves the channels raw (the host path folds the standardization into the classifier). */
export async function extractFeatures(gpu: Gpu, image: ImageTensor, extractor: FeatureExtractor, standardize = true): Promise<GpuFeatures> {
  const features = await extractor.extract(gpu, image);
  checkChannelLimit(gpu, features);
  if (standardize) standardizeFeatures(gpu, features);
  return features;
}

export function releaseFeatures(gpu: Gpu, features: GpuFeatures): void {
  for (const c of features.chunks) gpu.release(c.data);
}

/** The features the classifier sees: rgb, 3d or both (auto: both with a point cloud, else rgb). */
export function resolveModality(options: TttOptions, pointCloud?: PointCloud | null): Exclude<Modality, 'auto'> {
  const m = options.features.modality;
  if (m === 'auto') return pointCloud ? 'both' : 'rgb';
  if (m !== 'rgb' && !pointCloud) throw new TttError('INVALID_INPUT', `features.modality=${m} needs a point cloud, and none was given`);
  return m;
}

/** One feature set of the channels of several (chunks are kept; the caller releases the result). */
export function concatFeatures(parts: readonly GpuFeatures[]): GpuFeatures {
  if (parts.length === 1) return parts[0];
  const { width, height } = parts[0];
  return {
    chunks: parts.flatMap((p) => p.chunks),
    channels: parts.reduce((a, p) => a + p.channels, 0),
    width,
    height,
    names: parts.flatMap((p) => p.names),
  };
}

export function checkChannelLimit(gpu: Gpu, features: GpuFeatures): void {
  if (features.channels > MAX_CHANNELS) {
    releaseFeatures(gpu, features);
    throw new TttError('TOO_LARGE', `${features.channels} feature channels exceed the classifier's limit of ${MAX_CHANNELS}`);
  }
}
