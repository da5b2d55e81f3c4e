// Host-side loading of pretrained network weights: the Keras MobileNetV2 bundled in the pinned `nsfwjs`
// package (topology and base64 weights embedded in UMD modules), or any TensorFlow.js layers model on disk
// (model.json + weight shards) named by TTT_MOBILENET_MODEL; and the choice of the MobileNetV2 a process
// uses (registerMobileNet): TTT_MOBILENET_MODEL when set, else TTT_MOBILENET_WEIGHTS: `imagenet` (the shipped
// GluonCV ImageNet weights, src/models/mobilenetv2.ts), `nsfwjs`, or the path of a weights file of the
// shipped format; unset: DEFAULT_MOBILENET. Nothing is fetched over the network.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { TttError } from '../core/errors.ts';
import { provideMobileNet } from '../core/features/mobilenet/registry.ts';
import type { LayersModelArtifacts, WeightsManifestGroup } from '../core/features/mobilenet/weights.ts';
import { provideMobileNetV2File, SHIPPED_MOBILENETV2 } from './mobilenetv2.ts';

const require = createRequire(import.meta.url);

/** The environment variable that points the `mobilenetv2` extractor at another layers model (model.json). */
export const MODEL_ENV = 'TTT_MOBILENET_MODEL';
/** The environment variable that picks the MobileNetV2 weights: `imagenet`, `nsfwjs` or a weights file's path. */
export const MOBILENET_WEIGHTS_ENV = 'TTT_MOBILENET_WEIGHTS';
/** The MobileNetV2 used when neither variable is set. */
export const DEFAULT_MOBILENET: 'imagenet' | 'nsfwjs' = 'imagenet';

function concat(parts: readonly Uint8Array[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out.buffer;
}

/** The MobileNetV2 (alpha 1.0, ImageNet backbone) that ships inside nsfwjs. */
export function loadNsfwjsMobileNetV2(): LayersModelArtifacts {
  // nsfwjs's export map hides the model files; locate them from its entry point.
  const entry = require.resolve('nsfwjs');
  const dir = join(dirname(entry), '..', 'models', 'mobilenet_v2');
  const model = require(join(dir, 'model.min.js')) as { modelTopology?: unknown; weightsManifest?: WeightsManifestGroup[] };
  if (!model?.modelTopology || !Array.isArray(model.weightsManifest)) {
    throw new TttError('UNSUPPORTED_FORMAT', `${dir}/model.min.js does not hold a layers model (modelTopology + weightsManifest)`);
  }
  const shards: Uint8Array[] = [];
  for (const group of model.weightsManifest) {
    for (const path of group.paths) {
      const b64 = require(join(dir, `${path}.min.js`)) as unknown;
      if (typeof b64 !== 'string') throw new TttError('UNSUPPORTED_FORMAT', `${dir}/${path}.min.js does not hold base64 weight data`);
      shards.push(Buffer.from(b64, 'base64'));
    }
  }
  return { modelTopology: model.modelTopology, weightsManifest: model.weightsManifest, weightData: concat(shards), source: `nsfwjs ${nsfwjsVersion()} mobilenet_v2` };
}

function nsfwjsVersion(): string {
  const pkg = JSON.parse(readFileSync(join(dirname(require.resolve('nsfwjs')), '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
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

/** The weights the `mobilenetv2` extractor uses: TTT_MOBILENET_MODEL when set, else the bundled network. */
export function loadMobileNetArtifacts(modelJson = process.env[MODEL_ENV]): LayersModelArtifacts {
  return modelJson ? loadLayersModelFiles(modelJson) : loadNsfwjsMobileNetV2();
}

let registered: string | null = null;

/**
 * Makes the network available to the core for this process (read lazily, once; registering the same source
 * again keeps the loaded one): the layers model `modelJson` when given, else the weights `weights` names
 * (`imagenet`, `nsfwjs`, or a weights file), else DEFAULT_MOBILENET.
 */
export function registerMobileNet(modelJson = process.env[MODEL_ENV], weights = process.env[MOBILENET_WEIGHTS_ENV]): void {
  const choice = mobileNetSelection(modelJson, weights);
  const key = choice.kind === 'file' ? `file:${choice.path}` : choice.modelJson ? `model:${resolve(choice.modelJson)}` : 'nsfwjs';
  if (registered === key) return;
  registered = key;
  if (choice.kind === 'file') provideMobileNetV2File(choice.path);
  else provideMobileNet(async () => loadMobileNetArtifacts(choice.modelJson));
}

/** Which MobileNetV2 registerMobileNet registers: a layers model (nsfwjs's unless `modelJson`) or a weights file. */
export function mobileNetSelection(
  modelJson = process.env[MODEL_ENV],
  weights = process.env[MOBILENET_WEIGHTS_ENV],
): { kind: 'layers'; modelJson: string | undefined } | { kind: 'file'; path: string } {
  const choice = weights || DEFAULT_MOBILENET;
  if (modelJson || choice === 'nsfwjs') return { kind: 'layers', modelJson: modelJson || undefined };
  return { kind: 'file', path: resolve(choice === 'imagenet' ? SHIPPED_MOBILENETV2 : choice) };
}
