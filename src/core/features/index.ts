// Feature stage: choose the extractor (one source, or several concatenated), extract at the working
// resolution, standardize every channel (and weigh channel groups, features/groups.ts).

import type { Gpu } from '../gpu.ts';
import { TttError } from '../errors.ts';
import { MAX_CHANNELS } from '../kernels.ts';
import type { FeatureSourceName, Modality, TttOptions } from '../options.ts';
import type { FeatureGroup, FeatureTensor, GpuFeatures, ImageTensor, PointCloud } from '../types.ts';
import type { FeatureExtractor } from './extractor.ts';
import { combinedExtractor, type NamedSource } from './combined.ts';
import { filterbankExtractor } from './filterbank.ts';
import { imageExtractor } from './image.ts';
import { mobilenetExtractor } from './mobilenet/extractor.ts';
import { resnetExtractor } from './resnet/extractor.ts';
import { standardizeFeatures } from './standardize.ts';
import { suppliedExtractor } from './supplied.ts';

export type { FeatureExtractor } from './extractor.ts';

/** The extractor the options and inputs ask for (supplied features win when given). */
export function chooseExtractor(options: TttOptions, supplied?: FeatureTensor): FeatureExtractor {
  if (supplied) return suppliedExtractor(supplied);
  const kind = options.features.extractor;
  if (kind === 'supplied') {
    throw new TttError('INVALID_INPUT', 'features.extractor=supplied but no feature maps were given');
  }
  if (kind === 'combined') return combinedExtractor(combinedSources(options), options.features.groupNormalize);
  return sourceExtractor(options, kind);
}

const RESNET_SOURCE = 'resnet50:';

/**
 * features.sources as extractors, in order; the resnet50:<layer> sources share one run of the network
 * (all their layers), at the place of the first, each layer its own group (the network's channel names
 * start with the layer's).
 */
export function combinedSources(options: TttOptions): NamedSource[] {
  const names = options.features.sources;
  const stages = names.filter((n) => n.startsWith(RESNET_SOURCE)).map((n) => n.slice(RESNET_SOURCE.length));
  const out: NamedSource[] = [];
  for (const name of names) {
    if (!name.startsWith(RESNET_SOURCE)) {
      out.push({ name, extractor: sourceExtractor(options, name) });
    } else if (name.slice(RESNET_SOURCE.length) === stages[0]) {
      out.push({
        name: 'resnet50',
        extractor: resnetExtractor({ layers: stages, inputSize: options.features.inputSize }),
        groups: (channelNames) => groupsByLayer(channelNames, RESNET_SOURCE),
      });
    }
  }
  return out;
}

/** Consecutive channels named <layer>.<index> as one group per layer, named prefix + layer. */
function groupsByLayer(channelNames: readonly string[], prefix: string): FeatureGroup[] {
  const groups: { name: string; channels: number }[] = [];
  for (const c of channelNames) {
    const layer = prefix + c.slice(0, c.lastIndexOf('.'));
    const last = groups[groups.length - 1];
    if (last && last.name === layer) last.channels++;
    else groups.push({ name: layer, channels: 1 });
  }
  return groups;
}

/** One single-extractor feature source of features.sources (or the extractor of features.extractor). */
export function sourceExtractor(options: TttOptions, name: FeatureSourceName | 'resnet50'): FeatureExtractor {
  switch (name) {
    case 'image':
      return imageExtractor();
    case 'filterbank':
      return filterbankExtractor(options.features.sigmas);
    case 'mobilenetv2':
      return mobilenetExtractor({ layers: options.features.layers, inputSize: options.features.inputSize });
    case 'resnet50':
      return resnetExtractor({ layers: options.features.layers, inputSize: options.features.inputSize });
    default:
      throw new TttError('INVALID_OPTION', `option features.sources: ${JSON.stringify(name)} is not a single source`);
  }
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
    // Each part was standardized (and weighed) on its own; groups no longer apply to the whole.
  };
}

export function checkChannelLimit(gpu: Gpu, features: GpuFeatures): void {
  if (features.channels > MAX_CHANNELS) {
    releaseFeatures(gpu, features);
    throw new TttError('TOO_LARGE', `${features.channels} feature channels exceed the classifier's limit of ${MAX_CHANNELS}`);
  }
}
