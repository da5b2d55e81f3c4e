// Host-side choice of the MobileNetV2 a process uses (registerMobileNet): TTT_MOBILENET_MODEL when set (a
// TensorFlow.js Keras layers model on disk: model.json + the weight shards its manifest names), else
// TTT_MOBILENET_WEIGHTS: `imagenet` (the shipped GluonCV ImageNet weights, src/models/mobilenetv2.ts) or the
// path of a weights file of the shipped format; unset: DEFAULT_MOBILENET. Nothing is fetched over the network.

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { TttError } from '../core/errors.ts';
import { provideMobileNet } from '../core/features/mobilenet/registry.ts';
import type { LayersModelArtifacts, WeightsManifestGroup } from '../core/features/mobilenet/weights.ts';
import { provideMobileNetV2File, SHIPPED_MOBILENETV2 } from './mobilenetv2.ts';

/** The environment variable that points the `mobilenetv2` extractor at another layers model (model.json). */
export const MODEL_ENV = 'TTT_MOBILENET_MODEL';
/** The environment variable that picks the MobileNetV2 weights: `imagenet` or a weights file's path. */
export const MOBILENET_WEIGHTS_ENV = 'TTT_MOBILENET_WEIGHTS';
/** The MobileNetV2 used when neither variable is set. */
export const DEFAULT_MOBILENET = 'imagenet';
/** A TTT_MOBILENET_WEIGHTS value of earlier versions whose network is no longer shipped. */
const RETIRED_WEIGHTS = 'nsfwjs';

function concat(parts: readonly Uint8Array[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out.buffer;
}

/** A TensorFlow.js layers model from disk: model.json and the weight files its manifest names. */
export function loadLayersModelFiles(modelJson: string): LayersModelArtifacts {
  const path = resolve(modelJson);
  let json: { modelTopology?: unknown; weightsManifest?: WeightsManifestGroup[] };
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TttError(code === 'ENOENT' ? 'NOT_FOUND' : 'UNSUPPORTED_FORMAT', `${path}: ${(e as Error).message}`);
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new TttError('UNSUPPORTED_FORMAT', `${path}: not a TensorFlow.js layers model (needs modelTopology and weightsManifest)`);
  }
  const shards: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const file = join(dirname(path), p);
      try {
        shards.push(readFileSync(file));
      } catch (e) {
        throw new TttError('NOT_FOUND', `${path}: weight file ${file} cannot be read (${(e as Error).message})`);
      }
    }
  }
  return { modelTopology: json.modelTopology, weightsManifest: json.weightsManifest, weightData: concat(shards), source: path };
}

let registered: string | null = null;

/**
 * Makes the network available to the core for this process (read lazily, once; registering the same source
 * again keeps the loaded one): the layers model `modelJson` when given, else the weights `weights` names
 * (`imagenet` or a weights file), else DEFAULT_MOBILENET.
 */
export function registerMobileNet(modelJson = process.env[MODEL_ENV], weights = process.env[MOBILENET_WEIGHTS_ENV]): void {
  let choice: ReturnType<typeof mobileNetSelection>;
  try {
    choice = mobileNetSelection(modelJson, weights);
  } catch (e) {
    // A bad choice fails where the network is first used (like an unreadable file), not at process start.
    registered = null;
    provideMobileNet(() => Promise.reject(e));
    return;
  }
  const key = choice.kind === 'file' ? `file:${choice.path}` : `model:${choice.modelJson}`;
  if (registered === key) return;
  registered = key;
  if (choice.kind === 'file') provideMobileNetV2File(choice.path);
  else provideMobileNet(async () => loadLayersModelFiles(choice.modelJson));
}

/** Which MobileNetV2 registerMobileNet registers: the layers model `modelJson` (absolute path) or a weights file. */
export function mobileNetSelection(
  modelJson = process.env[MODEL_ENV],
  weights = process.env[MOBILENET_WEIGHTS_ENV],
): { kind: 'layers'; modelJson: string } | { kind: 'file'; path: string } {
  if (modelJson) return { kind: 'layers', modelJson: resolve(modelJson) };
  const choice = weights || DEFAULT_MOBILENET;
  if (choice === RETIRED_WEIGHTS) {
    throw new TttError(
      'INVALID_OPTION',
      `${MOBILENET_WEIGHTS_ENV}=${RETIRED_WEIGHTS}: the NSFW-tuned MobileNetV2 of the nsfwjs package is no longer shipped; use ${MOBILENET_WEIGHTS_ENV}=imagenet (the default; banks built with the old network must be rebuilt) or point ${MODEL_ENV} at that network's model.json (a TensorFlow.js layers model)`,
    );
  }
  return { kind: 'file', path: resolve(choice === 'imagenet' ? SHIPPED_MOBILENETV2 : choice) };
}
