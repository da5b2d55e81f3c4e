// The `resnet50` feature extractor: the ImageNet ResNet-50 v2's activated stage outputs (features.layers:
// stem, stage1, stage2, stage3 at strides 4, 4, 8, 16), through the same aggregation and resampling as the
// mobilenetv2 extractor (features/mobilenet/extractor.ts).

import type { FeatureExtractor } from '../extractor.ts';
import { DEFAULT_LAYERS as MOBILENET_LAYERS, type MobileNetOptions, networkExtractor } from '../mobilenet/extractor.ts';
import { DEFAULT_RESNET_LAYERS } from './graph.ts';
import { resnet50Graph } from './registry.ts';

/**
 * The layers to extract: features.layers, except that its default (MobileNetV2's block names, the option's
 * default while mobilenetv2 is the default extractor) stands for ResNet's default stages.
 */
export function resnetLayersFor(layers: readonly string[]): readonly string[] {
  const isMobileNetDefault = layers.length === MOBILENET_LAYERS.length && layers.every((l, i) => l === MOBILENET_LAYERS[i]);
  return isMobileNetDefault ? DEFAULT_RESNET_LAYERS : layers;
}

export function resnetExtractor(options: MobileNetOptions): FeatureExtractor {
  const layers = resnetLayersFor(options.layers);
  return networkExtractor('resnet50', () => resnet50Graph(layers), options.inputSize);
}
