// Where the core gets pretrained weights without knowing the runtime: the host registers a loader once per
// process (src/models/mobilenet.ts for Node): either a Keras layers model (a model.json on disk) or the
// bytes of a weights file of the GluonCV ImageNet MobileNetV2 (gluon.ts, the file src/models/mobilenetv2.ts
// ships). The weights are read on first use and each compiled layer set is cached.

import { TttError } from '../../errors.ts';
import { decodeTensorFile } from '../resnet/weights.ts';
import { buildGluonMobileNetGraph, isGluonMobileNet } from './gluon.ts';
import { buildGraph, type NetworkGraph } from './graph.ts';
import type { LayersModelArtifacts } from './weights.ts';

export type ArtifactsLoader = () => Promise<LayersModelArtifacts>;
export type MobileNetFileLoader = () => Promise<{ bytes: Uint8Array; what: string }>;

type Builder = (layers: readonly string[]) => NetworkGraph;

let loader: (() => Promise<Builder>) | null = null;
let builder: Promise<Builder> | null = null;
const graphs = new Map<string, Promise<NetworkGraph>>();

function provide(load: () => Promise<Builder>): void {
  loader = load;
  builder = null;
  graphs.clear();
}

/** Registers (or replaces) the source of the `mobilenetv2` extractor's weights: a Keras layers model. */
export function provideMobileNet(load: ArtifactsLoader): void {
  provide(async () => {
    const artifacts = await load();
    return (layers) => buildGraph(artifacts, layers);
  });
}

/** Registers (or replaces) the source of the `mobilenetv2` extractor's weights: a GluonCV MobileNetV2 weights file. */
export function provideMobileNetFile(load: MobileNetFileLoader): void {
  provide(async () => {
    const { bytes, what } = await load();
    const file = decodeTensorFile(bytes, what);
    if (!isGluonMobileNet(file)) throw new TttError('UNSUPPORTED_FORMAT', `${what}: not a MobileNetV2 weights file (no mobilenetv20_features_conv0_weight)`);
    return (layers) => buildGluonMobileNetGraph(file, layers);
  });
}

export function hasMobileNet(): boolean {
  return loader !== null;
}

/** The network compiled up to `layers` (cached per layer set). */
export function mobileNetGraph(layers: readonly string[]): Promise<NetworkGraph> {
  const key = layers.join(',');
  let g = graphs.get(key);
  if (!g) {
    if (!loader) {
      return Promise.reject(
        new TttError('NOT_FOUND', 'the mobilenetv2 extractor has no weights: the host must register them first (registerMobileNet() in src/models/mobilenet.ts)'),
      );
    }
    const load = loader;
    if (!builder) {
      builder = load();
      builder.catch(() => (builder = null));
    }
    g = builder.then((build) => build(layers));
    g.catch(() => graphs.delete(key));
    graphs.set(key, g);
  }
  return g;
}
