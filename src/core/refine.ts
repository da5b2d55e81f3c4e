// Local refinement of the classifier's mask (refine.mode=local): a second test-time classifier, on fine
// features (the image's own channels, the filterbank) that follow a defect's edges, trained on the first
// mask's own neighbourhood: anomalous rows are the first pass's seeds inside its mask, nominal rows a seeded
// draw from the ring around the mask (refine.ring pixels wide). Its decision can only remove pixels from the
// first mask (and add within refine.grow pixels of it): the coarse classifier says where, the fine one says
// exactly which pixels.

import { readMask } from './binarize.ts';
import { predict, trainClassifier } from './classifier.ts';
import { materializeCoarse } from './coarseFeatures.ts';
import { chooseExtractor, extractFeatures, releaseFeatures, type FeatureExtractor } from './features/index.ts';
import { weightStandardization } from './features/groups.ts';
import { gatherTrainingSet } from './gather.ts';
import type { Gpu, GpuArray } from './gpu.ts';
import { channelMoments, hostGather, hostPredictMask, hostTrain } from './hostStage.ts';
import { COMPACT_BLOCK } from './kernels.ts';
import type { TttOptions } from './options.ts';
import { LABEL_ANOMALOUS, LABEL_NOMINAL } from './pseudoLabels.ts';
import { dilateMask } from './regions.ts';
import { pcgHash, refineSeedKey } from './rng.ts';
import type { ImageTensor } from './types.ts';
import { stageFeatures } from './wasm/hostKernels.ts';
import type { GpuValidity } from './validity.ts';

export interface RefineLabels {
  /** One byte per pixel: 0 none, 1 anomalous, 2 nominal. */
  labels: Uint8Array;
  /** The labelled pixels in pixel order (the training rows). */
  pixels: Uint32Array;
  counts: { anomalous: number; nominal: number; eligible: number };
  /** Where the refined mask may be: the first mask dilated by refine.grow. */
  allowed: Uint8Array;
}

/**
 * The second classifier's pseudo-labels: the first pass's anomalous seeds inside the first mask, and up to
 * refine.nominalCount pixels of the ring dilate(mask, ring) \ mask drawn by their keyed hashes (the smallest
 * keys, as the first pass's nominal draw). Null when either side is empty (the first mask stays).
 */
export function refineLabels(mask: Uint8Array, seeds: Uint8Array, width: number, height: number, options: TttOptions, valid?: Uint8Array | null): RefineLabels | null {
  const o = options.refine;
  const n = width * height;
  const labels = new Uint8Array(n);
  let anomalous = 0;
  for (let i = 0; i < n; i++) {
    if (mask[i] && seeds[i] === LABEL_ANOMALOUS) {
      labels[i] = LABEL_ANOMALOUS;
      anomalous++;
    }
  }
  const outer = dilateMask(mask, width, height, o.ring);
  const ring: number[] = [];
  const seedKey = refineSeedKey(options.seed);
  for (let i = 0; i < n; i++) if (outer[i] && !mask[i] && (!valid || valid[i])) ring.push(i);
  const eligible = ring.length;
  if (anomalous === 0 || eligible === 0) return null;
  const keyed = ring.map((i) => ({ i, k: pcgHash((i ^ seedKey) >>> 0) })).sort((a, b) => a.k - b.k || a.i - b.i);
  const take = Math.min(o.nominalCount, eligible);
  for (let r = 0; r < take; r++) labels[keyed[r].i] = LABEL_NOMINAL;
  const pixels = new Uint32Array(anomalous + take);
  let row = 0;
  for (let i = 0; i < n; i++) if (labels[i] !== 0) pixels[row++] = i;
  const allowed = dilateMask(mask, width, height, o.grow);
  return { labels, pixels, counts: { anomalous, nominal: take, eligible }, allowed };
}

/** The refined mask: the fine classifier's decision within the allowed region (the first mask, grown by refine.grow). */
export function applyRefine(decision: Uint8Array, allowed: Uint8Array): Uint8Array {
  const out = new Uint8Array(decision.length);
  for (let i = 0; i < out.length; i++) out[i] = decision[i] & allowed[i];
  return out;
}

/** The refining classifier's extractor: refine.sources combined, each source one group. */
export function refineExtractor(options: TttOptions): FeatureExtractor {
  return chooseExtractor({ ...options, features: { ...options.features, extractor: 'combined', sources: options.refine.sources, groupNormalize: true } });
}

/**
 * refine.mode=local in plain TypeScript (the host path, and the reference of refineOnGpu): the fine
 * features standardized over the image (valid pixels), the ring's labels, hostTrain, the decision within
 * the allowed region.
 */
export async function refineOnHost(gpu: Gpu, image: ImageTensor, mask: Uint8Array, seeds: Uint8Array, scores: Float32Array, options: TttOptions, valid: Uint8Array | null): Promise<Uint8Array> {
  const labels = refineLabels(mask, seeds, image.width, image.height, options, valid);
  if (!labels) return mask;
  const host = await refineExtractor(options).extractHost!(gpu, image);
  const features = { data: materializeCoarse(host), channels: host.channels, width: image.width, height: image.height };
  // Copied once into the WebAssembly kernels' memory for the moments and the prediction (null: JS loops).
  const staged = stageFeatures(features.data, image.width * image.height, host.channels);
  const standardization = weightStandardization(channelMoments(features, valid, staged), host.groups, host.channels);
  const set = hostGather(labels, features, standardization);
  const report = hostTrain(set, labels.counts, options);
  const decision = hostPredictMask(report.weights, features, standardization, scores, -Infinity, valid, staged);
  return applyRefine(decision, labels.allowed);
}

/**
 * refine.mode=local on the GPU: the labels from the first pass's seeds (read back) and mask, made on the
 * host as the regions are, then the first pass's kernels: extraction (standardized, group-weighted),
 * gathering, SGD, prediction.
 */
export async function refineOnGpu(
  gpu: Gpu,
  image: ImageTensor,
  mask: Uint8Array,
  seedsGpu: GpuArray,
  scores: GpuArray,
  options: TttOptions,
  validity: GpuValidity | null,
  valid: Uint8Array | null,
): Promise<Uint8Array> {
  const n = image.width * image.height;
  const seeds = Uint8Array.from(new Uint32Array(await gpu.read(seedsGpu, n)));
  const labels = refineLabels(mask, seeds, image.width, image.height, options, valid);
  if (!labels) return mask;
  const blocks = Math.ceil(n / COMPACT_BLOCK);
  const blockCounts = new Uint32Array(blocks);
  for (const p of labels.pixels) blockCounts[Math.floor(p / COMPACT_BLOCK)]++;
  const owned: GpuArray[] = [];
  const features = await extractFeatures(gpu, image, refineExtractor(options));
  try {
    const gpuLabels = { labels: gpu.upload(Uint32Array.from(labels.labels)), blockCounts: gpu.upload(blockCounts), counts: labels.counts };
    owned.push(gpuLabels.labels, gpuLabels.blockCounts);
    const set = gatherTrainingSet(gpu, gpuLabels, labels.pixels.length, features);
    owned.push(set.x, set.targets, set.pixels);
    const { model } = await trainClassifier(gpu, set, labels.counts, options);
    owned.push(model);
    const { decision, mask: packed } = predict(gpu, model, features, scores, -Infinity, validity);
    owned.push(decision, packed);
    return applyRefine(await readMask(gpu, packed, n), labels.allowed);
  } finally {
    releaseFeatures(gpu, features);
    gpu.release(...owned);
  }
}
