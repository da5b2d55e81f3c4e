// Benchmark of the ImageNet ResNet-50 v2 forward (to the activated stage 1, 2 and 3 outputs), shared by
// `ttt bench` and bench/profile-resnet.ts: our WGSL forward against TensorFlow.js (CPU backend) running the
// same network from the same weights file, side by side; medians after warm-up.

import { DEFAULT_RESNET_LAYERS } from '../../core/features/resnet/graph.ts';
import { hasResnet50, resnet50Graph, resnet50Weights } from '../../core/features/resnet/registry.ts';
import { nodeGpu } from '../../gpu/node.ts';
import { registerResnet50 } from '../../models/resnet50.ts';
import { benchImage, timeNetwork } from './mobilenet.ts';
import { timeRuns } from './ttt.ts';

export interface ResnetBench {
  /** Input side (size x size). */
  readonly size: number;
  /** Our WGSL forward: preprocessing (upload included) and the network to the three activated stage outputs, synced. */
  readonly gpuMs: number;
  /** TensorFlow.js (CPU backend), same network and weights (batch norms unfolded), outputs read back; null without it. */
  readonly tfjsMs: number | null;
  readonly tfjsRuns: number;
  readonly tfjsUnavailable?: string;
  /** The whole resnet50 extractor (forward, 3x3 local means, resampling of the 1792 channels to size x size). */
  readonly extractMs: number;
}

/** `runs` timed WGSL runs after 2 warm-up runs; TensorFlow.js, about 50x slower, `tfjsRuns` after 1. */
export async function benchResnet(sizes: readonly number[], runs = 10, tfjsRuns = 3): Promise<ResnetBench[]> {
  if (!hasResnet50()) registerResnet50();
  const { gpu } = await nodeGpu();
  const graph = await resnet50Graph(DEFAULT_RESNET_LAYERS);
  const { loadTfjs } = await import('./tfjs.ts');
  const tfjsUnavailable = await loadTfjs().then(
    () => undefined,
    (error: Error) => error.message,
  );
  const out: ResnetBench[] = [];
  for (const size of sizes) {
    const image = benchImage(size, size);
    const { gpuMs, extractMs } = await timeNetwork(gpu, graph, image, runs);
    let tfjsMs: number | null = null;
    if (!tfjsUnavailable) {
      const { tfjsResnet } = await import('./tfjsResnet.ts');
      const model = await tfjsResnet(await resnet50Weights(), DEFAULT_RESNET_LAYERS, size, size);
      const rgb = new Float32Array(3 * size * size);
      for (let c = 0; c < 3; c++) rgb.set(image.data, c * size * size);
      tfjsMs = +(await timeRuns(tfjsRuns, () => model.run(rgb), 1)).toFixed(1);
      model.dispose();
    }
    out.push({ size, gpuMs: +gpuMs.toFixed(1), tfjsMs, tfjsRuns, ...(tfjsUnavailable && { tfjsUnavailable }), extractMs: +extractMs.toFixed(1) });
  }
  return out;
}
