// PatchCore's greedy coreset on the GPU (Roth et al. 2022, after Sener and Savarese's k-center greedy): the
// memory bank keeps the patches that best cover all nominal patches. Distances are computed on a seeded
// Gaussian random projection to `projectionDims` when the patches have more channels than that.

import { TttError } from '../errors.ts';
import { ceilDiv, type Gpu, type GpuArray } from '../gpu.ts';
import { COUT_BLOCK, NET_WG, netKernels, pointwiseTiles } from '../features/mobilenet/kernels.ts';
import { pcgHash } from '../rng.ts';
import { CORESET_WG, patchcoreKernels } from './kernels.ts';

export interface CoresetOptions {
  /** Channels of the random projection used for the distances (none when the patches have no more). */
  readonly projectionDims: number;
  readonly seed: number;
  /** Called every few hundred selections with (selected, total). */
  readonly onProgress?: (done: number, total: number) => void;
  /** Points per GPU buffer (default: as many as one binding holds; tests use less to exercise the split). */
  readonly pointsPerBuffer?: number;
}

const F32_MAX = 3.4028234663852886e38;
/** Points per buffer are a multiple of this (4 per invocation x the workgroup). */
const POINT_BLOCK = 4 * CORESET_WG;
const SYNC_EVERY = 256;

/** The seeded projection [channels][dims] (N(0, 1/dims) entries), shared with the reference. */
export function projectionMatrix(channels: number, dims: number, seed: number): Float32Array {
  const m = new Float32Array(channels * dims);
  const key = pcgHash((seed ^ 0x70726f6a) >>> 0);
  for (let i = 0; i < m.length; i++) {
    const u1 = (pcgHash((key ^ (2 * i)) >>> 0) + 1) / 4294967297;
    const u2 = pcgHash((key ^ (2 * i + 1)) >>> 0) / 4294967296;
    m[i] = (Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)) / Math.sqrt(dims);
  }
  return m;
}

/** The first selection: a seeded index, as patchcore-inspection starts from a random patch. */
export const coresetStart = (size: number, seed: number): number => pcgHash((seed ^ 0x636f7265) >>> 0) % size;

interface PointPart {
  data: GpuArray;
  minDist: GpuArray;
  base: number;
  count: number;
  n4: number;
  partBase: number;
}

/** The seeded projection on the GPU: pointwise weights [channels][coutPad] and a zero bias. */
export interface GpuProjection {
  readonly weights: GpuArray;
  readonly bias: GpuArray;
  readonly coutPad: number;
  readonly channels: number;
  readonly dims: number;
}

export function uploadProjection(gpu: Gpu, channels: number, dims: number, seed: number): GpuProjection {
  const coutPad = Math.ceil(dims / COUT_BLOCK) * COUT_BLOCK;
  const r = projectionMatrix(channels, dims, seed);
  const w = new Float32Array(channels * coutPad);
  for (let c = 0; c < channels; c++) w.set(r.subarray(c * dims, (c + 1) * dims), c * coutPad);
  return { weights: gpu.upload(w), bias: gpu.alloc(coutPad, true), coutPad, channels, dims };
}

export function releaseProjection(gpu: Gpu, p: GpuProjection): void {
  gpu.release(p.weights, p.bias);
}

/**
 * Projects dimension-major points [channels][padded] (padded: a multiple of 4) into a new [dims][padded]
 * array (the network's pointwise product: each output sums its channels in order, whatever the batch).
 * The narrow tile: for the 128-d projection of 1,024 patches the network's wider tiles gave the same values
 * and measured 0.95-1.2x on lavapipe under load (bench notes in docs/benchmarks.md), no clear gain.
 */
export function projectPlanar(gpu: Gpu, p: GpuProjection, data: GpuArray, padded: number): GpuArray {
  const projected = gpu.alloc(p.dims * padded);
  const params = { stride4: padded / 4, cin: p.channels, cout: p.dims, coutPad4: p.coutPad / 4, lo: -F32_MAX, hi: F32_MAX };
  const buffers = { input: data, weights: p.weights, bias: p.bias, output: projected };
  // The larger register tile where the dimensions allow it (the same sums in the same order: the same values).
  const wide = projectionTile === 'wider' ? pointwiseTiles.wider : null;
  if (wide && p.coutPad % wide.couts === 0) {
    gpu.run(wide.plain, params, buffers, [ceilDiv(padded / 4, wide.pixels4 * wide.workgroup), p.coutPad / wide.couts, 1]);
  } else {
    gpu.run(netKernels.pointwise, params, buffers, [ceilDiv(padded / 4, NET_WG), p.coutPad / COUT_BLOCK, 1]);
  }
  return projected;
}

let projectionTile: 'narrow' | 'wider' = 'wider';
/** For benchmarks and tests: the projection's pointwise tile (`wider` where the dimensions are a multiple of its 16 channels). */
export function setProjectionTile(tile: 'narrow' | 'wider'): void {
  projectionTile = tile;
}

/** The projection of dimension-major points [channels][padded], read back as [dims][padded]. */
export async function readProjected(gpu: Gpu, p: GpuProjection, data: GpuArray, padded: number): Promise<Float32Array> {
  const projected = projectPlanar(gpu, p, data, padded);
  try {
    return await gpu.readF32(projected, p.dims * padded);
  } finally {
    gpu.release(projected);
  }
}

/**
 * Greedy k-center selection on the host, for small point sets (one image's patches): `count` of the
 * patch-major points ([size][dims]) in selection order, starting from coresetStart(size, seed); f32
 * arithmetic in the same order as the GPU kernel and the reference (ties go to the lowest index).
 */
export function hostGreedy(points: Float32Array, dims: number, count: number, seed: number): Uint32Array {
  const size = points.length / dims;
  if (count >= size) return Uint32Array.from({ length: size }, (_, i) => i);
  const f = Math.fround;
  const minDist = new Float32Array(size).fill(3.0e38);
  const out = new Uint32Array(count);
  out[0] = coresetStart(size, seed);
  for (let it = 1; it < count; it++) {
    const c = out[it - 1] * dims;
    let best = -2;
    let bi = 0;
    for (let i = 0, o = 0; i < size; i++, o += dims) {
      let acc = 0;
      for (let k = 0; k < dims; k++) {
        const d = f(points[o + k] - points[c + k]);
        acc = f(acc + f(d * d));
      }
      if (acc < minDist[i]) minDist[i] = acc;
      if (minDist[i] > best) {
        best = minDist[i];
        bi = i;
      }
    }
    out[it] = bi;
  }
  return out;
}

/** Indices of `count` patches chosen greedily from `points` ([size][channels], patch-major), in selection order. */
export async function greedyCoreset(gpu: Gpu, points: Float32Array, channels: number, count: number, options: CoresetOptions): Promise<Uint32Array> {
  const size = points.length / channels;
  if (!Number.isInteger(size) || size < 1) throw new TttError('INVALID_INPUT', `${points.length} values are not a whole number of ${channels}-channel patches`);
  if (!Number.isInteger(count) || count < 1) throw new TttError('INVALID_OPTION', `a coreset of ${count} patches`);
  if (count >= size) return Uint32Array.from({ length: size }, (_, i) => i);
  const project = channels > options.projectionDims;
  const dims = project ? options.projectionDims : channels;
  const fit = Math.floor(gpu.maxElements / Math.max(channels, dims) / POINT_BLOCK) * POINT_BLOCK;
  const perPart = Math.min(fit, Math.ceil((options.pointsPerBuffer ?? fit) / POINT_BLOCK) * POINT_BLOCK);
  if (perPart < POINT_BLOCK) throw new TttError('TOO_LARGE', `${channels} channels per patch exceed the device's binding limit`);
  const projection = project ? uploadProjection(gpu, channels, dims, options.seed) : null;
  const parts: PointPart[] = [];
  let partBase = 0;
  for (let base = 0; base < size; base += perPart) {
    const n = Math.min(perPart, size - base);
    const padded = Math.ceil(n / POINT_BLOCK) * POINT_BLOCK;
    const t = new Float32Array(channels * padded);
    for (let i = 0; i < n; i++) for (let k = 0; k < channels; k++) t[k * padded + i] = points[(base + i) * channels + k];
    let data = gpu.upload(t);
    if (projection) {
      const projected = projectPlanar(gpu, projection, data, padded);
      gpu.release(data);
      data = projected;
    }
    const n4 = padded / 4;
    const part = { data, minDist: gpu.alloc(padded), base, count: n, n4, partBase };
    partBase += ceilDiv(n4, CORESET_WG);
    parts.push(part);
  }
  if (projection) releaseProjection(gpu, projection);
  const nparts = partBase;
  const partVal = gpu.alloc(nparts);
  const partIdx = gpu.alloc(nparts);
  const center = gpu.alloc(dims);
  const selected = gpu.alloc(count);
  const params = (p: PointPart, iter: number) => ({ n4: p.n4, count: p.count, dims, base: p.base, partBase: p.partBase, nparts, iter });
  try {
    gpu.write(selected, new Uint32Array([coresetStart(size, options.seed)]));
    for (const p of parts) {
      gpu.run(patchcoreKernels.coresetInit, params(p, 0), { minDist: p.minDist }, ceilDiv(p.n4, CORESET_WG));
      gpu.run(patchcoreKernels.coresetCenter, params(p, 0), { points: p.data, center, selected }, ceilDiv(dims, CORESET_WG));
    }
    for (let iter = 1; iter < count; iter++) {
      for (const p of parts) {
        gpu.run(patchcoreKernels.coresetUpdate, params(p, iter), { points: p.data, center, minDist: p.minDist, partVal, partIdx }, ceilDiv(p.n4, CORESET_WG));
      }
      gpu.run(patchcoreKernels.coresetSelect, params(parts[0], iter), { partVal, partIdx, selected }, [1, 1, 1]);
      for (const p of parts) gpu.run(patchcoreKernels.coresetCenter, params(p, iter), { points: p.data, center, selected }, ceilDiv(dims, CORESET_WG));
      if (iter % SYNC_EVERY === 0) {
        await gpu.sync();
        options.onProgress?.(iter, count);
      }
    }
    return await gpu.readU32(selected, count);
  } finally {
    for (const p of parts) gpu.release(p.data, p.minDist);
    gpu.release(partVal, partIdx, center, selected);
  }
}
