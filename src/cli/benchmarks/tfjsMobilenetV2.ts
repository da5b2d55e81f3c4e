// GluonCV's ImageNet MobileNetV2 1.0 on TensorFlow.js (CPU backend; a dev dependency loaded lazily, see
// tfjs.ts), written from the raw tensors with nothing folded: ImageNet mean/std, every batch norm as
// tf.batchNorm, ONNX kernels transposed to [kh][kw][cin][cout] ([kh][kw][c][1] for the depthwise ones),
// symmetric padding 1. The independent reference of the gluon.ts graph in tests and the speed baseline of
// `ttt bench` when the process runs the ImageNet MobileNetV2.

import type * as Tf from '@tensorflow/tfjs';
import { GLUON_BLOCK_STRIDES, GLUON_BN_EPSILON, GLUON_MOBILENET_PREFIX, gluonLayers, IMAGENET_MEAN, IMAGENET_STD } from '../../core/features/mobilenet/gluon.ts';
import type { NamedTensors } from '../../core/features/resnet/graph.ts';
import { forwardModel, loadTfjs, onnxLayers, type TfjsModel } from './tfjs.ts';

/** The outputs `layers` (gluon.ts names) for an RGB input in [0, 1] (planar 3 x h x w), in request order. */
export async function tfjsGluonMobileNet(weights: NamedTensors, layers: readonly string[], height: number, width: number): Promise<TfjsModel> {
  const tf = await loadTfjs();
  const { held, keep, kernel, bn, conv } = onnxLayers(tf, weights, GLUON_MOBILENET_PREFIX, GLUON_BN_EPSILON);
  const mean = keep(tf.tensor1d([...IMAGENET_MEAN]));
  const std = keep(tf.tensor1d([...IMAGENET_STD]));
  const names = gluonLayers(weights);
  const depth = Math.max(...layers.map((l) => names.get(l) ?? Infinity));
  if (!Number.isFinite(depth)) throw new Error(`${weights.source}: unknown layer among ${layers.join(', ')}`);

  const forward = (image: Tf.Tensor4D): Tf.Tensor4D[] => {
    const outs: Tf.Tensor4D[] = [];
    let x = tf.relu6(bn(conv(tf.div(tf.sub(image, mean), std) as Tf.Tensor4D, 'conv0', 2), 'batchnorm0'));
    const stem = x;
    for (let k = 0; k <= depth; k++) {
      const b = `linearbottleneck${k}_`;
      let y = tf.relu6(bn(conv(x, `${b}conv0`, 1), `${b}batchnorm0`));
      y = tf.relu6(bn(tf.depthwiseConv2d(y, kernel(`${b}conv1`, true), GLUON_BLOCK_STRIDES[k], 1), `${b}batchnorm1`));
      y = bn(conv(y, `${b}conv2`, 1), `${b}batchnorm2`);
      x = GLUON_BLOCK_STRIDES[k] === 1 && y.shape[3] === x.shape[3] ? tf.add(y, x) : y;
      outs.push(x);
    }
    return layers.map((l) => (names.get(l)! < 0 ? stem : outs[names.get(l)!]));
  };

  return forwardModel(tf, forward, held, height, width);
}
