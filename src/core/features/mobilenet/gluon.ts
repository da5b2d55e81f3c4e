// ImageNet MobileNetV2 1.0 (GluonCV's mobilenetv2_1.0 as exported to ONNX: tensor names
// mobilenetv20_features_*) compiled into the network runtime's graph (graph.ts) up to the deepest requested
// block. Batch norms (epsilon 1e-5) are folded in float32 at load into the convolution before them, ReLU6
// into the op's clamp.
// - Input: RGB in [0, 1], minus ImageNet's mean, divided by its std (the preprocessing affine map).
// - Stem: conv0 3x3 stride 2 pad 1 (32 channels) + batchnorm0 + ReLU6.
// - linearbottleneckK (K = 0..16), x its input: y = relu6(bn0(conv0(x))) 1x1 expansion (t = 1 for block 0:
//   the 1x1 convolution is present anyway); y = relu6(bn1(conv1(y))) 3x3 depthwise, the block's stride,
//   SYMMETRIC zero padding 1 (Keras pads 0 before / 1 after at stride 2 instead); out = bn2(conv2(y)) 1x1
//   projection, linear, + x when the stride is 1 and the channels do not change (fused into conv2).
// Strides (GluonCV): 1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1 -> block outputs at strides 2 (0),
// 4 (1, 2), 8 (3..5), 16 (6..12), 32 (13..16); channels 16, 24, 24, 32 x3, 64 x4, 96 x3, 160 x3, 320.
// Layer names: the Keras MobileNetV2's names of the same block outputs (Keras block_K is linearbottleneckK,
// block 0 is Keras's expanded_conv), so features.layers means the same with either network:
// `block_K_add` (the residual blocks: 2, 4, 5, 7..9, 11, 12, 14, 15), `block_K_project_BN` (the others,
// `expanded_conv_project_BN` for block 0), and `linearbottleneckK` for any block; `Conv1_relu` is the stem.
// The default block_2_add, block_5_add, block_12_add are strides 4, 8, 16 with 24, 32, 96 channels.

import { TttError } from '../../errors.ts';
import { batchNormAffine, type NamedTensors, prefixedTensor } from '../resnet/graph.ts';
import { type ConvOp, type DepthwiseOp, type InputNormalization, lastUses, type NetworkGraph, type NetworkOp, type Padding } from './graph.ts';
import type { DecodedTensor } from './weights.ts';

export const GLUON_MOBILENET_PREFIX = 'mobilenetv20_features_';
/** Batch norm epsilon of the exported network. */
export const GLUON_BN_EPSILON = 1e-5;
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
/** The stride of each linear bottleneck's depthwise convolution (GluonCV MobileNetV2). */
export const GLUON_BLOCK_STRIDES: readonly number[] = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1];

const pad = (p: number): Padding => ({ top: p, bottom: p, left: p, right: p, same: false });

const tensor = (t: NamedTensors, name: string, shape?: readonly number[]): DecodedTensor => prefixedTensor(t, GLUON_MOBILENET_PREFIX, name, shape);

/** Whether a weight set is the GluonCV MobileNetV2 (its stem convolution is present). */
export function isGluonMobileNet(t: NamedTensors): boolean {
  return t.tensors.has(`${GLUON_MOBILENET_PREFIX}conv0_weight`);
}

/** Batch norm as y = x * scale + shift (float32 arithmetic). */
const batchNorm = (t: NamedTensors, name: string, channels: number) => batchNormAffine(t, name, channels, GLUON_MOBILENET_PREFIX, GLUON_BN_EPSILON);

/** Blocks present in the weights (linearbottleneck0..N-1, consecutive). */
export function gluonBlocks(t: NamedTensors): number {
  let n = 0;
  while (t.tensors.has(`${GLUON_MOBILENET_PREFIX}linearbottleneck${n}_conv2_weight`)) n++;
  if (n > GLUON_BLOCK_STRIDES.length) throw new TttError('UNSUPPORTED_FORMAT', `${t.source}: ${n} linear bottlenecks (MobileNetV2 has ${GLUON_BLOCK_STRIDES.length})`);
  return n;
}

/** Whether block k adds its input (stride 1, as many output channels as input channels). */
function isResidual(t: NamedTensors, k: number): boolean {
  const [cout, cin] = tensor(t, `linearbottleneck${k}_conv2_weight`).shape;
  const [, cinBlock] = tensor(t, `linearbottleneck${k}_conv0_weight`).shape;
  return GLUON_BLOCK_STRIDES[k] === 1 && cout !== undefined && cin !== undefined && cout === cinBlock;
}

/** The output names of block k (the Keras name first, then linearbottleneckK). */
export function gluonBlockNames(t: NamedTensors, k: number): string[] {
  const keras = isResidual(t, k) ? `block_${k}_add` : k === 0 ? 'expanded_conv_project_BN' : `block_${k}_project_BN`;
  return [keras, `linearbottleneck${k}`];
}

/** Every layer name a weight set can produce, mapped to its block (-1: the stem). */
export function gluonLayers(t: NamedTensors): Map<string, number> {
  const out = new Map<string, number>([['Conv1_relu', -1]]);
  const n = gluonBlocks(t);
  for (let k = 0; k < n; k++) for (const name of gluonBlockNames(t, k)) out.set(name, k);
  return out;
}

/** Compiles the network up to the requested layers (see the header). */
export function buildGluonMobileNetGraph(t: NamedTensors, outputs: readonly string[]): NetworkGraph {
  const source = t.source;
  if (outputs.length === 0) throw new TttError('INVALID_OPTION', `${source}: no output layer requested`);
  const available = gluonLayers(t);
  for (const o of outputs) {
    if (!available.has(o)) {
      const keras = [...available.keys()].filter((n) => !n.startsWith('linearbottleneck'));
      throw new TttError('INVALID_OPTION', `${source}: the network has no layer ${JSON.stringify(o)} (block outputs: ${keras.join(', ')}, or linearbottleneck0..${gluonBlocks(t) - 1})`);
    }
  }
  const depth = Math.max(...outputs.map((o) => available.get(o)!));

  const channels: number[] = [3];
  const ops: NetworkOp[] = [];
  const newTensor = (c: number): number => channels.push(c) - 1;
  const input: InputNormalization = {
    scale: [0, 1, 2].map((c) => Math.fround(1 / IMAGENET_STD[c])) as unknown as InputNormalization['scale'],
    offset: [0, 1, 2].map((c) => Math.fround(-IMAGENET_MEAN[c] / IMAGENET_STD[c])) as unknown as InputNormalization['offset'],
  };

  /** A full convolution from ONNX weights [cout][cin][k][k] with its batch norm folded in. */
  const conv = (name: string, bn: string, inputTensor: number, k: number, stride: number, relu6: boolean, residual: number | null = null): number => {
    const cin = channels[inputTensor];
    const raw = tensor(t, `${name}_weight`);
    const [cout] = raw.shape;
    if (raw.shape.length !== 4 || raw.shape[1] !== cin || raw.shape[2] !== k || raw.shape[3] !== k) {
      throw new TttError('UNSUPPORTED_FORMAT', `${source}: ${GLUON_MOBILENET_PREFIX}${name}_weight has shape ${raw.shape.join('x')}, expected ${cout}x${cin}x${k}x${k}`);
    }
    const { scale, shift } = batchNorm(t, bn, cout);
    const weights = new Float32Array(k * k * cin * cout);
    for (let co = 0; co < cout; co++) {
      for (let ci = 0; ci < cin; ci++) {
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) weights[((ky * k + kx) * cin + ci) * cout + co] = raw.values[((co * cin + ci) * k + ky) * k + kx] * scale[co];
        }
      }
    }
    const output = newTensor(cout);
    const op: ConvOp = {
      kind: 'conv', name: GLUON_MOBILENET_PREFIX + name, input: inputTensor, output, kh: k, kw: k, sh: stride, sw: stride, padding: pad((k - 1) / 2),
      lo: relu6 ? 0 : -Infinity, hi: relu6 ? 6 : Infinity, bias: shift, cin, cout, weights, residual,
    };
    ops.push(op);
    return output;
  };
  /** A 3x3 depthwise convolution from ONNX weights [c][1][3][3], symmetric padding 1, batch norm folded, ReLU6. */
  const depthwise = (name: string, bn: string, inputTensor: number, stride: number): number => {
    const c = channels[inputTensor];
    const raw = tensor(t, `${name}_weight`, [c, 1, 3, 3]);
    const { scale, shift } = batchNorm(t, bn, c);
    const weights = new Float32Array(c * 9);
    for (let ch = 0; ch < c; ch++) for (let i = 0; i < 9; i++) weights[ch * 9 + i] = raw.values[ch * 9 + i] * scale[ch];
    const output = newTensor(c);
    const op: DepthwiseOp = {
      kind: 'depthwise', name: GLUON_MOBILENET_PREFIX + name, input: inputTensor, output, kh: 3, kw: 3, sh: stride, sw: stride, padding: pad(1),
      lo: 0, hi: 6, bias: shift, channels: c, weights,
    };
    ops.push(op);
    return output;
  };

  const stem = conv('conv0', 'batchnorm0', 0, 3, 2, true);
  const blockOut: number[] = [];
  let x = stem;
  for (let k = 0; k <= depth; k++) {
    const b = `linearbottleneck${k}_`;
    const expanded = conv(`${b}conv0`, `${b}batchnorm0`, x, 1, 1, true);
    const filtered = depthwise(`${b}conv1`, `${b}batchnorm1`, expanded, GLUON_BLOCK_STRIDES[k]);
    x = conv(`${b}conv2`, `${b}batchnorm2`, filtered, 1, 1, false, isResidual(t, k) ? x : null);
    blockOut.push(x);
  }

  const outMap = new Map<string, number>();
  for (const o of outputs) {
    const k = available.get(o)!;
    outMap.set(o, k < 0 ? stem : blockOut[k]);
  }
  return { source, input, channels, ops, outputs: outMap, lastUse: lastUses(channels.length, ops) };
}
