// Every compute kernel of the core, declared once: the shader files, entry point, uniform layout and
// storage bindings (in binding order from 1). The stage modules dispatch these specs through Gpu.run.

import type { KernelSpec } from './gpu.ts';

const WG = 256;

export const HISTOGRAM_BINS = 4096;
export const MAX_CHANNELS = 2048;
export const MAX_BATCH = 256;
/** Values a reduction workgroup folds into one partial. */
export const REDUCE_CHUNK = 4096;
/** Values a histogram workgroup counts (256 invocations x 16). */
export const HISTOGRAM_CHUNK = 4096;
/** Values one scan block covers (256 invocations x 4). */
export const SCAN_BLOCK = 1024;

export const kernels = {
  reducePartial: {
    name: 'stats.reducePartial',
    shaders: ['stats'],
    entryPoint: 'reducePartial',
    workgroupSize: WG,
    params: [['len', 'u32'], ['chunk', 'u32'], ['pps', 'u32'], ['nparts', 'u32']],
    bindings: ['values', 'parts'],
  },
  reduceFinal: {
    name: 'stats.reduceFinal',
    shaders: ['stats'],
    entryPoint: 'reduceFinal',
    workgroupSize: WG,
    params: [['len', 'u32'], ['chunk', 'u32'], ['pps', 'u32'], ['nparts', 'u32']],
    bindings: [null, 'parts', 'out'],
  },
  histogram: {
    name: 'histogram.histogram',
    shaders: ['histogram'],
    entryPoint: 'histogram',
    workgroupSize: WG,
    params: [['n', 'u32'], ['nq', 'u32'], ['mn', 'f32'], ['scale', 'f32']],
    bindings: ['values', 'bins'],
  },
  percentileBins: {
    name: 'histogram.percentileBins',
    shaders: ['histogram'],
    entryPoint: 'percentileBins',
    workgroupSize: 1,
    params: [['n', 'u32'], ['nq', 'u32'], ['mn', 'f32'], ['scale', 'f32']],
    bindings: [null, 'bins', 'ranks', 'qbins'],
  },
  bilinear: {
    name: 'features.bilinear',
    shaders: ['features'],
    entryPoint: 'bilinear',
    workgroupSize: WG,
    params: [
      ['srcW', 'u32'], ['srcH', 'u32'], ['dstW', 'u32'], ['dstH', 'u32'],
      ['planes', 'u32'], ['scaleX', 'f32'], ['scaleY', 'f32'], ['pad', 'u32'],
    ],
    bindings: ['src', 'dst'],
  },
  standardize: {
    name: 'features.standardize',
    shaders: ['features'],
    entryPoint: 'standardize',
    workgroupSize: WG,
    params: [['plane', 'u32'], ['planes', 'u32'], ['pad0', 'u32'], ['pad1', 'u32']],
    bindings: [null, null, 'feat', 'moments'],
  },
  filterPrepare: {
    name: 'filterbank.prepare',
    shaders: ['filterbank'],
    entryPoint: 'prepare',
    workgroupSize: WG,
    params: [['width', 'u32'], ['height', 'u32'], ['planes', 'u32'], ['radius', 'u32']],
    bindings: ['src', 'dst'],
  },
  blurH: {
    name: 'filterbank.blurH',
    shaders: ['filterbank'],
    entryPoint: 'blurH',
    workgroupSize: WG,
    params: [['width', 'u32'], ['height', 'u32'], ['planes', 'u32'], ['radius', 'u32']],
    bindings: ['src', 'dst', 'taps'],
  },
  blurV: {
    name: 'filterbank.blurV',
    shaders: ['filterbank'],
    entryPoint: 'blurV',
    workgroupSize: WG,
    params: [['width', 'u32'], ['height', 'u32'], ['planes', 'u32'], ['radius', 'u32']],
    bindings: ['src', 'dst', 'taps'],
  },
  derive: {
    name: 'filterbank.derive',
    shaders: ['filterbank'],
    entryPoint: 'derive',
    workgroupSize: WG,
    params: [['width', 'u32'], ['height', 'u32'], ['planes', 'u32'], ['radius', 'u32']],
    bindings: ['src', 'dst'],
  },
  localMaxima: pseudo('localMaxima', ['scores', 'qbins', 'seeds']),
  dilate: pseudo('dilate', [null, null, 'seeds', 'labels', null, 'sel']),
  nominalHistHigh: pseudo('nominalHistHigh', ['scores', 'qbins', null, 'labels', 'hist', 'sel']),
  selectHigh: pseudo('selectHigh', [null, null, null, null, 'hist', 'sel'], 256),
  nominalHistLow: pseudo('nominalHistLow', ['scores', 'qbins', null, 'labels', 'hist', 'sel']),
  selectLow: pseudo('selectLow', [null, null, null, null, 'hist', 'sel'], 256),
  markNominal: pseudo('markNominal', ['scores', 'qbins', null, 'labels', null, 'sel']),
  scanBlocks: scan('scanBlocks', false),
  scanLabels: scan('scanBlocks', true),
  addOffsets: {
    name: 'scan.addOffsets',
    shaders: ['scan'],
    entryPoint: 'addOffsets',
    workgroupSize: WG,
    params: [['n', 'u32'], ['pad0', 'u32'], ['pad1', 'u32'], ['pad2', 'u32']],
    bindings: [null, 'out', null, 'offsets'],
  },
  compactRows: {
    name: 'gather.compactRows',
    shaders: ['gather'],
    entryPoint: 'compactRows',
    workgroupSize: WG,
    params: gatherParams(),
    bindings: ['labels', 'positions', 'rows', 'targets'],
  },
  gatherFeatures: {
    name: 'gather.gatherFeatures',
    shaders: ['gather'],
    entryPoint: 'gatherFeatures',
    workgroupSize: WG,
    params: gatherParams(),
    bindings: [null, null, 'rows', null, 'chunk', 'x'],
  },
  trainSgd: {
    name: 'classifier.trainSgd',
    shaders: ['rng', 'classifier'],
    entryPoint: 'trainSgd',
    workgroupSize: WG,
    params: [
      ['rows', 'u32'], ['channels', 'u32'], ['epochs', 'u32'], ['batch', 'u32'],
      ['loss', 'u32'], ['seed', 'u32'], ['patience', 'u32'], ['stepsPerEpoch', 'u32'],
      ['lr', 'f32'], ['lambda', 'f32'], ['wPos', 'f32'], ['wNeg', 'f32'],
      ['tol', 'f32'], ['pad0', 'u32'], ['pad1', 'u32'], ['pad2', 'u32'],
    ],
    bindings: ['x', 'targets', 'model', 'info'],
  },
  predict: {
    name: 'classifier.predict',
    shaders: ['rng', 'classifier'],
    entryPoint: 'predict',
    workgroupSize: WG,
    params: [
      ['pixels', 'u32'], ['channels', 'u32'], ['chunkChannels', 'u32'], ['channelOffset', 'u32'],
      ['first', 'u32'], ['last', 'u32'], ['pad0', 'u32'], ['pad1', 'u32'],
    ],
    bindings: [null, null, 'model', null, 'chunk', 'decision', 'mask'],
  },
  thresholdGlobal: {
    name: 'binarize.thresholdGlobal',
    shaders: ['binarize'],
    entryPoint: 'thresholdGlobal',
    workgroupSize: WG,
    params: [['pixels', 'u32'], ['threshold', 'f32'], ['pad0', 'u32'], ['pad1', 'u32']],
    bindings: ['scores', 'mask'],
  },
  thresholdMap: {
    name: 'binarize.thresholdMap',
    shaders: ['binarize'],
    entryPoint: 'thresholdMap',
    workgroupSize: WG,
    params: [['pixels', 'u32'], ['threshold', 'f32'], ['pad0', 'u32'], ['pad1', 'u32']],
    bindings: ['scores', 'mask', 'thresholds'],
  },
  minFilterH: morphology('minFilterH'),
  minFilterV: morphology('minFilterV'),
} satisfies Record<string, KernelSpec>;

function pseudo(entryPoint: string, bindings: (string | null)[], workgroupSize = WG): KernelSpec {
  return {
    name: `pseudo_labels.${entryPoint}`,
    shaders: ['rng', 'pseudo_labels'],
    entryPoint,
    workgroupSize,
    params: [
      ['width', 'u32'], ['height', 'u32'], ['radius', 'u32'], ['seedKey', 'u32'],
      ['nominalCount', 'u32'], ['restrictNominal', 'u32'], ['mn', 'f32'], ['scale', 'f32'],
    ],
    bindings,
  };
}

function scan(entryPoint: string, fromLabels: boolean): KernelSpec {
  return {
    name: `scan.${entryPoint}${fromLabels ? '.labels' : ''}`,
    shaders: ['scan'],
    entryPoint,
    workgroupSize: WG,
    params: [['n', 'u32'], ['pad0', 'u32'], ['pad1', 'u32'], ['pad2', 'u32']],
    bindings: ['input', 'out', 'sums'],
    constants: { FROM_LABELS: fromLabels ? 1 : 0 },
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

function gatherParams(): KernelSpec['params'] {
  return [
    ['n', 'u32'], ['channels', 'u32'], ['chunkChannels', 'u32'], ['channelOffset', 'u32'],
    ['plane', 'u32'], ['pad0', 'u32'], ['pad1', 'u32'], ['pad2', 'u32'],
  ];
}

/** Workgroups for one invocation per element. */
export const groupsFor = (elements: number, perGroup = WG): number => Math.ceil(elements / perGroup);
