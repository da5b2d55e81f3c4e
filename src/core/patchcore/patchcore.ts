// The built-in anomaly scorer: PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly
// Detection", CVPR 2022) on the pretrained MobileNetV2. Patch features are the network's layers averaged
// over 3x3 and resampled to a common patch grid; the memory bank is a greedy coreset of the patches of
// nominal images; a test patch scores its distance to the nearest bank patch, and the patch scores become a
// map at the working size (bilinear, then Gaussian smoothing, sigma 4 at a 256-pixel working size), then at
// the image's own size. Image score: the map's maximum.
// With point clouds (modality 3d or both) a patch also holds, or holds only, the 3-D features of its box of
// the point cloud (geometry.ts); multimodal patches are normalized so that neither modality dominates
// (bankNormalization), and hole patches are left out of the bank and take their image's lowest score.

import { TttError, withSubjectAsync } from '../errors.ts';
import { gaussianSmooth } from '../features/filterbank.ts';
import { networkFeatureMaps, networkInputSize } from '../features/mobilenet/extractor.ts';
import { defaultOptions } from '../options.ts';
import type { NetworkGraph, Shape } from '../features/mobilenet/graph.ts';
import { mobileNetGraph } from '../features/mobilenet/registry.ts';
import { resnet50Graph } from '../features/resnet/registry.ts';
import { resampleBilinear } from '../features/resample.ts';
import type { Gpu, GpuArray } from '../gpu.ts';
import { geometryChannels } from '../features/geometry.ts';
import { kernels } from '../kernels.ts';
import type { ImageTensor, PointCloud, ScoreMap } from '../types.ts';
import { validatePointCloud } from '../validate.ts';
import { maskedSpec, releaseValidity, uploadValidity } from '../validity.ts';
import { BACKBONE_LAYERS, BANK_VERSION, backboneLayers, type Backbone, type BankHeader, type BankModality, type BankNormalization, type MemoryBank } from './bank.ts';
import { greedyCoreset, hostGreedy, readProjected, releaseProjection, uploadProjection, type GpuProjection } from './coreset.ts';
import { geometryPatchFeatures } from './geometry.ts';
import { patchcoreKernels } from './kernels.ts';
import { bankOfRows, gpuBytes, nearestDistances, projectBank, projectedNearest, releaseBank, releaseProjectedBank, releaseRows, uploadBank, uploadRows, type GpuBank, type ProjectedBank } from './knn.ts';

export interface PatchCoreConfig {
  /** rgb: MobileNetV2 layers; 3d: the 3-D features of the point cloud; both: the two concatenated. */
  readonly modality: BankModality;
  /** The network of the image features, and its layers. */
  readonly backbone: Backbone;
  readonly layers: readonly string[];
  /** Window radii (working-size pixels) of the 3-D features, as features.geometryScales. */
  readonly geometryScales: readonly number[];
  /** Working size: every image is resized so that its longest side has this many pixels (aspect kept). */
  readonly size: number;
  /** Working-size pixels per patch. */
  readonly stride: number;
  /** Share of the nominal patches the coreset keeps (1: all), when coresetRows is 0. */
  readonly coresetRatio: number;
  /** Rows the coreset keeps (at most the patches there are); 0: coresetRatio decides. */
  readonly coresetRows: number;
  /**
   * Share of each image's patches kept by a greedy k-center pre-selection within the image, in the
   * projected space, before the global coreset over the union (1: none, the exact greedy coreset). Modality
   * rgb only (a multimodal bank's normalization needs every patch first).
   */
  readonly preselect: number;
  readonly projectionDims: number;
  readonly seed: number;
}

/** Layers measured on Magnetic Tile (docs/benchmarks.md): block_12_add adds 0.03 pixel AUROC. */
export const PATCHCORE_DEFAULTS: PatchCoreConfig = {
  modality: 'rgb',
  backbone: 'resnet50',
  layers: BACKBONE_LAYERS.resnet50,
  geometryScales: defaultOptions().features.geometryScales,
  size: 256,
  stride: 8,
  coresetRatio: 0.1,
  coresetRows: 10_000,
  preselect: 1,
  projectionDims: 128,
  seed: 0,
};

/** The default layers of a backbone for the built-in scorer: what the backbone declares (bank.ts BACKBONE_LAYERS). */
export const scorerLayers: (backbone: Backbone) => readonly string[] = backboneLayers;

/** A backbone compiled up to `layers` (each registry caches its graphs). */
export function backboneGraph(backbone: Backbone, layers: readonly string[]): Promise<NetworkGraph> {
  if (backbone === 'resnet50') return resnet50Graph(layers);
  if (backbone === 'mobilenetv2') return mobileNetGraph(layers);
  throw new TttError('INVALID_OPTION', `backbone ${JSON.stringify(backbone)} (expected mobilenetv2 or resnet50)`);
}

/** The working size of an image: its longest side scaled to `size`. */
export const workingShape = (image: Shape, size: number): Shape => networkInputSize(image, size);

/** The patch grid of a working-size image: one patch per `stride` pixels. */
export function patchGrid(working: Shape, stride: number): Shape {
  return { width: Math.max(1, Math.round(working.width / stride)), height: Math.max(1, Math.round(working.height / stride)) };
}

/** Smoothing of the score map: sigma 4 at a 256-pixel working size, proportional to it. */
export const smoothingSigma = (size: number): number => (4 * size) / 256;

export interface PatchArray {
  /** Dimension-major [channels][ceil(patches / 4) * 4]. */
  readonly data: GpuArray;
  readonly patches: number;
  readonly channels: number;
  readonly working: Shape;
  readonly grid: Shape;
}

/**
 * The patch features of one image, resized to the working size, on the patch grid. With `extraChannels`,
 * the buffer has room for that many more channels after the network's, for the caller to fill (the 3-D
 * channels of modality both), so the image channels are written once.
 */
export function patchFeatures(gpu: Gpu, graph: NetworkGraph, image: ImageTensor, config: PatchCoreConfig, extraChannels = 0): PatchArray {
  const working = workingShape(image, config.size);
  const grid = patchGrid(working, config.stride);
  // The coarse means stay on the device for the test-time stage of the same image (its host path).
  const f = networkFeatureMaps(gpu, graph, image, working, grid, true);
  const patches = grid.width * grid.height;
  const stride = Math.ceil(patches / 4) * 4;
  const data = gpu.alloc((f.channels + extraChannels) * stride);
  let c0 = 0;
  for (const chunk of f.chunks) {
    if (stride === patches) gpu.copy(chunk.data, data, chunk.channels * patches, 0, c0 * stride);
    else for (let c = 0; c < chunk.channels; c++) gpu.copy(chunk.data, data, patches, c * patches, (c0 + c) * stride);
    c0 += chunk.channels;
    gpu.release(chunk.data);
  }
  return { data, patches, channels: f.channels, working, grid };
}

/** A nominal image with its point cloud (needed by modalities 3d and both). */
export interface BankSample {
  readonly image: ImageTensor;
  readonly pointCloud?: PointCloud | null;
}

const sampleOf = (s: ImageTensor | BankSample): BankSample => ('image' in s ? s : { image: s });

export interface ModalPatches extends PatchArray {
  /** 1 where the patch has a valid 3-D point (modalities 3d and both); null for rgb. */
  readonly valid: Uint8Array | null;
  readonly rgbChannels: number;
  readonly geometryChannels: number;
}

/** The patch features of `config.modality`, raw (not normalized): image channels first, then 3-D channels. */
export async function modalPatchFeatures(
  gpu: Gpu,
  graph: NetworkGraph | null,
  image: ImageTensor,
  pointCloud: PointCloud | null | undefined,
  config: PatchCoreConfig,
): Promise<ModalPatches> {
  const { modality } = config;
  if (modality === 'rgb') {
    const p = patchFeatures(gpu, graph!, image, config);
    return { ...p, valid: null, rgbChannels: p.channels, geometryChannels: 0 };
  }
  if (!pointCloud) throw new TttError('INVALID_INPUT', `the memory bank holds 3-D features (modality ${modality}): the image's point cloud is required`);
  const cloudValid = validatePointCloud(pointCloud, image);
  const working = workingShape(image, config.size);
  const grid = patchGrid(working, config.stride);
  const geo = await geometryPatchFeatures(gpu, pointCloud, working, grid, config.geometryScales, cloudValid);
  const patches = grid.width * grid.height;
  if (modality === '3d') return { data: geo.data, patches, channels: geo.channels, working, grid, valid: geo.valid, rgbChannels: 0, geometryChannels: geo.channels };
  const rgb = patchFeatures(gpu, graph!, image, config, geo.channels);
  const stride = Math.ceil(patches / 4) * 4;
  gpu.copy(geo.data, rgb.data, geo.channels * stride, 0, rgb.channels * stride);
  gpu.release(geo.data);
  return { ...rgb, channels: rgb.channels + geo.channels, valid: geo.valid, rgbChannels: rgb.channels, geometryChannels: geo.channels };
}

/**
 * The normalization of a multimodal bank, from its nominal patches (patch-major rows, image channels
 * first): each modality contributes the same expected squared distance, 2, between two independent nominal
 * patches (E|x - y|^2 = 2 tr Cov). The 3-D channels are standardized one by one (their units differ: depth
 * in the cloud's units, normals and variations unitless), then divided together by sqrt(K), K the 3-D
 * channels that vary; the image channels keep the network's relative scales (as in an rgb bank) and are
 * divided together by the square root of their total variance. A channel constant over the nominal patches
 * gets divisor 0 (it is zeroed). Statistics in f64.
 */
export function bankNormalization(rows: Float32Array, rgbChannels: number, geoChannels: number): BankNormalization {
  const channels = rgbChannels + geoChannels;
  const n = rows.length / channels;
  const sum = new Float64Array(channels);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) sum[c] += rows[i * channels + c];
  const mean = Array.from(sum, (v) => v / n);
  const m2 = new Float64Array(channels);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) {
      const d = rows[i * channels + c] - mean[c];
      m2[c] += d * d;
    }
  }
  const std = Array.from(m2, (v) => Math.sqrt(v / n));
  const divisor = new Array<number>(channels).fill(0);
  let total = 0;
  for (let c = 0; c < rgbChannels; c++) total += std[c] * std[c];
  for (let c = 0; c < rgbChannels; c++) divisor[c] = total > MIN_SPREAD ** 2 ? Math.sqrt(total) : 0;
  const varying = std.slice(rgbChannels).filter((s) => s > MIN_SPREAD).length;
  for (let c = rgbChannels; c < channels; c++) divisor[c] = std[c] > MIN_SPREAD ? std[c] * Math.sqrt(varying) : 0;
  return { mean, divisor };
}

/** Below this standard deviation a channel counts as constant (the standardize kernel's own cut is 1e-12). */
const MIN_SPREAD = 1e-9;

/** Applies a normalization in place to patch-major rows (as the GPU does to queries). */
export function normalizeRows(rows: Float32Array, normalization: BankNormalization): void {
  const { mean, divisor } = normalization;
  const channels = mean.length;
  for (let i = 0; i < rows.length; i += channels) {
    for (let c = 0; c < channels; c++) rows[i + c] = divisor[c] > 0 ? (rows[i + c] - mean[c]) / divisor[c] : 0;
  }
}

/** A bank's normalization as the standardize kernel's moments (mean at 2, divisor at 3 of 8 per channel). */
function uploadNormalization(gpu: Gpu, normalization: BankNormalization): GpuArray {
  const channels = normalization.mean.length;
  const m = new Float32Array(channels * 8);
  for (let c = 0; c < channels; c++) {
    m[c * 8 + 2] = normalization.mean[c];
    m[c * 8 + 3] = normalization.divisor[c];
  }
  return gpu.upload(m);
}

/** Normalizes dimension-major patches on the GPU in place (features.wgsl standardize); hole patches become 0. */
function normalizePatches(gpu: Gpu, q: ModalPatches, moments: GpuArray): void {
  const stride = Math.ceil(q.patches / 4) * 4;
  const valid = uploadValidity(gpu, q.valid);
  gpu.run(maskedSpec(kernels.standardize, valid), { plane: stride, planes: q.channels, weight: 1 }, { feat: q.data, moments, valid: valid.data }, [
    Math.ceil(stride / (256 * 64)),
    q.channels,
    1,
  ]);
  releaseValidity(gpu, valid);
}

export interface BuildProgress {
  /** Called after each image's patches are collected, and during the coreset selection. */
  readonly onImage?: (done: number) => void;
  readonly onCoreset?: (done: number, total: number) => void;
}

/** One nominal image's patch rows (holes left out), after the pre-selection of an rgb bank. */
export interface ImageRows {
  /** Kept patches x channels. */
  readonly rows: Float32Array;
  /** The same patches in the coreset's projected space (kept x projection channels): rgb banks; null otherwise. */
  readonly projected: Float32Array | null;
  /** The image's patches before the pre-selection. */
  readonly patches: number;
}

/** The patch rows of nominal images, one entry per image. */
export interface BankRows {
  readonly perImage: ImageRows[];
  readonly channels: number;
  readonly rgbChannels: number;
  /** Channels of `projected` (the projection's, or the patches' own when they are no wider). */
  readonly projectedChannels: number;
  /** The network's weights source ('' without image features). */
  readonly weights: string;
}

/** Patch-major rows of the listed patches of dimension-major [channels][stride] data. */
function gatherRows(planar: Float32Array, channels: number, stride: number, patches: ArrayLike<number>): Float32Array {
  const rows = new Float32Array(patches.length * channels);
  for (let c = 0; c < channels; c++) {
    const o = c * stride;
    for (let r = 0; r < patches.length; r++) rows[r * channels + c] = planar[o + patches[r]];
  }
  return rows;
}

/**
 * An image's greedy k-center subset (preselectCount of its rows, chosen on `projected` by hostGreedy from
 * coresetStart(rows, seed)), in row order.
 */
export function preselectImage(img: ImageRows, channels: number, share: number, seed: number): ImageRows {
  const n = img.rows.length / channels;
  const dims = img.projected!.length / n;
  const chosen = hostGreedy(img.projected!, dims, preselectCount(n, share), seed).sort();
  const pick = (src: Float32Array, width: number) => {
    const out = new Float32Array(chosen.length * width);
    chosen.forEach((r, i) => out.set(src.subarray(r * width, (r + 1) * width), i * width));
    return out;
  };
  return { rows: pick(img.rows, channels), projected: pick(img.projected!, dims), patches: img.patches };
}

/** The union of the pre-selected patches is about this many times the coreset's size (autoPreselect). */
export const PRESELECT_OVERSAMPLING = 4;

/**
 * The pre-selection share for a bank of `images` images: what keeps about PRESELECT_OVERSAMPLING times the
 * coreset's rows in the union (each image counted at its most patches, (size / stride)^2), 1 (none, the
 * exact greedy coreset) when that would keep them all.
 */
export function autoPreselect(images: number, config: Pick<PatchCoreConfig, 'size' | 'stride' | 'coresetRows' | 'coresetRatio'>): number {
  const perImage = Math.round(config.size / config.stride) ** 2;
  const source = images * perImage;
  const target = config.coresetRows > 0 ? Math.min(config.coresetRows, source) : config.coresetRatio * source;
  const share = (PRESELECT_OVERSAMPLING * target) / source;
  return share >= 1 ? 1 : Math.ceil(share * 1000) / 1000;
}

/** Kept patches of an image of `patches` patches under a pre-selection share. */
export const preselectCount = (patches: number, share: number): number => Math.max(1, Math.min(patches, Math.ceil(share * patches)));

/**
 * The patch features of nominal images (any sizes; each is resized to the working size), with their point
 * clouds for modalities 3d and both (hole patches are left out): the input of bankFromRows, so that banks
 * of several subsets of the same images need each image's features once. An rgb bank's patches are also
 * projected (the coreset's seeded random projection, on the GPU) image by image, and with `preselect` < 1
 * only each image's greedy k-center subset (in the projected space, seed + the image's position) is kept:
 * the whole set of full-width rows is never held at once.
 */
export async function bankRows(
  gpu: Gpu,
  samples: Iterable<ImageTensor | BankSample> | AsyncIterable<ImageTensor | BankSample>,
  config: PatchCoreConfig,
  progress: BuildProgress = {},
): Promise<BankRows> {
  if (!(config.preselect > 0 && config.preselect <= 1)) throw new TttError('INVALID_OPTION', `a pre-selection share of ${config.preselect} (expected (0, 1])`);
  const graph = config.modality === '3d' ? null : await backboneGraph(config.backbone, config.layers);
  const perImage: ImageRows[] = [];
  let channels = 0;
  let rgbChannels = 0;
  let projection: GpuProjection | null = null;
  try {
    for await (const s of samples) {
      const { image, pointCloud } = sampleOf(s);
      const p = await withSubjectAsync(`nominal image ${perImage.length + 1}`, () => modalPatchFeatures(gpu, graph, image, pointCloud, config));
      const stride = Math.ceil(p.patches / 4) * 4;
      channels = p.channels;
      rgbChannels = p.rgbChannels;
      const rgb = config.modality === 'rgb';
      if (rgb && !projection && channels > config.projectionDims) projection = uploadProjection(gpu, channels, config.projectionDims, config.seed);
      let planar: Float32Array;
      let projectedPlanar: Float32Array | null = null;
      try {
        planar = await gpu.readF32(p.data, p.channels * stride);
        if (rgb && projection) projectedPlanar = await readProjected(gpu, projection, p.data, stride);
      } finally {
        gpu.release(p.data);
      }
      const kept = Uint32Array.from({ length: p.patches }, (_, i) => i).filter((i) => !p.valid || p.valid[i] !== 0);
      if (!rgb) {
        perImage.push({ rows: gatherRows(planar, channels, stride, kept), projected: null, patches: kept.length });
      } else {
        const rows = gatherRows(planar, channels, stride, kept);
        const projected = projectedPlanar ? gatherRows(projectedPlanar, projection!.dims, stride, kept) : rows;
        const img = { rows, projected, patches: p.patches };
        perImage.push(config.preselect < 1 ? preselectImage(img, channels, config.preselect, config.seed + perImage.length) : img);
      }
      progress.onImage?.(perImage.length);
    }
  } finally {
    if (projection) releaseProjection(gpu, projection);
  }
  const projectedChannels = config.modality === 'rgb' && channels > config.projectionDims ? config.projectionDims : channels;
  return { perImage, channels, rgbChannels, projectedChannels, weights: graph?.source ?? '' };
}

/** The coreset's size for `source` nominal patches, of which `available` remain after the pre-selection. */
export function coresetCount(config: Pick<PatchCoreConfig, 'coresetRows' | 'coresetRatio'>, source: number, available: number): number {
  const want = config.coresetRows > 0 ? config.coresetRows : Math.round(config.coresetRatio * source);
  return Math.max(1, Math.min(available, want));
}

/** The arrays end to end, in order. */
export const concatRows = (arrays: readonly Float32Array[]): Float32Array => {
  const all = new Float32Array(arrays.reduce((a, r) => a + r.length, 0));
  let o = 0;
  for (const r of arrays) {
    all.set(r, o);
    o += r.length;
  }
  return all;
};

/**
 * A memory bank from the rows of some of the images bankRows read: normalization and greedy coreset (of an
 * rgb bank: over the union of the images' pre-selected patches, in the projected space they were read in).
 * `consume`: the rows' arrays are dropped from `perImage` as they are copied (one copy in memory, not two).
 */
export async function bankFromRows(gpu: Gpu, rows: BankRows, config: PatchCoreConfig, progress: BuildProgress = {}, consume = false): Promise<MemoryBank> {
  const { channels, rgbChannels } = rows;
  const perImage = consume ? rows.perImage.splice(0) : rows.perImage;
  const imageCount = perImage.length;
  if (imageCount === 0) throw new TttError('INVALID_INPUT', 'a memory bank needs at least one nominal image');
  const sourcePatches = perImage.reduce((a, r) => a + r.patches, 0);
  let features: Float32Array;
  let normalization: BankNormalization | null = null;
  if (perImage.every((r) => r.projected)) {
    const dims = rows.projectedChannels;
    const union = concatRows(perImage.map((r) => r.projected!));
    const available = union.length / dims;
    const count = coresetCount(config, sourcePatches, available);
    const chosen = await greedyCoreset(gpu, union, dims, count, { projectionDims: dims, seed: config.seed, onProgress: progress.onCoreset });
    // Union row -> (image, row): the images' first union rows.
    const starts = new Uint32Array(imageCount + 1);
    perImage.forEach((r, k) => (starts[k + 1] = starts[k] + r.rows.length / channels));
    features = new Float32Array(chosen.length * channels);
    chosen.forEach((idx, i) => {
      let lo = 0;
      let hi = imageCount - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid] <= idx) lo = mid;
        else hi = mid - 1;
      }
      const r = idx - starts[lo];
      features.set(perImage[lo].rows.subarray(r * channels, (r + 1) * channels), i * channels);
    });
  } else {
    const all = concatRows(perImage.map((r) => r.rows));
    if (consume) perImage.length = 0;
    normalization = config.modality === 'rgb' ? null : bankNormalization(all, rgbChannels, channels - rgbChannels);
    if (normalization) normalizeRows(all, normalization);
    const count = coresetCount(config, sourcePatches, all.length / channels);
    const chosen = await greedyCoreset(gpu, all, channels, count, { projectionDims: config.projectionDims, seed: config.seed, onProgress: progress.onCoreset });
    features = new Float32Array(chosen.length * channels);
    chosen.forEach((idx, i) => features.set(all.subarray(idx * channels, (idx + 1) * channels), i * channels));
  }
  const header: BankHeader = {
    version: BANK_VERSION,
    modality: config.modality,
    backbone: config.backbone,
    weights: rows.weights,
    layers: config.modality === '3d' ? [] : [...config.layers],
    geometryScales: config.modality === 'rgb' ? [] : [...config.geometryScales],
    rgbChannels,
    geometryChannels: channels - rgbChannels,
    normalization,
    size: config.size,
    stride: config.stride,
    patches: features.length / channels,
    channels,
    coresetRatio: config.coresetRatio,
    coresetRows: config.coresetRows,
    preselect: config.modality === 'rgb' ? config.preselect : 1,
    projectionDims: config.projectionDims,
    seed: config.seed,
    images: imageCount,
    sourcePatches,
  };
  return { header, features };
}

/**
 * A memory bank from nominal images (any sizes; each is resized to the working size), with their point
 * clouds for modalities 3d and both (hole patches are left out).
 */
export async function buildBank(
  gpu: Gpu,
  samples: Iterable<ImageTensor | BankSample> | AsyncIterable<ImageTensor | BankSample>,
  config: PatchCoreConfig,
  progress: BuildProgress = {},
): Promise<MemoryBank> {
  return bankFromRows(gpu, await bankRows(gpu, samples, config, progress), config, progress, true);
}

export interface PatchCoreScore {
  /** The anomaly map at the requested size. */
  readonly anomalyMap: ScoreMap;
  /** The image score: the map's maximum. */
  readonly predScore: number;
  /** With keepOnDevice: the same map on the GPU (the caller releases it), for a next stage (segment's scoreMapDevice). */
  readonly device?: GpuArray;
}

/**
 * How a scorer searches its bank: exact (brute force over the full features) or projected (the nearest entry
 * of each of `slices` slices of the bank in the coreset's random projection, re-ranked exactly; knn.ts).
 */
export type SearchMode = 'exact' | 'projected';

export interface ScorerOptions {
  /** Default: projected when the patches have at least 4x the projection's channels, else exact. */
  readonly search?: SearchMode;
  /** Slices (candidates per query) of the projected search (default 16). */
  readonly slices?: number;
}

export const DEFAULT_SEARCH_SLICES = 16;

/** The MobileNetV2 weights the project ships, by their source (graph.source, a bank's `weights`). */
const SHIPPED_MOBILENET = /^ImageNet MobileNetV2 1\.0 /;
/** The MobileNetV2 of earlier versions (the NSFW-tuned Keras network of the nsfwjs package), no longer shipped. */
const RETIRED_MOBILENET = /^nsfwjs \S+ mobilenet_v2$/;

/**
 * MobileNetV2s give the same layers and channels, but the features of different weights are not comparable:
 * a bank built with the shipped weights or the retired ones is refused by a process that has loaded the
 * shipped weights and not the same (banks naming other weights, e.g. a TTT_MOBILENET_MODEL path, and
 * processes running such a model are not checked: the model.json of the retired network can score its banks).
 */
export function checkBankWeights(header: Pick<BankHeader, 'backbone' | 'weights'>, source: string): void {
  if (header.backbone !== 'mobilenetv2' || header.weights === source || !SHIPPED_MOBILENET.test(source)) return;
  if (RETIRED_MOBILENET.test(header.weights)) {
    throw new TttError(
      'INVALID_INPUT',
      `the memory bank was built with the MobileNetV2 "${header.weights}" (the NSFW-tuned network of the nsfwjs package), whose weights are no longer shipped: rebuild the bank with the shipped ImageNet MobileNetV2 (ttt bank, or re-create the product), or, if you have that network as a TensorFlow.js layers model, point TTT_MOBILENET_MODEL at its model.json`,
    );
  }
  if (SHIPPED_MOBILENET.test(header.weights)) {
    throw new TttError(
      'INVALID_INPUT',
      `the memory bank was built with the MobileNetV2 "${header.weights}" but this process has "${source}": select the same weights (TTT_MOBILENET_WEIGHTS) or rebuild the bank`,
    );
  }
}

/** The search a bank gets by default: projected where it saves most of the work (wide patches). */
export const defaultSearch = (header: Pick<BankHeader, 'channels' | 'projectionDims'>): SearchMode =>
  header.channels >= 4 * header.projectionDims ? 'projected' : 'exact';

/**
 * A loaded memory bank, on the GPU, ready to score images. It keeps no host copy of the bank: an exact
 * scorer holds the dimension-major bank, a projected one the patch-major rows its re-rank reads and the
 * projected bank (an exact search asked of it later builds the dimension-major bank from those rows on the
 * GPU, then keeps it).
 */
export class PatchCoreScorer {
  private constructor(
    private readonly gpu: Gpu,
    readonly header: BankHeader,
    private readonly graph: NetworkGraph | null,
    /** The bank dimension-major for the exact search (a projected scorer builds it on first use). */
    private bank: GpuBank | null,
    /** The bank's normalization, uploaded once (null for an rgb bank). */
    private readonly normalization: GpuArray | null,
    /** The bank in the projected space, with its patch-major rows (null: exact search). */
    private readonly projected: ProjectedBank | null,
  ) {}

  /** Loads a bank; `bank.features` is read here only (the scorer keeps no reference to it). */
  static async load(gpu: Gpu, bank: MemoryBank, options: ScorerOptions = {}): Promise<PatchCoreScorer> {
    const { header } = bank;
    const graph = header.modality === '3d' ? null : await backboneGraph(header.backbone, header.layers);
    if (graph) checkBankWeights(header, graph.source);
    const rgb = graph ? [...graph.outputs.values()].reduce((a, t) => a + graph.channels[t], 0) : 0;
    if (graph && rgb !== header.rgbChannels) {
      throw new TttError('SIZE_MISMATCH', `the memory bank has ${header.rgbChannels}-channel image features but layers ${header.layers.join(', ')} of ${graph.source} give ${rgb}`);
    }
    const geo = header.modality === 'rgb' ? 0 : geometryChannels(header.geometryScales);
    if (geo !== header.geometryChannels) {
      throw new TttError('SIZE_MISMATCH', `the memory bank has ${header.geometryChannels} 3-D channels but scales ${header.geometryScales.join(', ')} give ${geo}`);
    }
    const search = options.search ?? defaultSearch(header);
    if (search !== 'exact' && search !== 'projected') throw new TttError('INVALID_OPTION', `search ${JSON.stringify(search)} (expected exact or projected)`);
    const slices = options.slices ?? DEFAULT_SEARCH_SLICES;
    if (!Number.isInteger(slices) || slices < 1) throw new TttError('INVALID_OPTION', `a search in ${slices} slices`);
    if (bank.features.length !== header.patches * header.channels) {
      throw new TttError('INVALID_INPUT', `a memory bank of ${header.patches} x ${header.channels} with ${bank.features.length} values`);
    }
    const normalization = header.normalization ? uploadNormalization(gpu, header.normalization) : null;
    if (search === 'projected' && header.channels > header.projectionDims) {
      // One upload, patch-major; the projection is made from it on the GPU.
      const rows = uploadRows(gpu, bank.features, header.channels);
      const projected = projectBank(gpu, rows, header.projectionDims, header.seed, slices);
      if (projected) return new PatchCoreScorer(gpu, header, graph, null, normalization, projected);
      releaseRows(gpu, rows, true);
    }
    return new PatchCoreScorer(gpu, header, graph, uploadBank(gpu, bank.features, header.channels), normalization, null);
  }

  /** Bytes the scorer holds on the device (banks, projection, normalization); it holds none on the host beyond its header. */
  get deviceBytes(): number {
    const arrays: GpuArray[] = [];
    if (this.bank) for (const p of this.bank.parts) arrays.push(p.data, p.norms);
    if (this.projected) {
      const p = this.projected;
      arrays.push(p.projected.data, p.projected.norms, p.projection.weights, p.projection.bias, ...p.rows.parts.map((r) => r.data));
    }
    if (this.normalization) arrays.push(this.normalization);
    return gpuBytes(...arrays);
  }

  /** The search this scorer runs (projected falls back to exact when the patches are no wider than the projection). */
  get search(): SearchMode {
    return this.projected ? 'projected' : 'exact';
  }

  private nearest(q: ModalPatches, search: SearchMode): { distance: GpuArray; index: GpuArray } {
    if (this.normalization) normalizePatches(this.gpu, q, this.normalization);
    return search === 'projected' && this.projected
      ? projectedNearest(this.gpu, this.projected, q.data, q.patches)
      : nearestDistances(this.gpu, (this.bank ??= this.exactBank()), q.data, q.patches);
  }

  /** The dimension-major bank, for an exact search asked of a projected scorer: from its rows, on the GPU. */
  private exactBank(): GpuBank {
    return bankOfRows(this.gpu, this.projected!.rows);
  }

  /**
   * Each patch's distance to its bank entry and that entry's index, by the scorer's search or the one given
   * (for comparing the two on the same patches).
   */
  async nearestPatches(image: ImageTensor, pointCloud: PointCloud | null = null, search: SearchMode = this.search): Promise<{ distance: Float32Array; index: Uint32Array }> {
    const gpu = this.gpu;
    const q = await this.patches(image, pointCloud);
    const nearest = this.nearest(q, search);
    gpu.release(q.data);
    try {
      return { distance: await gpu.readF32(nearest.distance, q.patches), index: await gpu.readU32(nearest.index, q.patches) };
    } finally {
      gpu.release(nearest.distance, nearest.index);
    }
  }

  get config(): PatchCoreConfig {
    return this.header;
  }

  /**
   * Scores one image (with its point cloud for a 3d or both bank; ignored by an rgb bank); the map is
   * produced at the working size and resampled to `output` (default: the image's size).
   */
  async score(image: ImageTensor, pointCloud: PointCloud | null = null, output: Shape = image, keepOnDevice = false): Promise<PatchCoreScore> {
    const q = await this.patches(image, pointCloud);
    try {
      return await this.scorePatches(q, output, this.search, keepOnDevice);
    } finally {
      this.gpu.release(q.data);
    }
  }

  /** The query patches of an image (the caller releases `data`), for scoring them against several banks of the same features. */
  patches(image: ImageTensor, pointCloud: PointCloud | null = null): Promise<ModalPatches> {
    return modalPatchFeatures(this.gpu, this.graph, image, pointCloud, this.config);
  }

  /** The score of an image's query patches (from `patches` of a scorer of the same features; an rgb bank's are left intact). */
  async scorePatches(q: ModalPatches, output: Shape, search: SearchMode = this.search, keepOnDevice = false): Promise<PatchCoreScore> {
    const gpu = this.gpu;
    const { working, grid } = q;
    const nearest = this.nearest(q, search);
    gpu.release(nearest.index);
    const distance = nearest.distance;
    if (q.valid) fillHolePatches(gpu, distance, q.valid);
    const up = resampleBilinear(gpu, distance, 1, grid, working);
    gpu.release(distance);
    const smooth = gaussianSmooth(gpu, up, 1, working.width, working.height, smoothingSigma(this.header.size));
    gpu.release(up);
    const same = output.width === working.width && output.height === working.height;
    const final = same ? smooth : resampleBilinear(gpu, smooth, 1, working, output);
    if (!same) gpu.release(smooth);
    let data: Float32Array;
    try {
      data = await gpu.readF32(final, output.width * output.height);
    } catch (e) {
      gpu.release(final);
      throw e;
    }
    if (!keepOnDevice) gpu.release(final);
    let predScore = -Infinity;
    for (const v of data) if (v > predScore) predScore = v;
    return { anomalyMap: { data, width: output.width, height: output.height }, predScore, ...(keepOnDevice ? { device: final } : {}) };
  }

  /**
   * Gives the scorer's buffers back: the bank's are destroyed (their memory returns to the device at once,
   * which a cache bounded in bytes relies on), the small ones pooled.
   */
  release(): void {
    if (this.bank) releaseBank(this.gpu, this.bank, true);
    if (this.projected) releaseProjectedBank(this.gpu, this.projected, true);
    this.gpu.release(this.normalization);
  }
}

/**
 * Hole patches (no valid 3-D point) take the lowest distance of the image's valid patches, in place on the
 * GPU (shaders/holes.wgsl; the distances used to be read back, filled and uploaded again).
 */
export function fillHolePatches(gpu: Gpu, distance: GpuArray, valid: Uint8Array): void {
  if (valid.every((v) => v !== 0)) return;
  const v = uploadValidity(gpu, valid);
  gpu.run(patchcoreKernels.fillHoles, { n: valid.length }, { distance, valid: v.data }, [1, 1, 1]);
  releaseValidity(gpu, v);
}
