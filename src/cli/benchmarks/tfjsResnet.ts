// The ImageNet ResNet-50 v2 on TensorFlow.js (CPU backend; a dev dependency loaded lazily, see tfjs.ts),
// written from the raw tensors with nothing folded: ImageNet mean/std, the input batch norm, every batch
// norm as tf.batchNorm, ONNX kernels transposed to [kh][kw][cin][cout]. The independent reference of the
// resnet50 graph in tests and the speed baseline of `ttt bench`.

import type * as Tf from '@tensorflow/tfjs';
import { BN_EPSILON, IMAGENET_MEAN, IMAGENET_STD, type NamedTensors, RESNET_PREFIX, stageBlocks } from '../../core/features/resnet/graph.ts';
import { forwardModel, loadTfjs, onnxLayers, type TfjsModel } from './tfjs.ts';

/** The activated outputs `layers` (stem, stageN) for an RGB input in [0, 1] (planar 3 x h x w), in request order. */
export async function tfjsResnet(weights: NamedTensors, layers: readonly string[], height: number, width: number): Promise<TfjsModel> {
  const tf = await loadTfjs();
  // Weights are created on first use, inside the forward's tidy: tf.keep holds them across runs.
  const { held, keep, kernel, bn, conv } = onnxLayers(tf, weights, RESNET_PREFIX, BN_EPSILON);
  const mean = keep(tf.tensor1d([...IMAGENET_MEAN]));
  const std = keep(tf.tensor1d([...IMAGENET_STD]));
  const blocks = stageBlocks(weights);
  const depth = Math.max(...layers.map((l) => (l === 'stem' ? 0 : Number(l.slice(5)))));

  const forward = (image: Tf.Tensor4D): Tf.Tensor4D[] => {
    const named = new Map<string, Tf.Tensor4D>();
    let x = bn(tf.div(tf.sub(image, mean), std) as Tf.Tensor4D, 'batchnorm0');
    x = tf.relu(bn(conv(x, 'conv0', 2), 'batchnorm1'));
    x = tf.maxPool(x, 3, 2, 1);
    named.set('stem', x);
    for (let s = 1; s <= depth; s++) {
      const st = `stage${s}_`;
      for (let b = 0; b < blocks[s - 1]; b++) {
        const stride = b === 0 && s > 1 ? 2 : 1;
        const c = b === 0 ? [0, 1, 2, 3] : [4 + 3 * (b - 1), 5 + 3 * (b - 1), 6 + 3 * (b - 1)];
        const p = tf.relu(bn(x, `${st}batchnorm${3 * b}`));
        let y = conv(p, `${st}conv${c[0]}`, 1);
        y = conv(tf.relu(bn(y, `${st}batchnorm${3 * b + 1}`)), `${st}conv${c[1]}`, stride);
        y = conv(tf.relu(bn(y, `${st}batchnorm${3 * b + 2}`)), `${st}conv${c[2]}`, 1);
        x = tf.add(y, b === 0 ? conv(p, `${st}conv${c[3]}`, stride) : x);
      }
      named.set(`stage${s}`, tf.relu(bn(x, `stage${s + 1}_batchnorm0`)));
    }
    return layers.map((l) => named.get(l)!);
  };

  return forwardModel(tf, forward, held, height, width);
}
