// Runs a compiled network graph on the GPU: weights are uploaded once per device, every op is one dispatch,
// intermediate tensors go back to the pool after their last reader. Tensors are planar with the plane
// stride rounded up to 4 floats (see shaders/conv.wgsl).

import { TttError } from '../../errors.ts';
import { ceilDiv, type Gpu, type GpuArray } from '../../gpu.ts';
import type { ImageTensor } from '../../types.ts';
import { type ConvOp, type InputNormalization, type NetworkGraph, type Shape, SYMMETRIC_INPUT, tensorShapes, windowGeometry } from './graph.ts';
import { COUT_BLOCK, DEPTHWISE_ROWS, depthwise3x3Fits, depthwise3x3Kernel, depthwiseKernel, im2colKernel, type PointwiseTile, pointwiseTiles, maxPoolKernel, NET_WG, netKernels, tileWidth } from './kernels.ts';

export interface GpuTensor {
  readonly data: GpuArray;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  /** Floats between the starts of two channel planes (h * w rounded up to 4). */
  readonly stride: number;
}

/** Largest side of a network input: keeps every dispatch within the per-dimension workgroup limit. */
export const MAX_NETWORK_SIDE = 2048;

export const planeStride = (shape: Shape): number => Math.ceil((shape.height * shape.width) / 4) * 4;

let preferredTile: keyof typeof pointwiseTiles = 'wider';
/** For benchmarks: the pointwise tile used where the output channels allow it (the narrow one otherwise). */
export function setPointwiseTile(name: keyof typeof pointwiseTiles): void {
  preferredTile = name;
}

const F32_MAX = 3.4028234663852886e38;
const finite = (v: number): number => Math.max(-F32_MAX, Math.min(F32_MAX, v));

/** Convolution weights as the kernels read them: [kh][kw][cin][coutPad], bias [coutPad], zero-padded. */
export function packConv(op: ConvOp): { weights: Float32Array; bias: Float32Array; coutPad: number } {
  const coutPad = Math.ceil(op.cout / COUT_BLOCK) * COUT_BLOCK;
  const rows = op.kh * op.kw * op.cin;
  const weights = new Float32Array(rows * coutPad);
  for (let r = 0; r < rows; r++) weights.set(op.weights.subarray(r * op.cout, (r + 1) * op.cout), r * coutPad);
  const bias = new Float32Array(coutPad);
  bias.set(op.bias);
  return { weights, bias, coutPad };
}

const isPointwise = (op: ConvOp): boolean =>
  op.kh === 1 && op.kw === 1 && op.sh === 1 && op.sw === 1 &&
  op.padding.top + op.padding.bottom + op.padding.left + op.padding.right === 0;

interface Uploaded {
  weights: GpuArray;
  bias: GpuArray;
  coutPad: number;
}

const uploads = new WeakMap<Gpu, WeakMap<NetworkGraph, (Uploaded | null)[]>>();

function uploaded(gpu: Gpu, graph: NetworkGraph): (Uploaded | null)[] {
  let perGpu = uploads.get(gpu);
  if (!perGpu) uploads.set(gpu, (perGpu = new WeakMap()));
  let list = perGpu.get(graph);
  if (!list) {
    list = graph.ops.map((op) => {
      if (op.kind === 'add' || op.kind === 'maxpool') return null;
      if (op.kind === 'depthwise') return { weights: gpu.upload(op.weights), bias: gpu.upload(op.bias), coutPad: op.channels };
      const p = packConv(op);
      return { weights: gpu.upload(p.weights), bias: gpu.upload(p.bias), coutPad: p.coutPad };
    });
    perGpu.set(graph, list);
  }
  return list;
}

/**
 * The network's input: the image resized to `size`, grey replicated to RGB, mapped per channel from [0, 1]
 * by the network's normalization (default MobileNetV2's [-1, 1]).
 */
export function preprocessImage(gpu: Gpu, image: ImageTensor, size: Shape, uploadedImage?: GpuArray, norm: InputNormalization = SYMMETRIC_INPUT): GpuTensor {
  if (Math.max(size.width, size.height) > MAX_NETWORK_SIDE) {
    throw new TttError('TOO_LARGE', `a network input of ${size.width}x${size.height} exceeds ${MAX_NETWORK_SIDE} pixels per side: set features.inputSize`);
  }
  const stride = planeStride(size);
  const src = uploadedImage ?? gpu.upload(image.data);
  const dst = gpu.alloc(3 * stride);
  // At the image's own size the resize is the identity: 4 pixels per invocation, same values.
  const sameSize = image.width === size.width && image.height === size.height && (size.width * size.height) % 4 === 0;
  const perInvocation = sameSize ? 4 : 1;
  gpu.run(
    sameSize ? netKernels.preprocessSameSize : netKernels.preprocess,
    {
      srcW: image.width, srcH: image.height, srcChannels: image.channels, dstW: size.width, dstH: size.height, dstStride: stride,
      scaleX: image.width / size.width, scaleY: image.height / size.height,
      mul0: norm.scale[0], mul1: norm.scale[1], mul2: norm.scale[2], add0: norm.offset[0], add1: norm.offset[1], add2: norm.offset[2],
    },
    { src, dst },
    [...gpu.fold(ceilDiv(size.width * size.height, perInvocation * NET_WG)), 3],
  );
  if (!uploadedImage) gpu.release(src);
  return { data: dst, channels: 3, height: size.height, width: size.width, stride };
}

/**
 * Records the forward pass up to the graph's outputs. Returns the requested tensors (the caller releases
 * them); the input stays the caller's.
 */
export function runNetwork(gpu: Gpu, graph: NetworkGraph, input: GpuTensor): Map<string, GpuTensor> {
  if (input.channels !== graph.channels[0]) {
    throw new TttError('SIZE_MISMATCH', `${graph.source}: the network expects ${graph.channels[0]} input channels, got ${input.channels}`);
  }
  const shapes = tensorShapes(graph, input);
  const weights = uploaded(gpu, graph);
  const keep = new Set(graph.outputs.values());
  const live: (GpuTensor | null)[] = graph.channels.map(() => null);
  live[0] = input;
  const alloc = (t: number): GpuTensor => {
    const stride = planeStride(shapes[t]);
    const tensor = { data: gpu.alloc(graph.channels[t] * stride), channels: graph.channels[t], ...shapes[t], stride };
    live[t] = tensor;
    return tensor;
  };
  graph.ops.forEach((op, index) => {
    if (op.kind === 'add') {
      const [a, b] = op.inputs.map((t) => live[t]!);
      const out = alloc(op.output);
      const n4 = (out.channels * out.stride) / 4;
      gpu.run(netKernels.add, { n4, lo: finite(op.lo), hi: finite(op.hi) }, { a: a.data, b: b.data, output: out.data }, ceilDiv(n4, NET_WG));
    } else if (op.kind === 'maxpool') {
      const inp = live[op.input]!;
      const out = alloc(op.output);
      const geo = windowGeometry(op, inp);
      const tw = tileWidth(out.width);
      gpu.run(
        maxPoolKernel(op, tw),
        {
          inW: inp.width, inH: inp.height, inStride: inp.stride, outW: out.width, outH: out.height, outStride: out.stride,
          padTop: geo.padTop, padLeft: geo.padLeft, lo: finite(op.lo), hi: finite(op.hi),
        },
        { input: inp.data, output: out.data },
        [ceilDiv(out.width, tw), ceilDiv(out.height, NET_WG / tw), op.channels],
      );
    } else {
      const inp = live[op.input]!;
      const out = alloc(op.output);
      const w = weights[index]!;
      const geo = windowGeometry(op, inp);
      const window = {
        inW: inp.width, inH: inp.height, inStride: inp.stride, outW: out.width, outH: out.height, outStride: out.stride,
        padTop: geo.padTop, padLeft: geo.padLeft, lo: finite(op.lo), hi: finite(op.hi),
      };
      if (op.kind === 'depthwise' && depthwise3x3Fits(op, inp.width, out.width, geo.padLeft)) {
        // vec4 rows; as many output rows per invocation (up to DEPTHWISE_ROWS) as keep a channel's workgroups full.
        const tw = tileWidth(out.width / 4);
        const rowsPerGroup = NET_WG / tw;
        let rows = DEPTHWISE_ROWS;
        while (rows > 1 && rows * rowsPerGroup > out.height) rows /= 2;
        const groups: [number, number, number] = [ceilDiv(out.width / 4, tw), ceilDiv(out.height, rowsPerGroup * rows), op.channels];
        gpu.run(depthwise3x3Kernel(op.sw, tw, rows, geo.padLeft), window, { input: inp.data, weights: w.weights, bias: w.bias, output: out.data }, groups);
      } else if (op.kind === 'depthwise') {
        const tw = tileWidth(ceilDiv(out.width, 4));
        const groups: [number, number, number] = [ceilDiv(out.width, 4 * tw), ceilDiv(out.height, NET_WG / tw), op.channels];
        gpu.run(depthwiseKernel(op, tw), window, { input: inp.data, weights: w.weights, bias: w.bias, output: out.data }, groups);
      } else {
        // A window convolution first lays its windows out as rows (im2col), then both are one product.
        let cols: GpuArray | null = null;
        if (!isPointwise(op)) {
          const tw = tileWidth(out.width);
          cols = gpu.alloc(op.kh * op.kw * op.cin * out.stride);
          gpu.run(im2colKernel(op, tw), { ...window, cin: op.cin }, { input: inp.data, output: cols }, [ceilDiv(out.width, tw), ceilDiv(out.height, NET_WG / tw), 1]);
        }
        const params = { stride4: out.stride / 4, cin: op.kh * op.kw * op.cin, cout: op.cout, coutPad4: w.coutPad / 4, lo: window.lo, hi: window.hi };
        const preferred: PointwiseTile = pointwiseTiles[preferredTile];
        const fallback = preferred === pointwiseTiles.narrow ? preferred : pointwiseTiles.tall;
        const tile = w.coutPad % preferred.couts === 0 ? preferred : fallback;
        const groups: [number, number, number] = [ceilDiv(out.stride / 4, tile.pixels4 * tile.workgroup), w.coutPad / tile.couts, 1];
        const buffers = { input: cols ?? inp.data, weights: w.weights, bias: w.bias, output: out.data };
        if (op.residual === null) gpu.run(tile.plain, params, buffers, groups);
        else gpu.run(tile.residual, params, { ...buffers, residual: live[op.residual]!.data }, groups);
        gpu.release(cols);
      }
    }
    // Free what no later op reads (never the caller's input, never a requested output).
    for (let t = 1; t < live.length; t++) {
      if (live[t] && graph.lastUse[t] === index && !keep.has(t)) {
        gpu.release(live[t]!.data);
        live[t] = null;
      }
    }
  });
  const out = new Map<string, GpuTensor>();
  for (const [name, t] of graph.outputs) out.set(name, live[t]!);
  return out;
}

/** Reads a tensor back as compact planes (C x h x w). */
export async function readTensor(gpu: Gpu, t: GpuTensor): Promise<Float32Array> {
  const raw = await gpu.readF32(t.data, t.channels * t.stride);
  const n = t.height * t.width;
  const out = new Float32Array(t.channels * n);
  for (let c = 0; c < t.channels; c++) out.set(raw.subarray(c * t.stride, c * t.stride + n), c * n);
  return out;
}
