// The built-in PatchCore scorer's benchmark, shared by bench/score.ts and `ttt bench` (key `score`): one
// size x size image against a bank of the default size (PATCHCORE_DEFAULTS.coresetRows) of the default
// backbone's layers, our WGSL path (network, patch features, search, score map, readback) against
// TensorFlow.js on the CPU doing the same forward and an exact nearest-neighbour search, side by side.

import type * as Tf from '@tensorflow/tfjs';
import { hasResnet50, resnet50Weights } from '../../core/features/resnet/registry.ts';
import { hasMobileNet } from '../../core/features/mobilenet/registry.ts';
import { BANK_VERSION, type Backbone, type MemoryBank } from '../../core/patchcore/bank.ts';
import { backboneGraph, PATCHCORE_DEFAULTS, PatchCoreScorer, scorerLayers, type SearchMode } from '../../core/patchcore/patchcore.ts';
import { pcgHash } from '../../core/rng.ts';
import { nodeGpu } from '../../gpu/node.ts';
import { registerMobileNet } from '../../models/mobilenet.ts';
import { registerResnet50 } from '../../models/resnet50.ts';
import { benchImage } from './mobilenet.ts';
import { timeRuns } from './ttt.ts';

export interface ScoreBench {
  /** The scorer's default search (projected for wide patches), whole score() of one image. */
  readonly gpuMs: number;
  readonly search: SearchMode;
  /** The same with the exact search. */
  readonly gpuExactMs: number;
  /** TensorFlow.js CPU: the same forward, 3x3 local means, resampling to the patch grid, exact search; null without it. */
  readonly tfjsMs: number | null;
  readonly tfjsUnavailable?: string;
  readonly backbone: Backbone;
  readonly layers: readonly string[];
  readonly bankSize: number;
  readonly size: number;
  readonly patches: number;
  readonly channels: number;
}

/** A bank of random patches (the search costs the same for any values) of `backbone`'s `layers`. */
async function randomBank(backbone: Backbone, layers: readonly string[], bankSize: number, size: number): Promise<MemoryBank> {
  const graph = await backboneGraph(backbone, layers);
  const channels = [...graph.outputs.values()].reduce((a, t) => a + graph.channels[t], 0);
  const features = Float32Array.from({ length: bankSize * channels }, (_, i) => (pcgHash(i) / 4294967296) * 4);
  return {
    header: {
      ...PATCHCORE_DEFAULTS, version: BANK_VERSION, backbone, weights: graph.source, layers: [...layers],
      size, patches: bankSize, channels, images: 1, sourcePatches: bankSize, coresetRows: bankSize,
      geometryScales: [], rgbChannels: channels, geometryChannels: 0, normalization: null,
    },
    features,
  };
}

export async function benchScore(
  bankSize = PATCHCORE_DEFAULTS.coresetRows,
  size = 256,
  runs = 10,
  backbone: Backbone = PATCHCORE_DEFAULTS.backbone,
  layers: readonly string[] = scorerLayers(backbone),
  warmup = 2,
): Promise<ScoreBench> {
  if (!hasMobileNet()) registerMobileNet();
  if (!hasResnet50()) registerResnet50();
  const { gpu } = await nodeGpu();
  const bank = await randomBank(backbone, layers, bankSize, size);
  const { channels } = bank.header;
  const image = benchImage(size, size);
  const scorer = await PatchCoreScorer.load(gpu, bank);
  const gpuMs = await timeRuns(runs, () => scorer.score(image), warmup);
  const search = scorer.search;
  scorer.release();
  const exact = await PatchCoreScorer.load(gpu, bank, { search: 'exact' });
  const gpuExactMs = await timeRuns(runs, () => exact.score(image), warmup);
  exact.release();
  const grid = Math.round(size / PATCHCORE_DEFAULTS.stride);
  let tfjsMs: number | null = null;
  let tfjsUnavailable: string | undefined;
  if (backbone === 'resnet50') {
    try {
      tfjsMs = await tfjsScoreMs(bank.features, channels, layers, image.data, size, grid, runs);
    } catch (e) {
      tfjsUnavailable = (e as Error).message;
    }
  } else {
    tfjsUnavailable = 'the TensorFlow.js side of the score benchmark runs the resnet50 backbone';
  }
  return {
    gpuMs: +gpuMs.toFixed(1), search, gpuExactMs: +gpuExactMs.toFixed(1), tfjsMs: tfjsMs === null ? null : +tfjsMs.toFixed(1),
    ...(tfjsUnavailable && { tfjsUnavailable }), backbone, layers, bankSize, size, patches: grid * grid, channels,
  };
}

/**
 * TensorFlow.js (CPU backend): the ResNet-50 forward to `layers` (tfjsResnet, outputs read back), then each
 * output's 3x3 mean (avgPool, same padding), bilinear resampling to the grid x grid patch grid, and the exact
 * nearest bank patch of every patch (|b|^2 - 2 q.b by matMul, min, then + |q|^2, sqrt), read back.
 */
async function tfjsScoreMs(features: Float32Array, channels: number, layers: readonly string[], gray: Float32Array, size: number, grid: number, runs: number): Promise<number> {
  const { loadTfjs } = await import('./tfjs.ts');
  const { tfjsResnet } = await import('./tfjsResnet.ts');
  const tf = await loadTfjs();
  const model = await tfjsResnet(await resnet50Weights(), layers, size, size);
  const bankSize = features.length / channels;
  const bankT = tf.tidy(() => tf.transpose(tf.tensor2d(features, [bankSize, channels])));
  const bankNorm = tf.tidy(() => tf.sum(tf.square(bankT), 0).expandDims(0));
  const input = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) input.set(gray, c * size * size);
  try {
    return await timeRuns(runs, async () => {
      const outs = await model.run(input);
      const dist = tf.tidy(() => {
        const maps = outs.map((o) => {
          const m = tf.transpose(tf.tensor3d(o.data, [o.channels, o.height, o.width]), [1, 2, 0]).expandDims(0) as Tf.Tensor4D;
          return tf.image.resizeBilinear(tf.avgPool(m, 3, 1, 'same'), [grid, grid]);
        });
        const q = tf.reshape(tf.concat(maps, 3), [grid * grid, channels]) as Tf.Tensor2D;
        const score = tf.sub(bankNorm, tf.mul(tf.matMul(q, bankT), 2));
        return tf.sqrt(tf.relu(tf.add(tf.min(score, 1), tf.sum(tf.square(q), 1))));
      });
      await dist.data();
      dist.dispose();
    }, 1);
  } finally {
    tf.dispose([bankT, bankNorm]);
    model.dispose();
  }
}
