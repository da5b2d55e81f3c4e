// ImageNet ResNet-50 v2 (pre-activation, GluonCV's resnet50_v2 as exported to ONNX: tensor names
// resnetv24_*) compiled into the network runtime's graph (features/mobilenet/graph.ts) up to the end of the
// deepest requested stage. Batch norms are folded in float32 at load:
// - the input batch norm (resnetv24_batchnorm0), with ImageNet's mean/std, into the preprocessing affine map;
// - the batch norm after a convolution (batchnorm1 after conv0; a block's bn_b after conv_a, bn_c after
//   conv_b) into that convolution's weights and bias, its ReLU into the op's clamp;
// - a block's pre-activation relu(bn_a(x)), whose input x is also the identity shortcut, as a per-channel
//   affine op (a 1x1 depthwise convolution with a ReLU clamp).
// A block: p = relu(bn_a(x)); y = conv_a(p) 1x1; y = conv_b(relu(bn_b(y))) 3x3, stride, pad 1;
// out = conv_c(relu(bn_c(y))) 1x1 + (first block ? conv_d(p) 1x1 stride : x), the sum fused into conv_c.
// A stage's output is activated by the next stage's first batch norm + ReLU, which is exactly the next
// stage's first pre-activation: the `stageN` outputs are those tensors (stage 3's by stage4_batchnorm0).
// Layers: `stem` (after the max pool, stride 4, 64 channels), `stage1`..`stage3` (strides 4, 8, 16).

import { TttError } from '../../errors.ts';
import { type ConvOp, type DepthwiseOp, type InputNormalization, lastUses, type MaxPoolOp, type NetworkGraph, type NetworkOp, type Padding } from '../mobilenet/graph.ts';
import type { DecodedTensor } from '../mobilenet/weights.ts';

export const RESNET_PREFIX = 'resnetv24_';
/** The stage outputs (activated) at strides 4, 8 and 16. */
export const DEFAULT_RESNET_LAYERS: readonly string[] = ['stage1', 'stage2', 'stage3'];
/** Batch norm epsilon of the exported network. */
export const BN_EPSILON = 1e-5;
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export interface NamedTensors {
  readonly source: string;
  readonly tensors: ReadonlyMap<string, DecodedTensor>;
}

const pad = (p: number): Padding => ({ top: p, bottom: p, left: p, right: p, same: false });

/** The tensor `prefix + name` of a weight set, checked against `shape` when given. */
export function prefixedTensor(t: NamedTensors, prefix: string, name: string, shape?: readonly number[]): DecodedTensor {
  const v = t.tensors.get(prefix + name);
  if (!v) throw new TttError('UNSUPPORTED_FORMAT', `${t.source}: tensor ${prefix}${name} is missing`);
  if (shape && (v.shape.length !== shape.length || v.shape.some((d, i) => d !== shape[i]))) {
    throw new TttError('UNSUPPORTED_FORMAT', `${t.source}: tensor ${prefix}${name} has shape ${v.shape.join('x')}, expected ${shape.join('x')}`);
  }
  return v;
}

/** Batch norm `prefix + name` as y = x * scale + shift (float32 arithmetic). */
export function batchNormAffine(
  t: NamedTensors,
  name: string,
  channels: number,
  prefix = RESNET_PREFIX,
  epsilon = BN_EPSILON,
): { scale: Float32Array; shift: Float32Array } {
  const get = (part: string) => prefixedTensor(t, prefix, `${name}_${part}`, [channels]).values;
  const gamma = get('gamma');
  const beta = get('beta');
  const mean = get('running_mean');
  const variance = get('running_var');
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = Math.fround(gamma[c] / Math.fround(Math.sqrt(Math.fround(variance[c] + epsilon))));
    shift[c] = Math.fround(beta[c] - Math.fround(mean[c] * scale[c]));
  }
  return { scale, shift };
}

const tensor = (t: NamedTensors, name: string, shape?: readonly number[]): DecodedTensor => prefixedTensor(t, RESNET_PREFIX, name, shape);

const has = (t: NamedTensors, name: string): boolean => t.tensors.has(RESNET_PREFIX + name);

/** Blocks per stage present in the weights (a stage's batch norms come in threes). */
export function stageBlocks(t: NamedTensors): number[] {
  const blocks: number[] = [];
  for (let s = 1; has(t, `stage${s}_conv0_weight`); s++) {
    let bns = 0;
    while (has(t, `stage${s}_batchnorm${bns}_gamma`)) bns++;
    if (bns === 0 || bns % 3 !== 0) throw new TttError('UNSUPPORTED_FORMAT', `${t.source}: stage ${s} has ${bns} batch norms (3 per block expected)`);
    blocks.push(bns / 3);
  }
  return blocks;
}

/** The layer names a weight set can produce: `stem`, and `stageN` for every stage whose next stage's first batch norm is present. */
export function resnetLayers(t: NamedTensors): string[] {
  const blocks = stageBlocks(t);
  return ['stem', ...blocks.map((_, i) => `stage${i + 1}`).filter((_, i) => has(t, `stage${i + 2}_batchnorm0_gamma`))];
}

/** Compiles the network up to the requested layers (see the header). */
export function buildResnetGraph(t: NamedTensors, outputs: readonly string[]): NetworkGraph {
  const source = t.source;
  if (outputs.length === 0) throw new TttError('INVALID_OPTION', `${source}: no output layer requested`);
  const available = resnetLayers(t);
  for (const o of outputs) {
    if (!available.includes(o)) throw new TttError('INVALID_OPTION', `${source}: the network has no layer ${JSON.stringify(o)} (layers: ${available.join(', ')})`);
  }
  const depth = Math.max(...outputs.map((o) => (o === 'stem' ? 0 : Number(o.slice(5)))));
  const blocks = stageBlocks(t);

  const channels: number[] = [3];
  const ops: NetworkOp[] = [];
  const newTensor = (c: number): number => channels.push(c) - 1;

  // Input: ((v - mean) / std) * s + b, with s, b the input batch norm.
  const bn0 = batchNormAffine(t, 'batchnorm0', 3);
  const input: InputNormalization = {
    scale: [0, 1, 2].map((c) => Math.fround(bn0.scale[c] / IMAGENET_STD[c])) as unknown as InputNormalization['scale'],
    offset: [0, 1, 2].map((c) => Math.fround(bn0.shift[c] - Math.fround((bn0.scale[c] * IMAGENET_MEAN[c]) / IMAGENET_STD[c]))) as unknown as InputNormalization['offset'],
  };

  /** A convolution from ONNX weights [cout][cin][k][k], optionally followed by a folded batch norm and ReLU. */
  const conv = (name: string, inputTensor: number, k: number, stride: number, bn: string | null, relu: boolean, residual: number | null = null): number => {
    const cin = channels[inputTensor];
    const raw = tensor(t, `${name}_weight`);
    const [cout] = raw.shape;
    if (raw.shape.length !== 4 || raw.shape[1] !== cin || raw.shape[2] !== k || raw.shape[3] !== k) {
      throw new TttError('UNSUPPORTED_FORMAT', `${source}: ${RESNET_PREFIX}${name}_weight has shape ${raw.shape.join('x')}, expected ${cout}x${cin}x${k}x${k}`);
    }
    const folded = bn ? batchNormAffine(t, bn, cout) : null;
    const weights = new Float32Array(k * k * cin * cout);
    for (let co = 0; co < cout; co++) {
      const s = folded ? folded.scale[co] : 1;
      for (let ci = 0; ci < cin; ci++) {
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) weights[((ky * k + kx) * cin + ci) * cout + co] = raw.values[((co * cin + ci) * k + ky) * k + kx] * s;
        }
      }
    }
    const output = newTensor(cout);
    const op: ConvOp = {
      kind: 'conv', name: RESNET_PREFIX + name, input: inputTensor, output, kh: k, kw: k, sh: stride, sw: stride, padding: pad((k - 1) / 2),
      lo: relu ? 0 : -Infinity, hi: Infinity, bias: folded ? folded.shift : new Float32Array(cout), cin, cout, weights, residual,
    };
    ops.push(op);
    return output;
  };
  /** relu(bn(x)) per channel, as a 1x1 depthwise op. */
  const activate = (bn: string, inputTensor: number): number => {
    const c = channels[inputTensor];
    const { scale, shift } = batchNormAffine(t, bn, c);
    const output = newTensor(c);
    const op: DepthwiseOp = {
      kind: 'depthwise', name: RESNET_PREFIX + bn, input: inputTensor, output, kh: 1, kw: 1, sh: 1, sw: 1, padding: pad(0),
      lo: 0, hi: Infinity, bias: shift, channels: c, weights: scale,
    };
    ops.push(op);
    return output;
  };

  // Stem: conv0 7x7/2 + batchnorm1 + ReLU, then the 3x3/2 max pool. Its input is non-negative (after the
  // ReLU), so skipping positions outside the map (-inf padding) equals zero padding here.
  const c0 = conv('conv0', 0, 7, 2, 'batchnorm1', true);
  const stem = newTensor(channels[c0]);
  const pool: MaxPoolOp = { kind: 'maxpool', name: `${RESNET_PREFIX}pool0`, input: c0, output: stem, kh: 3, kw: 3, sh: 2, sw: 2, padding: pad(1), lo: -Infinity, hi: Infinity, channels: channels[c0] };
  ops.push(pool);
  const named = new Map<string, number>([['stem', stem]]);

  let x = stem;
  for (let s = 1; s <= depth; s++) {
    const stride = s === 1 ? 1 : 2;
    for (let b = 0; b < blocks[s - 1]; b++) {
      const st = `stage${s}_`;
      const convs = b === 0 ? [0, 1, 2, 3] : [4 + 3 * (b - 1), 5 + 3 * (b - 1), 6 + 3 * (b - 1)];
      // Block 0's pre-activation of stage s is stage s-1's activated output (the stem's for stage 1 is not a layer).
      const p = b === 0 && s > 1 ? named.get(`stage${s - 1}`)! : activate(`${st}batchnorm${3 * b}`, x);
      const ya = conv(`${st}conv${convs[0]}`, p, 1, 1, `${st}batchnorm${3 * b + 1}`, true);
      const yb = conv(`${st}conv${convs[1]}`, ya, 3, b === 0 ? stride : 1, `${st}batchnorm${3 * b + 2}`, true);
      const shortcut = b === 0 ? conv(`${st}conv${convs[3]}`, p, 1, stride, null, false) : x;
      x = conv(`${st}conv${convs[2]}`, yb, 1, 1, null, false, shortcut);
    }
    if (outputs.includes(`stage${s}`) || s < depth) named.set(`stage${s}`, activate(`stage${s + 1}_batchnorm0`, x));
  }

  const outMap = new Map<string, number>();
  for (const o of outputs) outMap.set(o, named.get(o)!);
  return { source, input, channels, ops, outputs: outMap, lastUse: lastUses(channels.length, ops) };
}
