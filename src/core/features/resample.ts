// Bilinear resampling of planar maps on the GPU (half-pixel centres, edges clamped), used for score
// maps and for feature maps of any resolution.

import type { Gpu, GpuArray } from '../gpu.ts';
import { groupsFor, kernels } from '../kernels.ts';

export function resampleBilinear(
  gpu: Gpu,
  src: GpuArray,
  planes: number,
  from: { width: number; height: number },
  to: { width: number; height: number },
): GpuArray {
  const dst = gpu.alloc(planes * to.width * to.height);
  gpu.run(
    kernels.bilinear,
    {
      srcW: from.width,
      srcH: from.height,
      dstW: to.width,
      dstH: to.height,
      planes,
      scaleX: from.width / to.width,
      scaleY: from.height / to.height,
      pad: 0,
    },
    { src, dst },
    groupsFor(planes * to.width),
  );
  return dst;
}
