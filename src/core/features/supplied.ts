// Feature maps supplied by the caller (C x h x w, e.g. from a .npy file): uploaded in chunks of whole
// channels that fit the device's binding limit, and resampled to the working resolution.

import type { Gpu } from '../gpu.ts';
import { TttError } from '../errors.ts';
import type { FeatureTensor, GpuFeatures } from '../types.ts';
import { resampleBilinear } from './resample.ts';
import type { FeatureExtractor } from './extractor.ts';

export function suppliedExtractor(features: FeatureTensor): FeatureExtractor {
  return {
    name: 'supplied',
    async extract(gpu: Gpu, image): Promise<GpuFeatures> {
      const { width, height } = image;
      const srcPlane = features.width * features.height;
      const dstPlane = width * height;
      const perChunk = Math.floor(gpu.maxElements / Math.max(srcPlane, dstPlane));
      if (perChunk < 1) throw new TttError('TOO_LARGE', `one feature channel of ${Math.max(srcPlane, dstPlane)} values exceeds the device's binding limit`);
      const chunks = [];
      for (let c0 = 0; c0 < features.channels; c0 += perChunk) {
        const channels = Math.min(perChunk, features.channels - c0);
        const part = gpu.upload(features.data.subarray(c0 * srcPlane, (c0 + channels) * srcPlane));
        if (features.width === width && features.height === height) {
          chunks.push({ data: part, channels });
        } else {
          chunks.push({ data: resampleBilinear(gpu, part, channels, features, image), channels });
          gpu.release(part);
        }
      }
      const names = Array.from({ length: features.channels }, (_, i) => `f${i}`);
      return { chunks, channels: features.channels, width, height, names };
    },
  };
}
