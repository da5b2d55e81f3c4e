// Benchmarks of the pretrained MobileNetV2 features (the scorer's: score.ts), shared by
// bench/features.ts and `ttt bench`: medians over `runs` timed runs after warm-up.

import { DEFAULT_LAYERS, networkFeatureMaps } from '../../core/features/mobilenet/extractor.ts';
import { preprocessImage, runNetwork } from '../../core/features/mobilenet/forward.ts';
import { hasMobileNet, mobileNetGraph } from '../../core/features/mobilenet/registry.ts';
import { pcgHash } from '../../core/rng.ts';
import type { ImageTensor } from '../../core/types.ts';
import type { NetworkGraph } from '../../core/features/mobilenet/graph.ts';
import type { Gpu } from '../../core/gpu.ts';
import { nodeGpu } from '../../gpu/node.ts';
import { timeRuns } from './ttt.ts';
import { loadLayersModelFiles, mobileNetSelection, registerMobileNet } from '../../models/mobilenet.ts';
import { readMobileNetV2File } from '../../models/mobilenetv2.ts';
import { decodeTensorFile } from '../../core/features/resnet/weights.ts';



/** A grey test texture (the timings do not depend on the content). */
export function benchImage(width: number, height: number): ImageTensor {
  const data = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = 0.5 + 0.3 * Math.sin(i * 0.013) + 0.2 * (pcgHash(i) / 4294967296 - 0.5);
  return { data, width, height, channels: 1 };
}

/** Our side of a network bench: the forward alone (preprocessing included, synced) and the whole extractor, medians. */
export async function timeNetwork(gpu: Gpu, graph: NetworkGraph, image: ImageTensor, runs: number): Promise<{ gpuMs: number; extractMs: number }> {
  const shape = { width: image.width, height: image.height };
  const gpuMs = await timeRuns(runs, async () => {
    const input = preprocessImage(gpu, image, shape, undefined, graph.input);
    const outputs = runNetwork(gpu, graph, input);
    await gpu.sync();
    gpu.release(input.data, ...[...outputs.values()].map((t) => t.data));
  });
  const extractMs = await timeRuns(runs, async () => {
    const f = networkFeatureMaps(gpu, graph, image, shape, shape);
    await gpu.sync();
    gpu.release(...f.chunks.map((c) => c.data));
  });
  return { gpuMs, extractMs };
}

export interface FeatureBench {
  /** Input side (size x size). */
  readonly size: number;
  /** Our WGSL forward: preprocessing (upload included) and the network up to the three output layers. */
  readonly gpuMs: number;
  /** TensorFlow.js (CPU backend) on the same network up to the same outputs, outputs read back; null without it. */
  readonly tfjsMs: number | null;
  /** Why there is no TensorFlow.js figure (a production install has no dev dependencies). */
  readonly tfjsUnavailable?: string;
  /** The whole mobilenetv2 extractor (forward, 3x3 aggregation, resampling to size x size). */
  readonly extractMs: number;
}

/** MobileNetV2 up to block_2_add, block_5_add and block_12_add: WGSL against tfjs-CPU, side by side. */
export async function benchFeatures(sizes: readonly number[], runs = 10): Promise<FeatureBench[]> {
  if (!hasMobileNet()) registerMobileNet();
  const { gpu } = await nodeGpu();
  const graph = await mobileNetGraph(DEFAULT_LAYERS);
  const { loadTfjs, tfjsModel } = await import('./tfjs.ts');
  const tfjsUnavailable = await loadTfjs().then(
    () => undefined,
    (error: Error) => error.message,
  );
  // TensorFlow.js runs the same network as the process: the Keras layers model, or the ImageNet weights file
  // written out in TensorFlow.js ops (tfjsMobilenetV2.ts), each on its own input range.
  const selection = mobileNetSelection();
  const artifacts = selection.kind === 'layers' ? loadLayersModelFiles(selection.modelJson) : null;
  const tensors = selection.kind === 'file' ? (({ bytes, what }) => decodeTensorFile(bytes, what))(readMobileNetV2File(selection.path)) : null;
  const out: FeatureBench[] = [];
  for (const size of sizes) {
    const image = benchImage(size, size);
    const { gpuMs, extractMs } = await timeNetwork(gpu, graph, image, runs);
    let tfjsMs: number | null = null;
    if (!tfjsUnavailable) {
      const model = tensors
        ? await (await import('./tfjsMobilenetV2.ts')).tfjsGluonMobileNet(tensors, DEFAULT_LAYERS, size, size)
        : await tfjsModel(artifacts!, DEFAULT_LAYERS, size, size);
      const input = Float32Array.from({ length: 3 * size * size }, (_, i) => (tensors ? image.data[i % (size * size)] : 2 * image.data[i % (size * size)] - 1));
      tfjsMs = +(await timeRuns(runs, () => model.run(input))).toFixed(1);
      model.dispose();
    }
    out.push({ size, gpuMs: +gpuMs.toFixed(1), tfjsMs, ...(tfjsUnavailable && { tfjsUnavailable }), extractMs: +extractMs.toFixed(1) });
  }
  return out;
}
