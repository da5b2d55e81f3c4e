// The kernel registry: every compute kernel of the core, declared once (shader files, entry point, uniform
// fields, storage bindings in binding order from 1). This module declares the pipeline stages' kernels and
// collects the two families declared beside their runtimes (patchcore/kernels.ts, features/mobilenet/
// kernels.ts) into `allKernels`, the one list that test/core/kernel-specs.test.ts holds to the WGSL.
// The stage modules dispatch these specs through Gpu.run.

import type { KernelSpec } from './gpu.ts';
import { depthwise3x3Kernel, depthwiseKernel, im2colKernel, localMean3Kernel, localMeanKernel, maxPoolKernel, netKernels, pointwiseTiles } from './features/mobilenet/kernels.ts';
import { patchcoreKernels } from './patchcore/kernels.ts';

const WG = 256;

export const HISTOGRAM_BINS = 4096;
export const MAX_CHANNELS = 2048;
export const MAX_BATCH = 256;
// Workgroups that synchronize (barriers, workgroup memory) cost about 20 us each on a software
// driver: reductions and histograms give each workgroup a large chunk (measured: 3.5x faster
// moments of 25 x 1M values with 65536 per workgroup than with 4096).
/** Values a reduction workgroup folds into one partial. */
export const REDUCE_CHUNK = 65536;
/** Values a histogram workgroup counts. */
export const HISTOGRAM_CHUNK = 65536;
/** Output rows per invocation of the filterbank blurs (ROWS in filterbank.wgsl). */
export const BLUR_ROWS = 4;
/** Pixels per workgroup of the key histograms of the nominal draw. */
export const KEY_CHUNK = 65536;
/** Point-map pixels per workgroup of the background-plane sums (CHUNK in geometry.wgsl). */
export const PLANE_CHUNK = 4096;
/** Pixels per block of the training-row compaction (256 invocations x 256 consecutive pixels). */
export const COMPACT_BLOCK = 65536;

export const kernels = {
  reducePartial: {
    name: 'stats.reducePartial',
    shaders: ['validity', 'stats'],
    entryPoint: 'reducePartial',
    workgroupSize: WG,
    params: [['len', 'u32'], ['chunk', 'u32'], ['pps', 'u32'], ['nparts', 'u32']],
    bindings: ['values', 'parts', null, 'valid'],
  },
  reduceFinal: {
    name: 'stats.reduceFinal',
    shaders: ['validity', 'stats'],
    entryPoint: 'reduceFinal',
    workgroupSize: WG,
    params: [['len', 'u32'], ['chunk', 'u32'], ['pps', 'u32'], ['nparts', 'u32']],
    bindings: [null, 'parts', 'out'],
  },
  histogram: {
    name: 'histogram.histogram',
    shaders: ['validity', 'histogram'],
    entryPoint: 'histogram',
    workgroupSize: WG,
    params: [['n', 'u32'], ['nq', 'u32'], ['mn', 'f32'], ['scale', 'f32']],
    bindings: ['values', 'bins', null, null, 'valid'],
    constants: { CHUNK: HISTOGRAM_CHUNK },
  },
  percentileBins: {
    name: 'histogram.percentileBins',
    shaders: ['validity', 'histogram'],
    entryPoint: 'percentileBins',
    workgroupSize: 1,
    params: [['n', 'u32'], ['nq', 'u32'], ['mn', 'f32'], ['scale', 'f32']],
    bindings: [null, 'bins', 'ranks', 'qbins'],
  },
  bilinear: {
    name: 'features.bilinear',
    shaders: ['validity', 'features'],
    entryPoint: 'bilinear',
    workgroupSize: WG,
    params: [
      ['srcW', 'u32'], ['srcH', 'u32'], ['dstW', 'u32'], ['dstH', 'u32'],
      ['planes', 'u32'], ['scaleX', 'f32'], ['scaleY', 'f32'],
    ],
    bindings: ['src', 'dst'],
  },
  standardize: {
    name: 'features.standardize',
    shaders: ['validity', 'features'],
    entryPoint: 'standardize',
    workgroupSize: WG,
    params: [['plane', 'u32'], ['planes', 'u32'], ['weight', 'f32']],
    bindings: [null, null, 'feat', 'moments', 'valid'],
  },
  filterPrepare: {
    name: 'filterbank.prepare',
    shaders: ['filterbank'],
    entryPoint: 'prepare',
    workgroupSize: WG,
    params: filterParams(),
    bindings: ['src', 'dst'],
  },
  blurH: {
    name: 'filterbank.blurH',
    shaders: ['filterbank'],
    entryPoint: 'blurH',
    workgroupSize: WG,
    params: filterParams(),
    bindings: ['src', 'dst', 'taps'],
  },
  blurV: {
    name: 'filterbank.blurV',
    shaders: ['filterbank'],
    entryPoint: 'blurV',
    workgroupSize: WG,
    params: filterParams(),
    bindings: ['src', 'dst', 'taps'],
  },
  derive: {
    name: 'filterbank.derive',
    shaders: ['filterbank'],
    entryPoint: 'derive',
    workgroupSize: WG,
    params: filterParams(),
    bindings: ['src', 'dst'],
  },
  anomalousSeeds: pseudo('anomalousSeeds', ['scores', 'qbins', 'labels', null, null, 'sel', 'blockCounts', 'valid'], { BLOCK: COMPACT_BLOCK }),
  nominalHist0: pseudo('nominalHist', ['scores', 'qbins', null, 'labels', 'hist', 'sel', null, 'valid'], { LEVEL: 0, CHUNK: KEY_CHUNK }),
  nominalHist1: pseudo('nominalHist', ['scores', 'qbins', null, 'labels', 'hist', 'sel', null, 'valid'], { LEVEL: 1, CHUNK: KEY_CHUNK }),
  nominalHist2: pseudo('nominalHist', ['scores', 'qbins', null, 'labels', 'hist', 'sel', null, 'valid'], { LEVEL: 2, CHUNK: KEY_CHUNK }),
  selectLevel0: pseudo('selectLevel', [null, null, null, null, 'hist', 'sel'], { LEVEL: 0 }),
  selectLevel1: pseudo('selectLevel', [null, null, null, null, 'hist', 'sel'], { LEVEL: 1 }),
  selectLevel2: pseudo('selectLevel', [null, null, null, null, 'hist', 'sel'], { LEVEL: 2 }),
  markNominal: pseudo('markNominal', ['scores', 'qbins', null, 'labels', null, 'sel', 'blockCounts', 'valid'], { BLOCK: COMPACT_BLOCK, CHUNK: KEY_CHUNK }),
  scanCounts: gather('scanCounts', [null, 'offsets', null, null, null, null, 'blockList', 'dispatchArgs']),
  compactBlocks: gather('compactBlocks', ['labels', 'offsets', 'rows', 'targets', null, null, 'blockList']),
  gatherFeatures: gather('gatherFeatures', [null, null, 'rows', null, 'chunk', 'x']),
  trainSgd: {
    name: 'classifier.trainSgd',
    shaders: ['rng', 'classifier'],
    entryPoint: 'trainSgd',
    workgroupSize: WG,
    params: [
      ['rows', 'u32'], ['channels', 'u32'], ['epochs', 'u32'], ['batch', 'u32'],
      ['loss', 'u32'], ['seed', 'u32'], ['patience', 'u32'], ['stepsPerEpoch', 'u32'],
      ['lr', 'f32'], ['lambda', 'f32'], ['wPos', 'f32'], ['wNeg', 'f32'],
      ['tol', 'f32'], ['lambdaBias', 'f32'],
    ],
    bindings: ['x', 'targets', 'model', 'info'],
  },
  predict: predictSpec('predict', [null, null, 'model', null, 'chunk', 'decision', 'mask', null, null, 'scores', null, 'valid']),
  predictVec4: predictSpec('predictVec4', [null, null, 'model', null, null, null, 'mask', 'chunk', 'decision', null, 'scores', 'valid']),
  borderNormalize: {
    name: 'normalize.borderNormalize',
    shaders: ['normalize'],
    entryPoint: 'borderNormalize',
    workgroupSize: WG,
    params: [['width', 'u32'], ['height', 'u32'], ['bands', 'u32']],
    bindings: ['src', 'dst', 'profile'],
  },
  thresholdGlobal: {
    name: 'binarize.thresholdGlobal',
    shaders: ['binarize'],
    entryPoint: 'thresholdGlobal',
    workgroupSize: WG,
    params: [['pixels', 'u32'], ['threshold', 'f32']],
    bindings: ['scores', 'mask'],
  },
  thresholdMap: {
    name: 'binarize.thresholdMap',
    shaders: ['binarize'],
    entryPoint: 'thresholdMap',
    workgroupSize: WG,
    params: [['pixels', 'u32'], ['threshold', 'f32']],
    bindings: ['scores', 'mask', 'thresholds'],
  },
  planeSums: geometry('planeSums', ['points', 'valid', 'parts'], { CHUNK: PLANE_CHUNK }),
  planeDepth: geometry('planeDepth', ['points', 'valid', null, 'feat']),
  localShape: geometry('localShape', ['points', 'valid', null, 'feat']),
  normalDeviation: geometry('normalDeviation', [null, 'valid', null, 'feat']),
  poolBoxes: {
    name: 'pool.poolBoxes',
    shaders: ['validity', 'pool'],
    entryPoint: 'poolBoxes',
    workgroupSize: WG,
    params: [
      ['srcW', 'u32'], ['srcH', 'u32'], ['gridW', 'u32'], ['gridH', 'u32'],
      ['channels', 'u32'], ['outStride', 'u32'],
    ],
    bindings: ['src', 'valid', 'dst'],
  },
  minFilterH: morphology('minFilterH'),
  minFilterV: morphology('minFilterV'),
} satisfies Record<string, KernelSpec>;

function pseudo(entryPoint: string, bindings: (string | null)[], constants?: Record<string, number>): KernelSpec {
  const level = constants?.LEVEL === undefined ? '' : `.${constants.LEVEL}`; // one pipeline per level
  return {
    name: `pseudo_labels.${entryPoint}${level}`,
    shaders: ['validity', 'rng', 'pseudo_labels'],
    entryPoint,
    workgroupSize: WG,
    params: [
      ['width', 'u32'], ['height', 'u32'], ['radius', 'u32'], ['seedKey', 'u32'],
      ['nominalCount', 'u32'], ['restrictNominal', 'u32'], ['mn', 'f32'], ['scale', 'f32'],
      ['seedFloor', 'f32'],
    ],
    bindings,
    constants,
  };
}

function gather(entryPoint: string, bindings: (string | null)[]): KernelSpec {
  return {
    name: `gather.${entryPoint}`,
    shaders: ['gather'],
    entryPoint,
    workgroupSize: WG,
    params: [
      ['n', 'u32'], ['channels', 'u32'], ['chunkChannels', 'u32'], ['channelOffset', 'u32'],
      ['plane', 'u32'], ['blocks', 'u32'], ['rows', 'u32'],
    ],
    bindings,
  };
}

function predictSpec(entryPoint: string, bindings: (string | null)[]): KernelSpec {
  return {
    name: `classifier.${entryPoint}`,
    shaders: ['rng', 'classifier'],
    entryPoint,
    workgroupSize: WG,
    params: [
      ['pixels', 'u32'], ['channels', 'u32'], ['chunkChannels', 'u32'], ['channelOffset', 'u32'],
      ['first', 'u32'], ['last', 'u32'], ['scoreFloor', 'f32'],
    ],
    bindings,
  };
}

function geometry(entryPoint: string, bindings: (string | null)[], constants?: Record<string, number>): KernelSpec {
  return {
    name: `geometry.${entryPoint}`,
    shaders: ['validity', 'geometry'],
    entryPoint,
    workgroupSize: WG,
    params: [
      ['width', 'u32'], ['height', 'u32'], ['radius', 'u32'], ['step', 'u32'],
      ['outChannel', 'u32'],
      ['ox', 'f32'], ['oy', 'f32'], ['oz', 'f32'], ['a', 'f32'],
      ['b', 'f32'], ['c', 'f32'], ['inv', 'f32'],
    ],
    bindings,
    constants,
  };
}

function morphology(entryPoint: string): KernelSpec {
  return {
    name: `morphology.${entryPoint}`,
    shaders: ['morphology'],
    entryPoint,
    workgroupSize: WG,
    params: [['width', 'u32'], ['height', 'u32'], ['lo', 'i32'], ['hi', 'i32']],
    bindings: ['src', 'dst'],
  };
}

function filterParams(): KernelSpec['params'] {
  return [
    ['width', 'u32'], ['height', 'u32'], ['planes', 'u32'], ['radius', 'u32'],
    ['outChannel', 'u32'],
  ];
}

/**
 * Every kernel of the core: the stages' (`kernels`), PatchCore's (`patchcoreKernels`) and the network's
 * (`netKernels`, the larger `pointwiseTiles`), and one instance of each parameterized spec (`im2colKernel`, `depthwiseKernel`, `depthwise3x3Kernel`, `maxPoolKernel`, `localMean3Kernel`,
 * `localMeanKernel`; their arguments, like `maskedSpec`'s, change only override constants, never the WGSL,
 * uniform fields or bindings). A kernel added anywhere must be listed here: the kernel-spec test requires
 * every `@compute` entry point in shaders/ to have a spec in this list.
 */
export const allKernels: readonly KernelSpec[] = [
  ...Object.values(kernels),
  ...Object.values(patchcoreKernels),
  ...Object.values(netKernels),
  // The larger pointwise tiles (the narrow one is netKernels.pointwise / pointwiseResidual).
  ...Object.values(pointwiseTiles).filter((t) => t !== pointwiseTiles.narrow).flatMap((t) => [t.plain, t.residual]),
  im2colKernel({ kh: 3, kw: 3, sh: 2, sw: 2 }, 16),
  depthwiseKernel({ kh: 3, kw: 3, sh: 1, sw: 1 }, 16),
  depthwise3x3Kernel(1, 16, 4),
  localMeanKernel(16),
  localMean3Kernel(16),
  maxPoolKernel({ kh: 3, kw: 3, sh: 2, sw: 2 }, 16),
];

/** Workgroups of the 64 x 4 image kernels over width x height (x planes). */
export const imageGroups = (width: number, height: number, planes = 1): [number, number, number] => [
  Math.ceil(width / 64),
  Math.ceil(height / 4),
  planes,
];

/** Workgroups for one invocation per element. */
export const groupsFor = (elements: number, perGroup = WG): number => Math.ceil(elements / perGroup);
