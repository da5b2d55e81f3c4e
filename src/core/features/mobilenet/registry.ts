// Where the core gets pretrained weights without knowing the runtime: the host registers a loader once per
// process (src/models/nsfwjs.ts for Node); the weights are read on first use and each compiled layer set
// is cached.

import { TttError } from '../../errors.ts';
import { buildGraph, type NetworkGraph } from './graph.ts';
import type { LayersModelArtifacts } from './weights.ts';

export type ArtifactsLoader = () => Promise<LayersModelArtifacts>;

let loader: ArtifactsLoader | null = null;
let artifacts: Promise<LayersModelArtifacts> | null = null;
const graphs = new Map<string, Promise<NetworkGraph>>();

/** Registers (or replaces) the source of the `mobilenetv2` extractor's weights. */
export function provideMobileNet(load: ArtifactsLoader): void {
  loader = load;
  artifacts = null;
  graphs.clear();
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
        new TttError('NOT_FOUND', 'the mobilenetv2 extractor has no weights: the host must register them first (registerMobileNet() in src/models/nsfwjs.ts)'),
      );
    }
    const load = loader;
    if (!artifacts) {
      artifacts = load();
      artifacts.catch(() => (artifacts = null));
    }
    g = artifacts.then((a) => buildGraph(a, layers));
    g.catch(() => graphs.delete(key));
    graphs.set(key, g);
  }
  return g;
}
