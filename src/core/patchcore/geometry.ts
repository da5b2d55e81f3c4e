// The 3-D part of the built-in scorer's patch features: the 3-D channels of the point cloud
// (features/geometry.ts, at the point cloud's own resolution, windows sized for the working resolution)
// averaged over the valid points of each patch's box (shaders/pool.wgsl). A patch whose box holds no valid
// point is a hole patch: it is left out of a bank and gets the lowest score of its image's valid patches.

import type { Gpu, GpuArray } from '../gpu.ts';
import { geometryChannels, geometryChannelsRaw, preparePointCloud } from '../features/geometry.ts';
import type { Shape } from '../features/mobilenet/graph.ts';
import { groupsFor, kernels } from '../kernels.ts';
import type { PointCloud } from '../types.ts';
import { releaseValidity, uploadValidity, type GpuValidity } from '../validity.ts';

/** The source box of grid cell i along one axis: [start, end), at least one pixel. */
export function poolBox(i: number, size: number, grid: number): [number, number] {
  const start = Math.floor((i * size) / grid);
  return [start, Math.min(size, Math.max(Math.floor(((i + 1) * size) / grid), start + 1))];
}

/** Valid points per grid cell (row-major over the grid). */
export function poolCounts(valid: Uint8Array, from: Shape, grid: Shape): Uint32Array {
  const out = new Uint32Array(grid.width * grid.height);
  for (let gy = 0; gy < grid.height; gy++) {
    const [y0, y1] = poolBox(gy, from.height, grid.height);
    for (let gx = 0; gx < grid.width; gx++) {
      const [x0, x1] = poolBox(gx, from.width, grid.width);
      let n = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) n += valid[y * from.width + x] ? 1 : 0;
      out[gy * grid.width + gx] = n;
    }
  }
  return out;
}

/**
 * Masked box pooling on the GPU of `channels` planes of `from` size onto `grid`, written dimension-major
 * into `dst` at channel stride `outStride` (shaders/pool.wgsl).
 */
export function poolBoxes(gpu: Gpu, src: GpuArray, channels: number, from: Shape, v: GpuValidity, grid: Shape, dst: GpuArray, outStride: number): void {
  const cells = grid.width * grid.height;
  gpu.run(
    kernels.poolBoxes,
    { srcW: from.width, srcH: from.height, gridW: grid.width, gridH: grid.height, channels, outStride },
    { src, valid: v.data, dst },
    [groupsFor(cells), channels, 1],
  );
}

export interface GeometryPatches {
  /** Dimension-major [channels][ceil(patches / 4) * 4], raw (not standardized); hole patches 0. */
  readonly data: GpuArray;
  readonly channels: number;
  /** 1 where the patch's box holds at least one valid point. */
  readonly valid: Uint8Array;
}

/**
 * The 3-D patch features of one point cloud on the patch grid of a `working`-size image (`cloudValid`: its
 * pointValidity, when the caller has it).
 */
export async function geometryPatchFeatures(
  gpu: Gpu,
  pointCloud: PointCloud,
  working: Shape,
  grid: Shape,
  scales: readonly number[],
  cloudValid?: Uint8Array,
): Promise<GeometryPatches> {
  const pc = preparePointCloud(pointCloud, cloudValid);
  const channels = geometryChannels(scales);
  // One upload of the validity for the 3-D channels and their pooling.
  const valid3d = uploadValidity(gpu, pc.valid);
  try {
    const { data: raw } = await geometryChannelsRaw(gpu, pc, scales, working, valid3d);
    const patches = grid.width * grid.height;
    const stride = Math.ceil(patches / 4) * 4;
    const data = gpu.alloc(channels * stride, true);
    try {
      poolBoxes(gpu, raw, channels, pc, valid3d, grid, data, stride);
    } finally {
      gpu.release(raw);
    }
    const valid = Uint8Array.from(poolCounts(pc.valid, pc, grid), (n) => (n > 0 ? 1 : 0));
    return { data, channels, valid };
  } finally {
    releaseValidity(gpu, valid3d);
  }
}
