// A Keras functional model (TensorFlow.js layers format) compiled into the few operations our kernels run:
// convolutions with batch normalization folded in and ReLU/ReLU6 fused, depthwise convolutions, and
// residual additions (fused into the convolution that feeds them). Only the layers the requested outputs
// depend on are kept, so the classifier head of a network never has to be supported.

import { TttError } from '../../errors.ts';
import { DEPTHWISE_SPAN } from './kernels.ts';
import { decodeWeights, type DecodedTensor, type LayersModelArtifacts } from './weights.ts';

/** Zero padding added before a convolution, plus whether TensorFlow's 'same' rule adds more. */
export interface Padding {
  readonly top: number;
  readonly bottom: number;
  readonly left: number;
  readonly right: number;
  readonly same: boolean;
}

interface WindowOp {
  readonly name: string;
  readonly input: number;
  readonly output: number;
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  readonly padding: Padding;
  /** Output clamp: [-inf, inf] linear, [0, inf] ReLU, [0, 6] ReLU6. */
  readonly lo: number;
  readonly hi: number;
  /** Folded bias (batch normalization included), one per output channel. */
  readonly bias: Float32Array;
}

/** A full convolution; weights in Keras order [kh][kw][cin][cout]. A residual is added before the clamp. */
export interface ConvOp extends WindowOp {
  readonly kind: 'conv';
  readonly cin: number;
  readonly cout: number;
  readonly weights: Float32Array;
  readonly residual: number | null;
}

/** A depthwise convolution (depth multiplier 1); weights [c][kh][kw]. */
export interface DepthwiseOp extends WindowOp {
  readonly kind: 'depthwise';
  readonly channels: number;
  readonly weights: Float32Array;
}

/** Element-wise sum of two tensors of equal shape, then a clamp. */
export interface AddOp {
  readonly kind: 'add';
  readonly name: string;
  readonly inputs: readonly [number, number];
  readonly output: number;
  readonly lo: number;
  readonly hi: number;
}

/** Max over each window (ResNet's stem pool); positions outside the input are left out (as -inf padding). */
export interface MaxPoolOp extends Omit<WindowOp, 'bias'> {
  readonly kind: 'maxpool';
  readonly channels: number;
}

export type NetworkOp = ConvOp | DepthwiseOp | AddOp | MaxPoolOp;

/** The input's per-channel affine map, applied to RGB in [0, 1] after resizing: v * scale[c] + offset[c]. */
export interface InputNormalization {
  readonly scale: readonly [number, number, number];
  readonly offset: readonly [number, number, number];
}

/** MobileNetV2 (Keras applications): [0, 1] -> [-1, 1]. */
export const SYMMETRIC_INPUT: InputNormalization = { scale: [2, 2, 2], offset: [-1, -1, -1] };

export interface NetworkGraph {
  /** Where the weights came from. */
  readonly source: string;
  /** How an image in [0, 1] becomes the network's input. */
  readonly input: InputNormalization;
  /** Channels per tensor; tensor 0 is the input. */
  readonly channels: readonly number[];
  readonly ops: readonly NetworkOp[];
  /** Requested layer name -> tensor id, in request order. */
  readonly outputs: ReadonlyMap<string, number>;
  /** Op index after which each tensor is no longer read (-1: never read; outputs are kept regardless). */
  readonly lastUse: readonly number[];
}

export interface Shape {
  readonly height: number;
  readonly width: number;
}

interface KerasLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
  inputs: string[];
}

function bad(source: string, message: string): never {
  throw new TttError('UNSUPPORTED_FORMAT', `${source}: ${message}`);
}

function parseLayers(topology: unknown, source: string): KerasLayer[] {
  const t = topology as Record<string, unknown> | null;
  const model = (t?.model_config ?? t) as { class_name?: string; config?: unknown } | undefined;
  const cls = model?.class_name;
  const config = model?.config as { layers?: unknown } | unknown[] | undefined;
  const rawLayers = Array.isArray(config) ? config : (config as { layers?: unknown })?.layers;
  if (!Array.isArray(rawLayers)) bad(source, 'the topology holds no layer list (expected a Keras model_config)');
  if (cls !== 'Model' && cls !== 'Functional' && cls !== 'Sequential') bad(source, `unsupported model class ${JSON.stringify(cls)}`);
  const layers: KerasLayer[] = [];
  for (const [i, raw] of rawLayers.entries()) {
    const l = raw as { name?: string; class_name?: string; config?: Record<string, unknown>; inbound_nodes?: unknown };
    const name = l.name ?? (l.config?.name as string | undefined);
    if (typeof name !== 'string' || typeof l.class_name !== 'string') bad(source, `layer ${i} has no name or class`);
    let inputs: string[] = [];
    if (cls === 'Sequential') {
      inputs = i === 0 ? [] : [layers[i - 1].name];
    } else {
      const nodes = l.inbound_nodes;
      if (!Array.isArray(nodes) || nodes.length > 1) bad(source, `layer ${name}: expected at most one inbound node (shared layers are not supported)`);
      if (nodes.length === 1) {
        const node = nodes[0];
        if (!Array.isArray(node)) bad(source, `layer ${name}: unsupported inbound node format`);
        inputs = node.map((n: unknown) => {
          if (!Array.isArray(n) || typeof n[0] !== 'string') bad(source, `layer ${name}: unsupported inbound node format`);
          return n[0] as string;
        });
      }
    }
    layers.push({ name, className: l.class_name, config: l.config ?? {}, inputs });
  }
  if (cls === 'Sequential' && layers[0]?.className !== 'InputLayer') {
    const shape = layers[0]?.config.batch_input_shape;
    layers.unshift({ name: '__input', className: 'InputLayer', config: { batch_input_shape: shape }, inputs: [] });
    layers[1].inputs = ['__input'];
  }
  return layers;
}

const num = (v: unknown, fallback: number): number => (typeof v === 'number' ? v : fallback);
const pair = (v: unknown, fallback: number): [number, number] =>
  Array.isArray(v) ? [num(v[0], fallback), num(v[1] ?? v[0], fallback)] : typeof v === 'number' ? [v, v] : [fallback, fallback];

function activationClamp(source: string, layer: string, activation: unknown): [number, number] | null {
  if (activation === undefined || activation === null || activation === 'linear') return null;
  if (activation === 'relu') return [0, Infinity];
  if (activation === 'relu6') return [0, 6];
  return bad(source, `layer ${layer}: activation ${JSON.stringify(activation)} is not supported (linear, relu, relu6)`);
}

/**
 * Compiles the part of a layers model that `outputs` depend on. Batch normalization is folded into the
 * convolution before it, activations and residual additions are fused where the intermediate tensor has no
 * other reader; anything else (other layer types, unfusable chains) is rejected with the layer's name.
 */
export function buildGraph(artifacts: LayersModelArtifacts, outputs: readonly string[]): NetworkGraph {
  const source = artifacts.source;
  if (outputs.length === 0) bad(source, 'no output layer requested');
  const layers = parseLayers(artifacts.modelTopology, source);
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const o of outputs) {
    if (!byName.has(o)) {
      const adds = layers.filter((l) => l.className === 'Add').map((l) => l.name);
      throw new TttError('INVALID_OPTION', `${source}: the network has no layer ${JSON.stringify(o)}${adds.length ? ` (block outputs: ${adds.join(', ')})` : ''}`);
    }
  }
  // Needed layers and how many needed layers read each one (a requested output counts as a reader).
  const readers = new Map<string, number>();
  const needed = new Set<string>();
  const visit = (name: string): void => {
    if (needed.has(name)) return;
    needed.add(name);
    const l = byName.get(name);
    if (!l) bad(source, `layer ${name} is referenced but not defined`);
    for (const i of l.inputs) {
      readers.set(i, (readers.get(i) ?? 0) + 1);
      visit(i);
    }
  };
  for (const o of outputs) {
    readers.set(o, (readers.get(o) ?? 0) + 1);
    visit(o);
  }
  const weights = decodeWeights(artifacts);
  const weight = (layer: string, w: string, size: number): Float32Array => {
    const t: DecodedTensor | undefined = weights.get(`${layer}/${w}`);
    if (!t) bad(source, `layer ${layer}: weight ${w} is missing from the manifest`);
    if (t.values.length !== size) bad(source, `layer ${layer}: weight ${w} holds ${t.values.length} values, expected ${size}`);
    return t.values;
  };

  const channels: number[] = [];
  const ops: NetworkOp[] = [];
  const producer: (NetworkOp | null)[] = [];
  const tensorOf = new Map<string, number>();
  const pending = new Map<string, { tensor: number; padding: Padding }>();
  const newTensor = (c: number, op: NetworkOp | null): number => {
    channels.push(c);
    producer.push(op);
    return channels.length - 1;
  };
  /** A fused op may absorb the next layer only when its output has no other reader. */
  const absorbable = (input: string): NetworkOp | null => {
    if ((readers.get(input) ?? 0) !== 1) return null;
    const t = tensorOf.get(input);
    return t === undefined ? null : producer[t];
  };
  const replace = (op: NetworkOp, next: NetworkOp): void => {
    ops[ops.indexOf(op)] = next;
    producer[next.output] = next;
  };

  const resolve = (name: string): number => {
    const known = tensorOf.get(name);
    if (known !== undefined) return known;
    if (pending.has(name)) bad(source, `layer ${name} (zero padding) may only feed a convolution`);
    const l = byName.get(name)!;
    const c = l.config;
    const inputTensor = (i: number): { tensor: number; padding: Padding } => {
      const inName = l.inputs[i];
      if (inName === undefined) bad(source, `layer ${name} has no input ${i}`);
      if (!tensorOf.has(inName)) {
        const inLayer = byName.get(inName)!;
        if (inLayer.className === 'ZeroPadding2D') {
          if (!pending.has(inName)) {
            const p = inLayer.config.padding;
            const [[top, bottom], [left, right]] = Array.isArray(p) && Array.isArray(p[0])
              ? (p as number[][]).map((q) => [num(q[0], 0), num(q[1], 0)])
              : [pair(p, 0), pair(p, 0)];
            if ((readers.get(inName) ?? 0) !== 1) bad(source, `layer ${inName} (zero padding) must feed exactly one convolution`);
            pending.set(inName, { tensor: resolve(inLayer.inputs[0]), padding: { top, bottom, left, right, same: false } });
          }
          return pending.get(inName)!;
        }
      }
      return { tensor: resolve(inName), padding: { top: 0, bottom: 0, left: 0, right: 0, same: false } };
    };
    let out: number;
    switch (l.className) {
      case 'InputLayer': {
        if (channels.length > 0) bad(source, 'more than one input layer is not supported');
        const shape = c.batch_input_shape as (number | null)[] | undefined;
        out = newTensor(num(shape?.[3], 3), null);
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        if (c.data_format !== undefined && c.data_format !== 'channels_last') bad(source, `layer ${name}: data_format ${c.data_format}`);
        const [dh, dw] = pair(c.dilation_rate, 1);
        if (dh !== 1 || dw !== 1) bad(source, `layer ${name}: dilated convolutions are not supported`);
        if (c.groups !== undefined && c.groups !== 1) bad(source, `layer ${name}: grouped convolutions are not supported`);
        const { tensor: input, padding: pre } = inputTensor(0);
        const [kh, kw] = pair(c.kernel_size, 1);
        const [sh, sw] = pair(c.strides, 1);
        if (c.padding !== 'same' && c.padding !== 'valid') bad(source, `layer ${name}: padding ${JSON.stringify(c.padding)}`);
        const padding: Padding = { ...pre, same: c.padding === 'same' };
        const [lo, hi] = activationClamp(source, name, c.activation) ?? [-Infinity, Infinity];
        const cin = channels[input];
        if (l.className === 'Conv2D') {
          const cout = num(c.filters, 0);
          const bias = c.use_bias === false ? new Float32Array(cout) : Float32Array.from(weight(name, 'bias', cout));
          out = newTensor(cout, null);
          const weights = Float32Array.from(weight(name, 'kernel', kh * kw * cin * cout));
          ops.push({ kind: 'conv', name, input, output: out, kh, kw, sh, sw, padding, lo, hi, bias, cin, cout, weights, residual: null });
        } else {
          if (num(c.depth_multiplier, 1) !== 1) bad(source, `layer ${name}: depth multiplier ${c.depth_multiplier} (only 1 is supported)`);
          if (3 * sw + kw > DEPTHWISE_SPAN) bad(source, `layer ${name}: a ${kh}x${kw} depthwise window at stride ${sw} is wider than the kernel supports (3 * stride + width <= ${DEPTHWISE_SPAN})`);
          const k = weight(name, 'depthwise_kernel', kh * kw * cin);
          const w = new Float32Array(cin * kh * kw);
          for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let ch = 0; ch < cin; ch++) w[(ch * kh + y) * kw + x] = k[(y * kw + x) * cin + ch];
          const bias = c.use_bias === false ? new Float32Array(cin) : Float32Array.from(weight(name, 'bias', cin));
          out = newTensor(cin, null);
          ops.push({ kind: 'depthwise', name, input, output: out, kh, kw, sh, sw, padding, lo, hi, bias, channels: cin, weights: w });
        }
        producer[out] = ops[ops.length - 1];
        break;
      }
      case 'BatchNormalization': {
        const input = l.inputs[0];
        resolve(input);
        const op = absorbable(input);
        if (!op || op.kind === 'add' || op.kind === 'maxpool' || op.lo !== -Infinity || op.hi !== Infinity || (op.kind === 'conv' && op.residual !== null)) {
          bad(source, `layer ${name}: batch normalization is only supported right after a convolution whose output nothing else reads`);
        }
        const axis = c.axis;
        if (axis !== undefined && axis !== -1 && axis !== 3 && !(Array.isArray(axis) && (axis[0] === 3 || axis[0] === -1))) bad(source, `layer ${name}: axis ${JSON.stringify(axis)}`);
        const n = op.kind === 'conv' ? op.cout : op.channels;
        const eps = num(c.epsilon, 1e-3);
        const gamma = c.scale === false ? null : weight(name, 'gamma', n);
        const beta = c.center === false ? null : weight(name, 'beta', n);
        const mean = weight(name, 'moving_mean', n);
        const variance = weight(name, 'moving_variance', n);
        const w = op.weights.slice();
        const bias = new Float32Array(n);
        const per = w.length / n;
        for (let ch = 0; ch < n; ch++) {
          const s = (gamma ? gamma[ch] : 1) / Math.sqrt(variance[ch] + eps);
          bias[ch] = (op.bias[ch] - mean[ch]) * s + (beta ? beta[ch] : 0);
          if (op.kind === 'conv') for (let i = ch; i < w.length; i += n) w[i] *= s; // cout is the fastest axis
          else for (let i = 0; i < per; i++) w[ch * per + i] *= s;
        }
        replace(op, { ...op, weights: w, bias });
        out = op.output;
        break;
      }
      case 'ReLU':
      case 'Activation': {
        const input = l.inputs[0];
        resolve(input);
        let clamp: [number, number] | null;
        if (l.className === 'ReLU') {
          if (num(c.negative_slope, 0) !== 0 || num(c.threshold, 0) !== 0) bad(source, `layer ${name}: leaky or thresholded ReLU is not supported`);
          clamp = [0, c.max_value === null || c.max_value === undefined ? Infinity : num(c.max_value, Infinity)];
        } else {
          clamp = activationClamp(source, name, c.activation);
        }
        const op = absorbable(input);
        if (!op || op.lo !== -Infinity || op.hi !== Infinity) bad(source, `layer ${name}: an activation is only supported right after a convolution or addition whose output nothing else reads`);
        if (clamp) replace(op, { ...op, lo: clamp[0], hi: clamp[1] });
        out = op.output;
        break;
      }
      case 'Add': {
        if (l.inputs.length !== 2) bad(source, `layer ${name}: only two-input additions are supported`);
        const a = resolve(l.inputs[0]);
        const b = resolve(l.inputs[1]);
        if (channels[a] !== channels[b]) bad(source, `layer ${name}: inputs have ${channels[a]} and ${channels[b]} channels`);
        // Fuse into the convolution that produced one addend, when nothing else reads its output.
        const fuse = [[l.inputs[1], a], [l.inputs[0], b]] as const;
        let fused: ConvOp | null = null;
        for (const [convInput, other] of fuse) {
          const op = absorbable(convInput);
          // The other addend must exist before the convolution runs.
          const otherReady = other === 0 || ops.indexOf(producer[other]!) < ops.indexOf(op!);
          if (op?.kind === 'conv' && op.lo === -Infinity && op.hi === Infinity && op.residual === null && other !== op.output && otherReady) {
            fused = { ...op, residual: other };
            replace(op, fused);
            break;
          }
        }
        if (fused) {
          out = fused.output;
        } else {
          out = newTensor(channels[a], null);
          const op: AddOp = { kind: 'add', name, inputs: [a, b], output: out, lo: -Infinity, hi: Infinity };
          ops.push(op);
          producer[out] = op;
        }
        break;
      }
      default:
        bad(source, `layer ${name}: layer type ${l.className} is not supported`);
    }
    tensorOf.set(name, out);
    return out;
  };

  const outMap = new Map<string, number>();
  for (const o of outputs) outMap.set(o, resolve(o));
  return { source, input: SYMMETRIC_INPUT, channels, ops, outputs: outMap, lastUse: lastUses(channels.length, ops) };
}

/** Op index after which each tensor is no longer read (-1: never read). */
export function lastUses(tensors: number, ops: readonly NetworkOp[]): number[] {
  const lastUse = new Array<number>(tensors).fill(-1);
  ops.forEach((op, i) => {
    const reads = op.kind === 'add' ? op.inputs : op.kind === 'conv' && op.residual !== null ? [op.input, op.residual] : [op.input];
    for (const t of reads) lastUse[t] = i;
  });
  return lastUse;
}

function windowOutput(size: number, k: number, s: number, before: number, after: number, same: boolean): { out: number; padBefore: number } {
  const padded = size + before + after;
  if (same) {
    const out = Math.ceil(padded / s);
    const total = Math.max((out - 1) * s + k - padded, 0);
    return { out, padBefore: before + Math.floor(total / 2) };
  }
  return { out: Math.floor((padded - k) / s) + 1, padBefore: before };
}

/** Output size and the effective top/left padding of a windowed op for a given input size. */
export function windowGeometry(op: ConvOp | DepthwiseOp | MaxPoolOp, input: Shape): { shape: Shape; padTop: number; padLeft: number } {
  const y = windowOutput(input.height, op.kh, op.sh, op.padding.top, op.padding.bottom, op.padding.same);
  const x = windowOutput(input.width, op.kw, op.sw, op.padding.left, op.padding.right, op.padding.same);
  return { shape: { height: y.out, width: x.out }, padTop: y.padBefore, padLeft: x.padBefore };
}

/** The spatial size of every tensor for an input size; rejects inputs too small for the network. */
export function tensorShapes(graph: NetworkGraph, input: Shape): Shape[] {
  const shapes: Shape[] = [input];
  for (const op of graph.ops) {
    let s: Shape;
    if (op.kind === 'add') {
      const [a, b] = op.inputs.map((t) => shapes[t]);
      if (a.height !== b.height || a.width !== b.width) throw new TttError('SIZE_MISMATCH', `${graph.source}: layer ${op.name} adds ${a.width}x${a.height} and ${b.width}x${b.height} maps`);
      s = a;
    } else {
      s = windowGeometry(op, shapes[op.input]).shape;
    }
    if (s.height < 1 || s.width < 1) {
      throw new TttError('INVALID_INPUT', `an input of ${input.width}x${input.height} is too small for the network: layer ${op.name} would be empty`);
    }
    shapes[op.output] = s;
  }
  return shapes;
}
