// The memory bank on the GPU and the nearest-neighbour search of PatchCore's scoring: the bank is split
// across as many buffers as the binding limit requires, each scanned in slices by shaders/knn.wgsl.

import { TttError } from '../errors.ts';
import { ceilDiv, type Gpu, type GpuArray } from '../gpu.ts';
import { projectPlanar, releaseProjection, uploadProjection, type GpuProjection } from './coreset.ts';
import { BANK_TRANSPOSE_CHANNELS, BANK_WG, KNN_SLICE, KNN_SLICE_WG_QUERIES4, KNN_WG, patchcoreKernels, RERANK_WG } from './kernels.ts';

const FAR = 3.0e38;

export interface GpuBankPart {
  /** Dimension-major entries [channels][nb] (nb: count rounded up to 8, padding zero). */
  readonly data: GpuArray;
  /** |b|^2 per entry, FAR for the padding. */
  readonly norms: GpuArray;
  /** Global index of the first entry. */
  readonly base: number;
  readonly count: number;
  readonly nb: number;
}

export interface GpuBank {
  readonly channels: number;
  readonly size: number;
  readonly parts: readonly GpuBankPart[];
}

/** Entries per bank buffer: as many slices as one binding holds. */
export function bankPartSize(maxElements: number, channels: number): number {
  const fit = Math.floor(maxElements / channels);
  if (fit >= KNN_SLICE) return Math.floor(fit / KNN_SLICE) * KNN_SLICE;
  if (fit < 8) throw new TttError('TOO_LARGE', `${channels} channels per patch exceed the device's binding limit`);
  return Math.floor(fit / 8) * 8;
}

/** Uploads a bank of `features.length / channels` patches stored patch-major ([patches][channels]). */
export function uploadBank(gpu: Gpu, features: Float32Array, channels: number, partSize = bankPartSize(gpu.maxElements, channels)): GpuBank {
  const size = features.length / channels;
  if (!Number.isInteger(size) || size < 1) throw new TttError('INVALID_INPUT', `a bank of ${features.length} values is not a whole number of ${channels}-channel patches`);
  const parts: GpuBankPart[] = [];
  for (let base = 0; base < size; base += partSize) {
    const count = Math.min(partSize, size - base);
    const nb = Math.ceil(count / 8) * 8;
    const t = new Float32Array(channels * nb);
    const norms = new Float32Array(nb).fill(FAR);
    for (let i = 0; i < count; i++) {
      let s = 0;
      const row = (base + i) * channels;
      for (let k = 0; k < channels; k++) {
        const v = features[row + k];
        t[k * nb + i] = v;
        s += v * v;
      }
      norms[i] = s;
    }
    parts.push({ data: gpu.upload(t), norms: gpu.upload(norms), base, count, nb });
  }
  return { channels, size, parts };
}

/** Releases a bank; `free`: its buffers are destroyed instead of pooled. */
export function releaseBank(gpu: Gpu, bank: GpuBank, free = false): void {
  for (const p of bank.parts) (free ? gpu.free : gpu.release).call(gpu, p.data, p.norms);
}

/**
 * Distance of each of `nq` queries (dimension-major [channels][ceil(nq / 4) * 4]) to its nearest bank entry,
 * and that entry's index. The caller releases both arrays.
 */
export function nearestDistances(gpu: Gpu, bank: GpuBank, queries: GpuArray, nq: number): { distance: GpuArray; index: GpuArray } {
  const nq4 = Math.ceil(nq / 4);
  const bestMin = gpu.alloc(nq4 * 4);
  const bestIdx = gpu.alloc(nq4 * 4);
  const maxSlices = Math.max(...bank.parts.map((p) => Math.ceil(p.nb / KNN_SLICE)));
  const partMin = gpu.alloc(maxSlices * nq4 * 4);
  const partIdx = gpu.alloc(maxSlices * nq4 * 4);
  const common = { nq4, dims: bank.channels, slice: KNN_SLICE, nq };
  bank.parts.forEach((p, i) => {
    const slices = Math.ceil(p.nb / KNN_SLICE);
    const params = { ...common, nb: p.nb, base: p.base, slices, first: i === 0 ? 1 : 0 };
    gpu.run(patchcoreKernels.knnSlice, params, { queries, bank: p.data, bankNorm: p.norms, partMin, partIdx }, [ceilDiv(nq4, KNN_SLICE_WG_QUERIES4), slices, 1]);
    gpu.run(patchcoreKernels.knnMerge, params, { partMin, partIdx, bestMin, bestIdx }, ceilDiv(nq4, KNN_WG));
  });
  const distance = gpu.alloc(nq);
  for (const p of bank.parts) {
    const params = { ...common, nb: p.nb, base: p.base, slices: 0, first: 0 };
    gpu.run(patchcoreKernels.knnExact, params, { queries, bank: p.data, chosen: bestIdx, distance }, ceilDiv(nq, KNN_WG));
  }
  gpu.release(bestMin, partMin, partIdx);
  return { distance, index: bestIdx };
}

/**
 * The approximate search: the bank's patches also held in the seeded random projection of the coreset
 * (projectionDims channels), split into `slices` slices; a query's candidates are the nearest entry of each
 * slice in the projected space (knnSlice), re-ranked by their exact distance in the full space (knnRerank).
 * The distance returned is always the exact distance to the entry chosen; the entry is the true nearest one
 * whenever that entry is the projected-nearest of its own slice.
 */
export interface ProjectedBank {
  /**
   * The full bank's entries patch-major ([count][channels] per buffer), for the re-rank: each candidate's row
   * is contiguous (the dimension-major layout of the exact search puts its channels nb apart, a cache miss each).
   */
  readonly rows: GpuRows;
  /** One buffer: [dims][nb]. */
  readonly projected: GpuBankPart;
  readonly projection: GpuProjection;
  /** Entries per slice (a multiple of 8) and the number of slices (= candidates per query). */
  readonly slice: number;
  readonly slices: number;
}

/** A bank's entries patch-major on the GPU ([count][channels] per buffer), as the file holds them. */
export interface GpuRows {
  readonly channels: number;
  readonly size: number;
  readonly parts: readonly { readonly data: GpuArray; readonly base: number; readonly count: number }[];
}

/** Uploads patch-major entries ([size][channels]) as they are, `perPart` entries per buffer (default: as many as one binding holds). */
export function uploadRows(gpu: Gpu, features: Float32Array, channels: number, perPart = Math.floor(gpu.maxElements / channels)): GpuRows {
  const size = features.length / channels;
  if (!Number.isInteger(size) || size < 1) throw new TttError('INVALID_INPUT', `a bank of ${features.length} values is not a whole number of ${channels}-channel patches`);
  if (Math.floor(gpu.maxElements / channels) < 1) throw new TttError('TOO_LARGE', `${channels} channels per patch exceed the device's binding limit`);
  const per = Math.max(1, Math.min(perPart, Math.floor(gpu.maxElements / channels)));
  const parts: GpuRows['parts'][number][] = [];
  for (let base = 0; base < size; base += per) {
    const count = Math.min(per, size - base);
    parts.push({ data: gpu.upload(features.subarray(base * channels, (base + count) * channels)), base, count });
  }
  return { channels, size, parts };
}

/** Releases uploaded rows; `free`: their buffers are destroyed instead of pooled. */
export function releaseRows(gpu: Gpu, rows: GpuRows, free = false): void {
  (free ? gpu.free : gpu.release).call(gpu, ...rows.parts.map((r) => r.data));
}

/** Bytes of the GPU buffers of `arrays` (what they hold on the device). */
export const gpuBytes = (...arrays: GpuArray[]): number => arrays.reduce((a, x) => a + x.buffer.size, 0);

/** Entries of one bankTranspose dispatch (the x dimension's workgroup limit). */
const TRANSPOSE_ENTRIES = 65535 * BANK_WG;

/**
 * The dimension-major copy ([channels][nb], zero beyond `count`) of the entries [first, first + count) of
 * patch-major rows, written on the GPU (bankTranspose), the entries read across the rows' buffers.
 */
export function planarOfRows(gpu: Gpu, rows: GpuRows, first: number, count: number, nb: number): GpuArray {
  if (first < 0 || count < 1 || first + count > rows.size || nb < count) throw new TttError('INTERNAL', `entries ${first}..${first + count} into ${nb} of a bank of ${rows.size}`);
  const planar = gpu.alloc(rows.channels * nb, nb > count);
  for (const part of rows.parts) {
    const lo = Math.max(first, part.base);
    const hi = Math.min(first + count, part.base + part.count);
    for (let a = lo; a < hi; a += TRANSPOSE_ENTRIES) {
      const n = Math.min(TRANSPOSE_ENTRIES, hi - a);
      const params = { channels: rows.channels, count: n, src: a - part.base, dst: a - first, nb };
      gpu.run(patchcoreKernels.bankTranspose, params, { rows: part.data, planar }, [ceilDiv(n, BANK_WG), ceilDiv(rows.channels, BANK_TRANSPOSE_CHANNELS), 1]);
    }
  }
  return planar;
}

/** |b|^2 of each of the `count` entries of dimension-major [channels][nb] data, FAR for the padding (bankNorms). */
export function planarNorms(gpu: Gpu, planar: GpuArray, channels: number, count: number, nb: number): GpuArray {
  const norms = gpu.alloc(nb);
  gpu.run(patchcoreKernels.bankNorms, { channels, count, src: 0, dst: 0, nb }, { planarIn: planar, norms }, ceilDiv(nb, BANK_WG));
  return norms;
}

/** The dimension-major bank of the exact search from patch-major rows on the GPU (no host copy; `rows` stay the caller's). */
export function bankOfRows(gpu: Gpu, rows: GpuRows, partSize = bankPartSize(gpu.maxElements, rows.channels)): GpuBank {
  const parts: GpuBankPart[] = [];
  for (let base = 0; base < rows.size; base += partSize) {
    const count = Math.min(partSize, rows.size - base);
    const nb = Math.ceil(count / 8) * 8;
    const data = planarOfRows(gpu, rows, base, count, nb);
    parts.push({ data, norms: planarNorms(gpu, data, rows.channels, count, nb), base, count, nb });
  }
  return { channels: rows.channels, size: rows.size, parts };
}

/**
 * The projected bank of patch-major rows on the GPU, in `slices` slices, or null when its projection does
 * not fit one buffer (then the exact search is used and `rows` stay the caller's). Otherwise `rows` become
 * the projected bank's (its re-rank reads them; releaseProjectedBank releases them). Nothing is read back:
 * the rows are transposed (bankTranspose) in chunks of `chunk` entries (default: as many as one binding
 * holds), each chunk projected (the queries' pointwise product) into its place, and the norms computed on
 * the GPU.
 */
export function projectBank(gpu: Gpu, rows: GpuRows, dims: number, seed: number, slices: number, chunk = Math.floor(gpu.maxElements / rows.channels / 8) * 8): ProjectedBank | null {
  if (!Number.isInteger(slices) || slices < 1) throw new TttError('INVALID_OPTION', `a search in ${slices} slices`);
  const size = rows.size;
  const nb = Math.ceil(size / 8) * 8;
  if (nb * dims > gpu.maxElements) return null;
  const per = Math.max(8, Math.min(Math.floor(chunk / 8) * 8, Math.floor(gpu.maxElements / rows.channels / 8) * 8));
  const projection = uploadProjection(gpu, rows.channels, dims, seed);
  let data: GpuArray | null = null;
  for (let base = 0; base < size; base += per) {
    const count = Math.min(per, size - base);
    const cnb = Math.ceil(count / 8) * 8;
    const planar = planarOfRows(gpu, rows, base, count, cnb);
    const projected = projectPlanar(gpu, projection, planar, cnb);
    // A one-off buffer the size of the bank: destroyed, not pooled (the pool would keep it for good).
    gpu.free(planar);
    if (base === 0 && count === size) {
      data = projected;
      break;
    }
    data ??= gpu.alloc(dims * nb, true);
    for (let k = 0; k < dims; k++) gpu.copy(projected, data, count, k * cnb, k * nb + base);
    gpu.free(projected);
  }
  const norms = planarNorms(gpu, data!, dims, size, nb);
  const slice = Math.ceil(nb / slices / 8) * 8;
  return { rows, projected: { data: data!, norms, base: 0, count: size, nb }, projection, slice, slices: Math.ceil(nb / slice) };
}

/** Releases a projected bank; `free`: its buffers are destroyed instead of pooled (a loaded bank's, see PatchCoreScorer.release). */
export function releaseProjectedBank(gpu: Gpu, bank: ProjectedBank, free = false): void {
  (free ? gpu.free : gpu.release).call(gpu, bank.projected.data, bank.projected.norms);
  releaseRows(gpu, bank.rows, free);
  releaseProjection(gpu, bank.projection);
}

/** The approximate nearest entry of each query (as nearestDistances, same layout); the caller releases both arrays. */
export function projectedNearest(gpu: Gpu, bank: ProjectedBank, queries: GpuArray, nq: number): { distance: GpuArray; index: GpuArray } {
  const nq4 = Math.ceil(nq / 4);
  const pq = projectPlanar(gpu, bank.projection, queries, nq4 * 4);
  const p = bank.projected;
  const partMin = gpu.alloc(bank.slices * nq4 * 4);
  const cand = gpu.alloc(bank.slices * nq4 * 4);
  const sliceParams = { nq4, dims: bank.projection.dims, slice: bank.slice, nq, nb: p.nb, base: 0, slices: bank.slices, first: 1 };
  gpu.run(patchcoreKernels.knnSlice, sliceParams, { queries: pq, bank: p.data, bankNorm: p.norms, partMin, partIdx: cand }, [ceilDiv(nq4, KNN_SLICE_WG_QUERIES4), bank.slices, 1]);
  gpu.release(pq, partMin);
  const bestMin = gpu.alloc(nq);
  const bestIdx = gpu.alloc(nq);
  const distance = gpu.alloc(nq);
  const parts = bank.rows.parts;
  parts.forEach((part, i) => {
    const params = { nq, nq4, dims: bank.rows.channels, count: part.count, base: part.base, cands: bank.slices, first: i === 0 ? 1 : 0, last: i === parts.length - 1 ? 1 : 0 };
    gpu.run(patchcoreKernels.knnRerank, params, { queries, bank: part.data, cand, bestMin, bestIdx, distance }, ceilDiv(nq, RERANK_WG));
  });
  gpu.release(cand, bestMin);
  return { distance, index: bestIdx };
}
