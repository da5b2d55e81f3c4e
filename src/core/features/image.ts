// The `image` feature source: the image's own channels (intensity for grey images, R, G, B for colour), as
// they are; standardized afterwards like every source. A small group that, with features.groupNormalize,
// weighs as much as a network's hundreds of channels: the colour of a stain or the darkness of a spot.

import type { Gpu } from '../gpu.ts';
import type { GpuFeatures, ImageTensor } from '../types.ts';
import type { FeatureExtractor, HostFeatures } from './extractor.ts';

export function imageChannelNames(channels: number): string[] {
  return channels === 3 ? ['image.R', 'image.G', 'image.B'] : Array.from({ length: channels }, (_, c) => (channels === 1 ? 'image.I' : `image.${c}`));
}

export function imageExtractor(): FeatureExtractor {
  return {
    name: 'image',
    async extract(gpu: Gpu, image: ImageTensor): Promise<GpuFeatures> {
      const { width, height, channels } = image;
      return { chunks: [{ data: gpu.upload(image.data), channels }], channels, width, height, names: imageChannelNames(channels) };
    },
    // Already on the host, at the working resolution: one full-resolution layer, no GPU work.
    async extractHost(_gpu: Gpu, image: ImageTensor): Promise<HostFeatures> {
      const { width, height, channels } = image;
      return { layers: [{ data: image.data, channels, width, height }], channels, width, height, names: imageChannelNames(channels) };
    },
  };
}
