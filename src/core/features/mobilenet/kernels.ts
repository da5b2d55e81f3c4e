// The kernels of the network runtime (shaders/conv.wgsl), declared once: uniform layout and storage bindings.

import type { KernelSpec } from '../../gpu.ts';

/** Invocations per workgroup of the network kernels (measured best on lavapipe among 16..256). */
export const NET_WG = 64;
/** Output channels one pointwise invocation computes (two vec4 of weights). */
export const COUT_BLOCK = 8;


const conv = (entryPoint: string, params: KernelSpec['params'], bindings: (string | null)[], workgroupSize = NET_WG): KernelSpec => ({
  name: `conv.${entryPoint}`,
  shaders: ['conv'],
  entryPoint,
  workgroupSize,
  params,
  bindings,
});

export const netKernels = {
  preprocess: conv(
    'preprocess',
    [
      ['srcW', 'u32'], ['srcH', 'u32'], ['srcChannels', 'u32'], ['dstW', 'u32'], ['dstH', 'u32'], ['dstStride', 'u32'], ['scaleX', 'f32'], ['scaleY', 'f32'],
      ['mul0', 'f32'], ['mul1', 'f32'], ['mul2', 'f32'], ['add0', 'f32'], ['add1', 'f32'], ['add2', 'f32'],
    ],
    ['src', 'dst'],
  ),
  /** `preprocess` when the input has the image's size and a pixel count that is a multiple of 4 (vec4 copies). */
  preprocessSameSize: conv(
    'preprocessSameSize',
    [
      ['srcW', 'u32'], ['srcH', 'u32'], ['srcChannels', 'u32'], ['dstW', 'u32'], ['dstH', 'u32'], ['dstStride', 'u32'], ['scaleX', 'f32'], ['scaleY', 'f32'],
      ['mul0', 'f32'], ['mul1', 'f32'], ['mul2', 'f32'], ['add0', 'f32'], ['add1', 'f32'], ['add2', 'f32'],
    ],
    ['src', 'dst'],
  ),
  pointwise: conv(
    'pointwise',
    [['stride4', 'u32'], ['cin', 'u32'], ['cout', 'u32'], ['coutPad4', 'u32'], ['lo', 'f32'], ['hi', 'f32']],
    ['input', 'weights', 'bias', 'output'],
  ),
  pointwiseResidual: conv(
    'pointwiseResidual',
    [['stride4', 'u32'], ['cin', 'u32'], ['cout', 'u32'], ['coutPad4', 'u32'], ['lo', 'f32'], ['hi', 'f32']],
    ['input', 'weights', 'bias', 'output', 'residual'],
  ),
  add: conv('add', [['n4', 'u32'], ['lo', 'f32'], ['hi', 'f32']], ['a', 'b', 'output']),
} satisfies Record<string, KernelSpec>;

const PW_PARAMS: KernelSpec['params'] = [['stride4', 'u32'], ['cin', 'u32'], ['cout', 'u32'], ['coutPad4', 'u32'], ['lo', 'f32'], ['hi', 'f32']];

/** A register tile of the pointwise product: `pixels4` vec4 of pixels x `couts` output channels per invocation. */
export interface PointwiseTile {
  readonly plain: KernelSpec;
  readonly residual: KernelSpec;
  readonly pixels4: number;
  readonly couts: number;
  readonly workgroup: number;
}

const tile = (entry: string, pixels4: number, couts: number, workgroup: number): PointwiseTile => ({
  plain: conv(entry, PW_PARAMS, ['input', 'weights', 'bias', 'output'], workgroup),
  residual: conv(entry.replace('pointwise', 'pointwiseResidual'), PW_PARAMS, ['input', 'weights', 'bias', 'output', 'residual'], workgroup),
  pixels4,
  couts,
  workgroup,
});

/** The pointwise tiles, from the smallest (any cout, a multiple of COUT_BLOCK after padding). */
export const pointwiseTiles = {
  narrow: tile('pointwise', 1, COUT_BLOCK, NET_WG),
  wide: tile('pointwiseWide', 2, 16, 32),
  wider: tile('pointwiseWider', 4, 16, 16),
  /** 16 pixels x 8 channels: for output channels that are not a multiple of 16 (MobileNetV2's 24). */
  tall: tile('pointwiseTall', 4, COUT_BLOCK, 16),
} satisfies Record<string, PointwiseTile>;

/** Most invocations along a row of a window-kernel workgroup (the rest of the NET_WG go down the rows). */
export const MAX_TILE_WIDTH = 16;

/** Invocations along x for a row of `columns` work items: a power of two, so narrow maps leave no lane idle. */
export const tileWidth = (columns: number): number => Math.min(MAX_TILE_WIDTH, 2 ** Math.ceil(Math.log2(Math.max(1, columns))));
/** Input columns a depthwise invocation may read per row (shaders/conv.wgsl DW_SPAN): 3 * sw + kw. */
export const DEPTHWISE_SPAN = 16;

export interface Window {
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
}

const windowConstants = (w: Window, tw: number) => ({ KH: w.kh, KW: w.kw, SH: w.sh, SW: w.sw, TW: tw });

/** im2col for one window (the loops unroll); the product itself is the pointwise kernel. */
export function im2colKernel(w: Window, tw: number): KernelSpec {
  return {
    name: 'conv.im2col',
    shaders: ['conv'],
    entryPoint: 'im2col',
    workgroupSize: NET_WG,
    params: [
      ['inW', 'u32'], ['inH', 'u32'], ['inStride', 'u32'], ['outW', 'u32'], ['outH', 'u32'], ['outStride', 'u32'], ['cin', 'u32'], ['padTop', 'u32'],
      ['padLeft', 'u32'],
    ],
    bindings: ['input', 'output'],
    constants: windowConstants(w, tw),
  };
}

/** The depthwise convolution, specialized for one window. */
export function depthwiseKernel(w: Window, tw: number): KernelSpec {
  return {
    name: 'conv.depthwise',
    shaders: ['conv'],
    entryPoint: 'depthwise',
    workgroupSize: NET_WG,
    params: [
      ['inW', 'u32'], ['inH', 'u32'], ['inStride', 'u32'], ['outW', 'u32'], ['outH', 'u32'], ['outStride', 'u32'], ['padTop', 'u32'], ['padLeft', 'u32'],
      ['lo', 'f32'], ['hi', 'f32'],
    ],
    bindings: ['input', 'weights', 'bias', 'output'],
    constants: windowConstants(w, tw),
  };
}

/** Most output rows a `depthwise3x3` invocation computes (its accumulators: shaders/conv.wgsl). */
export const DEPTHWISE_ROWS = 4;

/**
 * The 3x3 depthwise convolution on vec4 rows (stride `s`: 1 with one column of left padding, or 2 with
 * `padLeft` 0 (Keras 'same') or 1 (symmetric); widths multiples of 4; see `depthwise3x3Fits`), `rows` output
 * rows per invocation, `tw` vec4 columns per workgroup row. Same uniform fields as `depthwiseKernel`.
 */
export function depthwise3x3Kernel(s: number, tw: number, rows: number, padLeft = 0): KernelSpec {
  return {
    name: 'conv.depthwise3x3',
    shaders: ['conv'],
    entryPoint: 'depthwise3x3',
    workgroupSize: NET_WG,
    params: [
      ['inW', 'u32'], ['inH', 'u32'], ['inStride', 'u32'], ['outW', 'u32'], ['outH', 'u32'], ['outStride', 'u32'], ['padTop', 'u32'], ['padLeft', 'u32'],
      ['lo', 'f32'], ['hi', 'f32'],
    ],
    bindings: ['input', 'weights', 'bias', 'output'],
    constants: { SH: s, SW: s, TW: tw, ROWS: rows, PL: s === 2 ? padLeft : 0 },
  };
}

/** Whether a depthwise op over `inW` columns to `outW` with left padding `padLeft` can take `depthwise3x3Kernel`. */
export function depthwise3x3Fits(w: Window, inW: number, outW: number, padLeft: number): boolean {
  if (w.kh !== 3 || w.kw !== 3 || w.sh !== w.sw || inW % 4 !== 0 || outW % 4 !== 0) return false;
  if (w.sw === 1) return padLeft === 1 && outW === inW;
  return w.sw === 2 && (padLeft === 0 || padLeft === 1) && outW * 2 === inW;
}

/** The max pool, specialized for one window (one output pixel per invocation). */
export function maxPoolKernel(w: Window, tw: number): KernelSpec {
  return {
    name: 'conv.maxPool',
    shaders: ['conv'],
    entryPoint: 'maxPool',
    workgroupSize: NET_WG,
    params: [
      ['inW', 'u32'], ['inH', 'u32'], ['inStride', 'u32'], ['outW', 'u32'], ['outH', 'u32'], ['outStride', 'u32'], ['padTop', 'u32'], ['padLeft', 'u32'],
      ['lo', 'f32'], ['hi', 'f32'],
    ],
    bindings: ['input', 'output'],
    constants: windowConstants(w, tw),
  };
}

/** PatchCore's local mean (the tile width only shapes the workgroup). */
export function localMeanKernel(tw: number): KernelSpec {
  return {
    name: 'conv.localMean',
    shaders: ['conv'],
    entryPoint: 'localMean',
    workgroupSize: NET_WG,
    params: [['width', 'u32'], ['height', 'u32'], ['inStride', 'u32'], ['radius', 'u32'], ['c0', 'u32']],
    bindings: ['input', 'output'],
    constants: { TW: tw },
  };
}

/** `localMean` with radius 1 on vec4 rows (widths that are multiples of 4); `tw` vec4 columns per workgroup row. */
export function localMean3Kernel(tw: number): KernelSpec {
  return { ...localMeanKernel(tw), name: 'conv.localMean3', entryPoint: 'localMean3' };
}
