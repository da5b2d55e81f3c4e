// Where the core gets the ResNet-50 weights without knowing the runtime: the host registers a loader of the
// weights file's bytes once per process (src/models/resnet50.ts for Node); the file is decoded on first use
// and each compiled layer set is cached.

import { TttError } from '../../errors.ts';
import type { NetworkGraph } from '../mobilenet/graph.ts';
import { buildResnetGraph } from './graph.ts';
import { decodeTensorFile, type TensorFile } from './weights.ts';

export type WeightsFileLoader = () => Promise<{ bytes: Uint8Array; what: string }>;

let loader: WeightsFileLoader | null = null;
let file: Promise<TensorFile> | null = null;
const graphs = new Map<string, Promise<NetworkGraph>>();

/** Registers (or replaces) the source of the `resnet50` extractor's weights. */
export function provideResnet50(load: WeightsFileLoader): void {
  loader = load;
  file = null;
  graphs.clear();
}

export function hasResnet50(): boolean {
  return loader !== null;
}

/** The decoded weights file (read once). */
export function resnet50Weights(): Promise<TensorFile> {
  if (!loader) {
    return Promise.reject(new TttError('NOT_FOUND', 'the resnet50 extractor has no weights: the host must register them first (registerResnet50() in src/models/resnet50.ts)'));
  }
  if (!file) {
    const load = loader;
    file = load().then(({ bytes, what }) => decodeTensorFile(bytes, what));
    file.catch(() => (file = null));
  }
  return file;
}

/** The network compiled up to `layers` (cached per layer set). */
export function resnet50Graph(layers: readonly string[]): Promise<NetworkGraph> {
  const key = layers.join(',');
  let g = graphs.get(key);
  if (!g) {
    g = resnet50Weights().then((f) => buildResnetGraph(f, layers));
    g.catch(() => graphs.delete(key));
    graphs.set(key, g);
  }
  return g;
}
