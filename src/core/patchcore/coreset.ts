// PatchCore's greedy coreset on the GPU (Roth et al. 2022, after Sener and Savarese's k-center greedy): the
// memory bank keeps the patches that best cover all nominal patches. Distances are computed on a seeded
// Gaussian random projection to `projectionDims` when the patches have more channels than that.

import { TttError } from '../errors.ts';
import { ceilDiv, type Gpu, type GpuArray } from '../gpu.ts';
import { COUT_BLOCK, NET_WG, netKernels } from '../features/mobilenet/kernels.ts';
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
  let projection: { weights: GpuArray; bias: GpuArray; coutPad: number } | null = null;
  if (project) {
    const coutPad = Math.ceil(dims / COUT_BLOCK) * COUT_BLOCK;
    const r = projectionMatrix(channels, dims, options.seed);
    const w = new Float32Array(channels * coutPad);
    for (let c = 0; c < channels; c++) w.set(r.subarray(c * dims, (c + 1) * dims), c * coutPad);
    projection = { weights: gpu.upload(w), bias: gpu.alloc(coutPad, true), coutPad };
  }
  const parts: PointPart[] = [];
  let partBase = 0;
  for (let base = 0; base < size; base += perPart) {
    const n = Math.min(perPart, size - base);
    const padded = Math.ceil(n / POINT_BLOCK) * POINT_BLOCK;
    const t = new Float32Array(channels * padded);
    for (let i = 0; i < n; i++) for (let k = 0; k < channels; k++) t[k * padded + i] = points[(base + i) * channels + k];
    let data = gpu.upload(t);
    if (projection) {
      const projected = gpu.alloc(dims * padded);
      gpu.run(
        netKernels.pointwise,
        { stride4: padded / 4, cin: channels, cout: dims, coutPad4: projection.coutPad / 4, lo: -F32_MAX, hi: F32_MAX },
        { input: data, weights: projection.weights, bias: projection.bias, output: projected },
        [ceilDiv(padded / 4, NET_WG), projection.coutPad / COUT_BLOCK, 1],
      );
      gpu.release(data);
      data = projected;
    }
    const n4 = padded / 4;
    const part = { data, minDist: gpu.alloc(padded), base, count: n, n4, partBase };
    partBase += ceilDiv(n4, CORESET_WG);
    parts.push(part);
  }
  if (projection) gpu.release(projection.weights, projection.bias);
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
