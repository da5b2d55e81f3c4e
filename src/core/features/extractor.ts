// The feature-extractor interface. An extractor turns the working-resolution image into feature maps on
// the GPU; maps at a coarser stride are resampled to the working resolution by the extractor (see
// resample.ts). The pipeline standardizes every channel afterwards, whatever the source.

import type { Gpu } from '../gpu.ts';
import type { CoarseFeatures } from '../coarseFeatures.ts';
import type { FeatureGroup, GpuFeatures, ImageTensor } from '../types.ts';

/** Feature maps on the host: coarse layers standing for their resampling to the working resolution, raw (not standardized). */
export interface HostFeatures extends CoarseFeatures {
  readonly names: readonly string[];
  /** As GpuFeatures.groups. */
  readonly groups?: readonly FeatureGroup[];
}

export interface FeatureExtractor {
  readonly name: string;
  extract(gpu: Gpu, image: ImageTensor): Promise<GpuFeatures>;
  /**
   * The same maps delivered to the host (for the host path of the test-time stage) as coarse layers whose
   * bilinear resampling to the image's size equals `extract`'s maps up to rounding (src/core/coarseFeatures.ts),
   * where the extractor can do that more cheaply than `extract` followed by a read-back. Optional: without
   * it the host path reads `extract`'s maps back.
   */
  extractHost?(gpu: Gpu, image: ImageTensor): Promise<HostFeatures>;
}
