// Converts the ImageNet MobileNetV2 1.0 weights (.npy per tensor, /work/shared/models/mobilenetv2-imagenet, see
// its README) into the one file the project ships: models/mobilenetv2-imagenet/weights.bin. Kept: the stem
// (conv0 + batchnorm0) and all 17 linear bottlenecks (0..16, strides 2..32, the deepest 320 channels); not the
// final 1x1 convolution to 1280 channels (conv1, batchnorm1: 410k of the 2.26M values, never a feature layer
// here) nor the classifier. Blocks 13..16 are kept (0.87M values, 1.7 MB) so that every block output the
// Keras MobileNetV2 offered as features.layers (block_13_expand .. block_16_project_BN) still has a
// counterpart. Convolution kernels are stored as float16 (ONNX layout [cout][cin/groups][kh][kw], unchanged),
// batch norms raw as float32 (folded at load, src/core/features/mobilenet/gluon.ts).
//
//   npx tsx scripts/convert-mobilenetv2.ts [../shared/models/mobilenetv2-imagenet/weights] [models/mobilenetv2-imagenet/weights.bin]

import { dirname, join, resolve } from 'node:path';
import { convertNpyFolder } from './convert-resnet50.ts';

const here = dirname(new URL(import.meta.url).pathname);
const src = resolve(process.argv[2] ?? join(here, '..', '..', 'shared', 'models', 'mobilenetv2-imagenet', 'weights'));
const dst = resolve(process.argv[3] ?? join(here, '..', 'models', 'mobilenetv2-imagenet', 'weights.bin'));

const wanted = (name: string): boolean =>
  /^mobilenetv20_features_(batchnorm0|conv0|linearbottleneck\d+_(batchnorm|conv)\d)_(weight|gamma|beta|running_mean|running_var)$/.test(name);

const main = (): void =>
  convertNpyFolder(src, dst, wanted, 'ImageNet MobileNetV2 1.0 (ONNX Model Zoo mobilenetv2-1.0, GluonCV) up to linearbottleneck16, float16 convolutions');

if (process.argv[1] && resolve(process.argv[1]) === resolve(here, 'convert-mobilenetv2.ts')) main();
