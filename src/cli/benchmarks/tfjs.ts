// TensorFlow.js (CPU backend; a dev dependency) running a layers model pruned to the requested outputs at a
// given input size: the independent reference of the network runtime in tests and the speed baseline of
// `ttt bench`. The package is loaded when first used, so that a production install (`npm ci --omit=dev`)
// runs `ttt bench` without it (loadTfjs() then says why there is no baseline).

import type * as Tf from '@tensorflow/tfjs';
import type { LayersModelArtifacts } from '../../core/features/mobilenet/weights.ts';
import type { NamedTensors } from '../../core/features/resnet/graph.ts';
import type { FeatureTensor } from '../../core/types.ts';

interface Layer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: [string, number, number, unknown][][];
}

let loaded: Promise<typeof Tf> | null = null;

/** TensorFlow.js on its CPU backend; rejects naming the missing package in a production install. */
export function loadTfjs(): Promise<typeof Tf> {
  loaded ??= import('@tensorflow/tfjs').then(
    async (tf) => {
      await tf.setBackend('cpu');
      return tf;
    },
    (error: unknown) => {
      loaded = null;
      throw new Error(`the TensorFlow.js baseline needs the dev dependency @tensorflow/tfjs, which is not installed (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`);
    },
  );
  return loaded;
}

/** The topology reduced to the ancestors of `outputs`, with the input size set to height x width. */
export function prunedTopology(artifacts: LayersModelArtifacts, outputs: readonly string[], height: number, width: number): unknown {
  const topology = artifacts.modelTopology as { model_config?: unknown };
  const model = structuredClone(topology.model_config ?? topology) as { config: { layers: Layer[]; output_layers: unknown } };
  const byName = new Map(model.config.layers.map((l) => [l.name, l]));
  const keep = new Set<string>();
  const visit = (n: string) => {
    if (keep.has(n)) return;
    keep.add(n);
    for (const node of byName.get(n)!.inbound_nodes) for (const [src] of node) visit(src);
  };
  outputs.forEach(visit);
  model.config.layers = model.config.layers.filter((l) => keep.has(l.name));
  for (const l of model.config.layers) if (l.class_name === 'InputLayer') l.config.batch_input_shape = [null, height, width, 3];
  model.config.output_layers = outputs.map((o) => [o, 0, 0]);
  return model;
}

export interface TfjsModel {
  /** Runs the model on a planar 3 x h x w input; planar C x h x w outputs in request order. */
  run(input: Float32Array): Promise<FeatureTensor[]>;
  dispose(): void;
}

/**
 * The weights of a hand-written network on TensorFlow.js, created on first use from the raw ONNX-layout tensors
 * named `prefix + name` (kept across runs in `held`): convolution kernels transposed to [kh][kw][cin][cout]
 * (depthwise [c][1][kh][kw] to [kh][kw][c][1]), batch norms as tf.batchNorm with `epsilon`.
 */
export function onnxLayers(tf: typeof Tf, weights: NamedTensors, prefix: string, epsilon: number) {
  const held: Tf.Tensor[] = [];
  const keep = <T extends Tf.Tensor>(t: T): T => {
    held.push(tf.keep(t));
    return t;
  };
  const raw = (name: string): { shape: readonly number[]; values: Float32Array } => {
    const t = weights.tensors.get(prefix + name);
    if (!t) throw new Error(`${weights.source}: ${prefix}${name} is missing`);
    return t;
  };
  const kernels = new Map<string, Tf.Tensor4D>();
  const kernel = (name: string, depthwise = false): Tf.Tensor4D => {
    let k = kernels.get(name);
    if (!k) {
      const w = raw(`${name}_weight`);
      k = keep(tf.tidy(() => tf.transpose(tf.tensor4d(w.values, w.shape as [number, number, number, number]), depthwise ? [2, 3, 0, 1] : [2, 3, 1, 0])));
      kernels.set(name, k);
    }
    return k;
  };
  const bns = new Map<string, Tf.Tensor1D[]>();
  const bn = (x: Tf.Tensor4D, name: string): Tf.Tensor4D => {
    let p = bns.get(name);
    if (!p) {
      p = ['running_mean', 'running_var', 'beta', 'gamma'].map((part) => keep(tf.tensor1d(raw(`${name}_${part}`).values)));
      bns.set(name, p);
    }
    return tf.batchNorm(x, p[0], p[1], p[2], p[3], epsilon);
  };
  /** A dense convolution with symmetric padding (k - 1) / 2. */
  const conv = (x: Tf.Tensor4D, name: string, stride: number): Tf.Tensor4D => {
    const k = kernel(name);
    return tf.conv2d(x, k, stride, (k.shape[0] - 1) / 2);
  };
  return { held, keep, raw, kernel, bn, conv };
}

/**
 * A TfjsModel from a forward function over an NHWC batch of one (the hand-written networks): the planar input
 * transposed to NHWC, the outputs back to planar; `held` (the weights) disposed with the model.
 */
export function forwardModel(tf: typeof Tf, forward: (image: Tf.Tensor4D) => Tf.Tensor4D[], held: Tf.Tensor[], height: number, width: number): TfjsModel {
  return {
    async run(input: Float32Array): Promise<FeatureTensor[]> {
      const n = height * width;
      const nhwc = new Float32Array(3 * n);
      for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) nhwc[i * 3 + c] = input[c * n + i];
      const ys = tf.tidy(() => forward(tf.tensor4d(nhwc, [1, height, width, 3])));
      const out: FeatureTensor[] = [];
      for (const y of ys) {
        const [, h, w, c] = y.shape;
        const v = (await y.data()) as Float32Array;
        const planar = new Float32Array(c * h * w);
        for (let i = 0; i < h * w; i++) for (let ch = 0; ch < c; ch++) planar[ch * h * w + i] = v[i * c + ch];
        out.push({ data: planar, channels: c, height: h, width: w });
      }
      tf.dispose(ys);
      return out;
    },
    dispose: () => tf.dispose(held),
  };
}

export async function tfjsModel(artifacts: LayersModelArtifacts, outputs: readonly string[], height: number, width: number): Promise<TfjsModel> {
  const tf = await loadTfjs();
  const weightSpecs = artifacts.weightsManifest.flatMap((g) => g.weights) as Tf.io.WeightsManifestEntry[];
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: prunedTopology(artifacts, outputs, height, width) as Tf.io.ModelJSON['modelTopology'], weightSpecs, weightData: artifacts.weightData }),
    { strict: false },
  );
  return {
    async run(input: Float32Array): Promise<FeatureTensor[]> {
      const n = height * width;
      const nhwc = new Float32Array(3 * n);
      for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) nhwc[i * 3 + c] = input[c * n + i];
      const x = tf.tensor4d(nhwc, [1, height, width, 3]);
      const ys = model.predict(x) as Tf.Tensor | Tf.Tensor[];
      const list = Array.isArray(ys) ? ys : [ys];
      const out: FeatureTensor[] = [];
      for (const y of list) {
        const [, h, w, c] = y.shape as number[];
        const v = (await y.data()) as Float32Array;
        const planar = new Float32Array(c * h * w);
        for (let i = 0; i < h * w; i++) for (let ch = 0; ch < c; ch++) planar[ch * h * w + i] = v[i * c + ch];
        out.push({ data: planar, channels: c, height: h, width: w });
      }
      tf.dispose([x, ...list]);
      return out;
    },
    dispose: () => model.dispose(),
  };
}
