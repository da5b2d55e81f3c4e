// The `mobilenetv2` feature extractor: the pretrained network's intermediate maps, each aggregated over its
// 3x3 neighbourhood as PatchCore does, resampled bilinearly to a target grid (the working resolution for
// test-time training, the patch grid for PatchCore) and concatenated, one chunk per layer.

import { ceilDiv, type Gpu } from '../../gpu.ts';
import type { GpuFeatures, ImageTensor } from '../../types.ts';
import type { FeatureExtractor } from '../extractor.ts';
import { resampleBilinear } from '../resample.ts';
import { type NetworkGraph, type Shape } from './graph.ts';
import { preprocessImage, runNetwork } from './forward.ts';
import { localMeanKernel, NET_WG, tileWidth } from './kernels.ts';
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

/**
 * The graph's outputs for one image resized to `inputShape`, aggregated and resampled to `target`, as chunks of whole channels in
 * request order (a layer is split across chunks only when it exceeds the device's binding limit).
 */
export function networkFeatureMaps(gpu: Gpu, graph: NetworkGraph, image: ImageTensor, inputShape: Shape, target: Shape): GpuFeatures {
  const input = preprocessImage(gpu, image, inputShape);
  const outputs = runNetwork(gpu, graph, input);
  gpu.release(input.data);
  const chunks: { data: ReturnType<Gpu['alloc']>; channels: number }[] = [];
  const names: string[] = [];
  for (const [layer, t] of outputs) {
    const plane = t.width * t.height;
    const perChunk = Math.max(1, Math.floor(gpu.maxElements / Math.max(plane, target.width * target.height)));
    const tw = tileWidth(t.width);
    for (let c0 = 0; c0 < t.channels; c0 += perChunk) {
      const channels = Math.min(perChunk, t.channels - c0);
      const mean = gpu.alloc(channels * plane);
      gpu.run(
        localMeanKernel(tw),
        { width: t.width, height: t.height, inStride: t.stride, radius: AGGREGATION_RADIUS, c0, pad0: 0, pad1: 0, pad2: 0 },
        { input: t.data, output: mean },
        [ceilDiv(t.width, tw), ceilDiv(t.height, NET_WG / tw), channels],
      );
      if (t.width === target.width && t.height === target.height) {
        chunks.push({ data: mean, channels });
      } else {
        chunks.push({ data: resampleBilinear(gpu, mean, channels, t, target), channels });
        gpu.release(mean);
      }
    }
    for (let c = 0; c < t.channels; c++) names.push(`${layer}.${c}`);
    gpu.release(t.data);
  }
  return { chunks, channels: names.length, width: target.width, height: target.height, names };
}

export function mobilenetExtractor(options: MobileNetOptions): FeatureExtractor {
  return {
    name: 'mobilenetv2',
    async extract(gpu: Gpu, image: ImageTensor): Promise<GpuFeatures> {
      const graph = await mobileNetGraph(options.layers);
      return networkFeatureMaps(gpu, graph, image, networkInputSize(image, options.inputSize), image);
    },
  };
}
