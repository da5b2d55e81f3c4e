// The kernels of the built-in PatchCore scorer (shaders/knn.wgsl, shaders/rerank.wgsl, shaders/coreset.wgsl,
// shaders/bankrows.wgsl, shaders/holes.wgsl), declared once.

import type { KernelSpec } from '../gpu.ts';

/** Invocations per kNN workgroup: each holds 4 queries x 8 bank entries (measured best on lavapipe: 16-32). */
export const KNN_WG = 16;
/** Query vec4s of one knnSlice workgroup: two per invocation (shaders/knn.wgsl). */
export const KNN_SLICE_WG_QUERIES4 = 2 * KNN_WG;
/** Bank entries one kNN workgroup row scans. */
export const KNN_SLICE = 4096;
export const CORESET_WG = 64;
export const RERANK_WG = 64;
export const BANK_WG = 64;
/** Channels one bankTranspose invocation copies (KB in shaders/bankrows.wgsl). */
export const BANK_TRANSPOSE_CHANNELS = 64;

const knnParams: KernelSpec['params'] = [
  ['nq4', 'u32'], ['nb', 'u32'], ['dims', 'u32'], ['slice', 'u32'], ['base', 'u32'], ['slices', 'u32'], ['first', 'u32'], ['nq', 'u32'],
];
const coresetParams: KernelSpec['params'] = [
  ['n4', 'u32'], ['count', 'u32'], ['dims', 'u32'], ['base', 'u32'], ['partBase', 'u32'], ['nparts', 'u32'], ['iter', 'u32'],
];

const rerankParams: KernelSpec['params'] = [
  ['nq', 'u32'], ['nq4', 'u32'], ['dims', 'u32'], ['count', 'u32'], ['base', 'u32'], ['cands', 'u32'], ['first', 'u32'], ['last', 'u32'],
];

const bankParams: KernelSpec['params'] = [['channels', 'u32'], ['count', 'u32'], ['src', 'u32'], ['dst', 'u32'], ['nb', 'u32']];

const knn = (entryPoint: string, bindings: (string | null)[]): KernelSpec => ({
  name: `knn.${entryPoint}`, shaders: ['knn'], entryPoint, workgroupSize: KNN_WG, params: knnParams, bindings,
});
const coreset = (entryPoint: string, bindings: (string | null)[], workgroupSize = CORESET_WG): KernelSpec => ({
  name: `coreset.${entryPoint}`, shaders: ['coreset'], entryPoint, workgroupSize, params: coresetParams, bindings,
});

export const patchcoreKernels = {
  knnSlice: knn('knnSlice', ['queries', 'bank', 'bankNorm', 'partMin', 'partIdx']),
  knnMerge: knn('knnMerge', [null, null, null, 'partMin', 'partIdx', 'bestMin', 'bestIdx']),
  knnExact: knn('knnExact', ['queries', 'bank', null, null, null, null, 'chosen', 'distance']),
  knnRerank: {
    name: 'rerank.knnRerank', shaders: ['rerank'], entryPoint: 'knnRerank', workgroupSize: RERANK_WG, params: rerankParams,
    bindings: ['queries', 'bank', 'cand', 'bestMin', 'bestIdx', 'distance'],
  },
  bankTranspose: {
    name: 'bankrows.bankTranspose', shaders: ['bankrows'], entryPoint: 'bankTranspose', workgroupSize: BANK_WG, params: bankParams, bindings: ['rows', 'planar'],
  },
  bankNorms: {
    name: 'bankrows.bankNorms', shaders: ['bankrows'], entryPoint: 'bankNorms', workgroupSize: BANK_WG, params: bankParams, bindings: [null, null, 'planarIn', 'norms'],
  },
  fillHoles: {
    name: 'holes.fillHoles', shaders: ['validity', 'holes'], entryPoint: 'fillHoles', workgroupSize: 256, params: [['n', 'u32']], bindings: ['distance', 'valid'],
  },
  coresetInit: coreset('coresetInit', [null, null, 'minDist']),
  coresetUpdate: coreset('coresetUpdate', ['points', 'center', 'minDist', 'partVal', 'partIdx']),
  coresetSelect: coreset('coresetSelect', [null, null, null, 'partVal', 'partIdx', 'selected'], 256),
  coresetCenter: coreset('coresetCenter', ['points', 'center', null, null, null, 'selected']),
} satisfies Record<string, KernelSpec>;
