// The `mobilenetv2` feature extractor: the pretrained network's intermediate maps, each aggregated over its
// 3x3 neighbourhood as PatchCore does, resampled bilinearly to a target grid (the working resolution for
// test-time training, the patch grid for PatchCore) and concatenated, one chunk per layer.

import { ceilDiv, type Gpu } from '../../gpu.ts';
import type { GpuFeatures, ImageTensor } from '../../types.ts';
import type { FeatureExtractor, HostFeatures } from '../extractor.ts';
import { resampleBilinear } from '../resample.ts';
import type { CoarseLayer } from '../../coarseFeatures.ts';
import { type NetworkGraph, type Shape } from './graph.ts';
import { preprocessImage, runNetwork } from './forward.ts';
import { localMean3Kernel, localMeanKernel, NET_WG, tileWidth } from './kernels.ts';
import { mobileNetGraph } from './registry.ts';

/** MobileNetV2's block outputs at strides 4, 8 and 16. */
export const DEFAULT_LAYERS: readonly string[] = ['block_2_add', 'block_5_add', 'block_12_add'];

/** Radius of the local aggregation (1: 3x3, as PatchCore). */
export const AGGREGATION_RADIUS = 1;

export interface MobileNetOptions {
  readonly layers: readonly string[];
  /** Longest side of the network input in pixels (aspect ratio kept); 0: the image's own size. */
  readonly inputSize: number;
}

/** The network's input size for an image. */
export function networkInputSize(image: Shape, inputSize: number): Shape {
  if (inputSize <= 0) return { width: image.width, height: image.height };
  const scale = inputSize / Math.max(image.width, image.height);
  return { width: Math.max(1, Math.round(image.width * scale)), height: Math.max(1, Math.round(image.height * scale)) };
}

/** One layer's 3x3 local means at the layer's own resolution, in chunks of whole channels (the caller releases them). */
interface LayerMeans {
  readonly layer: string;
  readonly shape: Shape;
  readonly channels: number;
  readonly chunks: { data: ReturnType<Gpu['alloc']>; channels: number }[];
}

/** The graph's outputs for one image resized to `inputShape`, each aggregated over its 3x3 neighbourhood on the GPU. */
function networkLocalMeans(gpu: Gpu, graph: NetworkGraph, image: ImageTensor, inputShape: Shape, target: Shape): LayerMeans[] {
  const input = preprocessImage(gpu, image, inputShape, undefined, graph.input);
  const outputs = runNetwork(gpu, graph, input);
  gpu.release(input.data);
  const layers: LayerMeans[] = [];
  for (const [layer, t] of outputs) {
    const plane = t.width * t.height;
    const perChunk = Math.max(1, Math.floor(gpu.maxElements / Math.max(plane, target.width * target.height)));
    // Radius 1 on widths that are multiples of 4: 4 means per invocation from vec4 rows (same sums).
    const rows4 = AGGREGATION_RADIUS === 1 && t.width % 4 === 0;
    const tw = tileWidth(rows4 ? t.width / 4 : t.width);
    const chunks: LayerMeans['chunks'] = [];
    for (let c0 = 0; c0 < t.channels; c0 += perChunk) {
      const channels = Math.min(perChunk, t.channels - c0);
      const mean = gpu.alloc(channels * plane);
      gpu.run(
        rows4 ? localMean3Kernel(tw) : localMeanKernel(tw),
        { width: t.width, height: t.height, inStride: t.stride, radius: AGGREGATION_RADIUS, c0 },
        { input: t.data, output: mean },
        [ceilDiv(rows4 ? t.width / 4 : t.width, tw), ceilDiv(t.height, NET_WG / tw), channels],
      );
      chunks.push({ data: mean, channels });
    }
    layers.push({ layer, shape: { width: t.width, height: t.height }, channels: t.channels, chunks });
    gpu.release(t.data);
  }
  return layers;
}

const layerNames = (layers: readonly LayerMeans[]): string[] =>
  layers.flatMap((l) => Array.from({ length: l.channels }, (_, c) => `${l.layer}.${c}`));

/**
 * A fingerprint of an image's values (FNV-1a over the f32 bits, ~0.3 ms for 256x256x3): kept coarse means
 * are only reused for an image that still holds the values they were computed from.
 */
function fingerprint(image: ImageTensor): number {
  const bits = new Uint32Array(image.data.buffer, image.data.byteOffset, image.data.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < bits.length; i++) h = Math.imul(h ^ bits[i], 0x01000193);
  return h >>> 0;
}

/**
 * One slot per device: the coarse means of the last image whose maps were computed with `keep` (PatchCore's
 * scoring), for an `extractHost` of the same image through the same network at the same input size (the
 * test-time stage of the same inspection), which then skips the network. Replaced (and released) by the
 * next kept image; taken (and released by the taker) by the matching `extractHost`.
 */
interface Kept {
  readonly image: ImageTensor;
  readonly print: number;
  readonly graph: NetworkGraph;
  readonly input: Shape;
  readonly layers: LayerMeans[];
}
const kept = new WeakMap<Gpu, Kept>();

function keepMeans(gpu: Gpu, entry: Kept): void {
  const old = kept.get(gpu);
  if (old) for (const l of old.layers) for (const c of l.chunks) gpu.release(c.data);
  kept.set(gpu, entry);
}

function takeMeans(gpu: Gpu, graph: NetworkGraph, image: ImageTensor, input: Shape): LayerMeans[] | null {
  const k = kept.get(gpu);
  if (!k || k.image !== image || k.graph !== graph || k.input.width !== input.width || k.input.height !== input.height) return null;
  kept.delete(gpu);
  if (k.print === fingerprint(image)) return k.layers;
  for (const l of k.layers) for (const c of l.chunks) gpu.release(c.data);
  return null;
}

/**
 * The graph's outputs for one image resized to `inputShape`, aggregated and resampled to `target`, as chunks of whole channels in
 * request order (a layer is split across chunks only when it exceeds the device's binding limit). With `keep`,
 * the coarse means stay on the device for a following `networkFeatureMapsHost` of the same image (see Kept).
 */
export function networkFeatureMaps(gpu: Gpu, graph: NetworkGraph, image: ImageTensor, inputShape: Shape, target: Shape, keep = false): GpuFeatures {
  const layers = networkLocalMeans(gpu, graph, image, inputShape, target);
  const chunks: { data: ReturnType<Gpu['alloc']>; channels: number }[] = [];
  for (const l of layers) {
    for (const { data: mean, channels } of l.chunks) {
      if (l.shape.width === target.width && l.shape.height === target.height && !keep) {
        chunks.push({ data: mean, channels });
      } else {
        chunks.push({ data: resampleBilinear(gpu, mean, channels, l.shape, target), channels });
        if (!keep) gpu.release(mean);
      }
    }
  }
  if (keep) keepMeans(gpu, { image, print: fingerprint(image), graph, input: inputShape, layers });
  return { chunks, channels: chunks.reduce((a, c) => a + c.channels, 0), width: target.width, height: target.height, names: layerNames(layers) };
}

/**
 * The same maps for the host (the host path of the test-time stage): the network and the local means on the
 * GPU, and the small coarse means read back (152 channels for a 256x256 input: 0.6 MB instead of the 40 MB of
 * the resampled maps); the host stage works on them through the resampling (src/core/coarseFeatures.ts).
 * The means kept by PatchCore's scoring of the same image are reused (no second network forward).
 */
export async function networkFeatureMapsHost(gpu: Gpu, graph: NetworkGraph, image: ImageTensor, inputShape: Shape, target: Shape): Promise<HostFeatures> {
  const layers = takeMeans(gpu, graph, image, inputShape) ?? networkLocalMeans(gpu, graph, image, inputShape, target);
  try {
    const coarse: CoarseLayer[] = [];
    for (const l of layers) {
      const plane = l.shape.width * l.shape.height;
      const data = new Float32Array(l.channels * plane);
      let offset = 0;
      for (const chunk of l.chunks) {
        data.set(await gpu.readF32(chunk.data, chunk.channels * plane), offset);
        offset += chunk.channels * plane;
      }
      coarse.push({ data, channels: l.channels, ...l.shape });
    }
    return { layers: coarse, channels: coarse.reduce((a, l) => a + l.channels, 0), width: target.width, height: target.height, names: layerNames(layers) };
  } finally {
    for (const l of layers) for (const c of l.chunks) gpu.release(c.data);
  }
}

/** An extractor of a compiled network's layers (the graph is resolved on first use and cached by its registry). */
export function networkExtractor(name: string, graph: () => Promise<NetworkGraph>, inputSize: number): FeatureExtractor {
  return {
    name,
    async extract(gpu: Gpu, image: ImageTensor): Promise<GpuFeatures> {
      return networkFeatureMaps(gpu, await graph(), image, networkInputSize(image, inputSize), image);
    },
    async extractHost(gpu: Gpu, image: ImageTensor): Promise<HostFeatures> {
      return networkFeatureMapsHost(gpu, await graph(), image, networkInputSize(image, inputSize), image);
    },
  };
}

export function mobilenetExtractor(options: MobileNetOptions): FeatureExtractor {
  return networkExtractor('mobilenetv2', () => mobileNetGraph(options.layers), options.inputSize);
}
