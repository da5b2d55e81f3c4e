// 3-D features of an organized point cloud (shaders/geometry.wgsl): the signed distance to a
// least-squares background plane, and per scale the local normal (3 channels), surface variation, spread
// of the plane distance and normal deviation; 1 + 6 per scale channels, computed at the point cloud's own
// resolution, resampled bilinearly to the working resolution and standardized over the valid pixels
// (holes get 0). The classifier sees them next to the image features (features.modality).

import { TttError } from '../errors.ts';
import type { Gpu, GpuArray } from '../gpu.ts';
import { PLANE_CHUNK, imageGroups, kernels } from '../kernels.ts';
import type { GpuFeatures, PointCloud } from '../types.ts';
import { pointValidity, releaseValidity, uploadValidity, type GpuValidity } from '../validity.ts';
import { resampleBilinear } from './resample.ts';
import { standardizeFeatures } from './standardize.ts';

export const GEOMETRY_SCALE_CHANNELS = ['nx', 'ny', 'nz', 'curvature', 'depthStd', 'normalDev'] as const;

export function geometryChannelNames(scales: readonly number[]): string[] {
  const names = ['3d.depth'];
  for (const s of scales) for (const c of GEOMETRY_SCALE_CHANNELS) names.push(`3d.s${s}.${c}`);
  return names;
}

export const geometryChannels = (scales: readonly number[]): number => 1 + GEOMETRY_SCALE_CHANNELS.length * scales.length;

/** A point cloud ready for the kernels: planar x, y, z with holes zeroed, its validity, and an origin. */
export interface PreparedPointCloud {
  readonly points: Float32Array;
  readonly valid: Uint8Array;
  readonly width: number;
  readonly height: number;
  /** A valid point (the first in raster order): coordinates are taken relative to it. */
  readonly origin: readonly [number, number, number];
  readonly validCount: number;
}

/** `valid`: the cloud's pointValidity when the caller has it already (validatePointCloud returns it). */
export function preparePointCloud(pc: PointCloud, valid?: Uint8Array): PreparedPointCloud {
  const { width, height } = pc;
  const n = width * height;
  if (pc.data.length !== 3 * n) throw new TttError('SIZE_MISMATCH', `the point cloud holds ${pc.data.length} values, expected ${width}x${height}x3`);
  valid ??= pointValidity(pc);
  const points = new Float32Array(3 * n);
  let origin: [number, number, number] | null = null;
  let validCount = 0;
  for (let i = 0; i < n; i++) {
    if (!valid[i]) continue;
    validCount++;
    const x = pc.data[3 * i];
    const y = pc.data[3 * i + 1];
    const z = pc.data[3 * i + 2];
    points[i] = x;
    points[n + i] = y;
    points[2 * n + i] = z;
    origin ??= [x, y, z];
  }
  if (!origin) throw new TttError('INVALID_INPUT', 'the point cloud has no valid point (every point is (0, 0, 0) or NaN)');
  return { points, valid, width, height, origin, validCount };
}

/** The plane z = a x + b y + c (coordinates relative to the origin) and 1 / |(-a, -b, 1)|. */
export interface BackgroundPlane {
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly inv: number;
}

/**
 * Least squares from the sums N, Sx, Sy, Sz, Sxx, Sxy, Syy, Sxz, Syz (in f64, on the host): the normal
 * equations [Sxx Sxy Sx; Sxy Syy Sy; Sx Sy N] (a, b, c) = (Sxz, Syz, Sz). Degenerate layouts (fewer than 3
 * points, all on a line) fall back to the horizontal plane through the mean depth.
 */
export function solvePlane(s: ArrayLike<number>): BackgroundPlane {
  const [N, Sx, Sy, Sz, Sxx, Sxy, Syy, Sxz, Syz] = Array.from(s);
  const flat = { a: 0, b: 0, c: N > 0 ? Sz / N : 0, inv: 1 };
  if (N < 3) return flat;
  // Centred sums: the 2x2 system of the slopes, then the intercept.
  const mx = Sx / N;
  const my = Sy / N;
  const mz = Sz / N;
  const cxx = Sxx / N - mx * mx;
  const cxy = Sxy / N - mx * my;
  const cyy = Syy / N - my * my;
  const cxz = Sxz / N - mx * mz;
  const cyz = Syz / N - my * mz;
  const det = cxx * cyy - cxy * cxy;
  if (!(det > 1e-12 * Math.max(cxx * cyy, Number.MIN_VALUE))) return flat;
  const a = (cxz * cyy - cyz * cxy) / det;
  const b = (cyz * cxx - cxz * cxy) / det;
  const c = mz - a * mx - b * my;
  return { a, b, c, inv: 1 / Math.sqrt(1 + a * a + b * b) };
}

/**
 * The sampling window of a scale: `scale` is a radius in working-resolution pixels; on a denser point
 * cloud the window keeps (2 scale + 1)^2 samples, spaced by the density ratio, so it covers the same area.
 */
export function geometryWindow(scale: number, pointCloud: { width: number }, working: { width: number }): { radius: number; step: number } {
  const ratio = pointCloud.width / working.width;
  if (ratio >= 1) return { radius: Math.max(1, Math.round(scale)), step: Math.max(1, Math.round(ratio)) };
  return { radius: Math.max(1, Math.round(scale * ratio)), step: 1 };
}

/** The plane sums on the GPU: per-workgroup partials in f32, added on the host in f64. */
async function planeFit(gpu: Gpu, pc: PreparedPointCloud, points: GpuArray, valid: GpuValidity): Promise<BackgroundPlane> {
  const n = pc.width * pc.height;
  const parts = Math.ceil(n / PLANE_CHUNK);
  const out = gpu.alloc(parts * 9, true);
  gpu.run(kernels.planeSums, geoParams(pc, null, 0, { radius: 0, step: 1 }), { points, valid: valid.data, parts: out }, parts);
  const partial = await gpu.readF32(out, parts * 9);
  gpu.release(out);
  const sums = new Float64Array(9);
  for (let k = 0; k < parts; k++) for (let j = 0; j < 9; j++) sums[j] += partial[k * 9 + j];
  return solvePlane(sums);
}

function geoParams(pc: PreparedPointCloud, plane: BackgroundPlane | null, outChannel: number, window: { radius: number; step: number }) {
  const p = plane ?? { a: 0, b: 0, c: 0, inv: 1 };
  return {
    width: pc.width,
    height: pc.height,
    radius: window.radius,
    step: window.step,
    outChannel,
    ox: pc.origin[0],
    oy: pc.origin[1],
    oz: pc.origin[2],
    a: p.a,
    b: p.b,
    c: p.c,
    inv: p.inv,
  };
}

/**
 * The raw 3-D channels at the point cloud's resolution (not resampled, not standardized), one buffer of
 * geometryChannels(scales) planes, and the plane they were measured against.
 */
export async function geometryChannelsRaw(
  gpu: Gpu,
  pc: PreparedPointCloud,
  scales: readonly number[],
  working: { width: number; height: number },
  /** pc.valid already on the GPU (the caller keeps and releases it); uploaded here when absent. */
  uploaded?: GpuValidity,
): Promise<{ data: GpuArray; plane: BackgroundPlane }> {
  const points = gpu.upload(pc.points);
  const valid = uploaded ?? uploadValidity(gpu, pc.valid);
  try {
    const plane = await planeFit(gpu, pc, points, valid);
    const channels = geometryChannels(scales);
    const feat = gpu.alloc(channels * pc.width * pc.height);
    const groups = imageGroups(pc.width, pc.height);
    gpu.run(kernels.planeDepth, geoParams(pc, plane, 0, { radius: 0, step: 1 }), { points, valid: valid.data, feat }, groups);
    scales.forEach((scale, k) => {
      const window = geometryWindow(scale, pc, working);
      const params = geoParams(pc, plane, 1 + k * GEOMETRY_SCALE_CHANNELS.length, window);
      gpu.run(kernels.localShape, params, { points, valid: valid.data, feat }, groups);
      gpu.run(kernels.normalDeviation, params, { valid: valid.data, feat }, groups);
    });
    return { data: feat, plane };
  } finally {
    gpu.release(points);
    if (!uploaded) releaseValidity(gpu, valid);
  }
}

/**
 * The 3-D features at the working resolution, standardized over `validity` (the point cloud's validity
 * resampled to the working resolution, see validity.ts), holes set to 0.
 */
export async function geometryFeatures(
  gpu: Gpu,
  pc: PreparedPointCloud,
  working: { width: number; height: number },
  scales: readonly number[],
  validity: GpuValidity,
): Promise<GpuFeatures> {
  const channels = geometryChannels(scales);
  const { data: raw } = await geometryChannelsRaw(gpu, pc, scales, working);
  const same = pc.width === working.width && pc.height === working.height;
  const data = same ? raw : resampleBilinear(gpu, raw, channels, pc, working);
  if (!same) gpu.release(raw);
  const features: GpuFeatures = { chunks: [{ data, channels }], channels, width: working.width, height: working.height, names: geometryChannelNames(scales) };
  standardizeFeatures(gpu, features, validity);
  return features;
}
