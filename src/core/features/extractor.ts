// The feature-extractor interface. An extractor turns the working-resolution image into feature maps on
// the GPU; maps at a coarser stride are resampled to the working resolution by the extractor (see
// resample.ts). The pipeline standardizes every channel afterwards, whatever the source.

import type { Gpu } from '../gpu.ts';
import type { GpuFeatures, ImageTensor } from '../types.ts';

export interface FeatureExtractor {
  readonly name: string;
  extract(gpu: Gpu, image: ImageTensor): Promise<GpuFeatures>;
}
