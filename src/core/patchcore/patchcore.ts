// The built-in anomaly scorer: PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly
// Detection", CVPR 2022) on the pretrained MobileNetV2. Patch features are the network's layers averaged
// over 3x3 and resampled to a common patch grid; the memory bank is a greedy coreset of the patches of
// nominal images; a test patch scores its distance to the nearest bank patch, and the patch scores become a
// map at the working size (bilinear, then Gaussian smoothing, sigma 4 at a 256-pixel working size), then at
// the image's own size. Image score: the map's maximum.

import { TttError } from '../errors.ts';
import { gaussianSmooth } from '../features/filterbank.ts';
import { networkFeatureMaps, networkInputSize } from '../features/mobilenet/extractor.ts';
import type { NetworkGraph, Shape } from '../features/mobilenet/graph.ts';
import { mobileNetGraph } from '../features/mobilenet/registry.ts';
import { resampleBilinear } from '../features/resample.ts';
import type { Gpu, GpuArray } from '../gpu.ts';
import type { ImageTensor, ScoreMap } from '../types.ts';
import { BANK_VERSION, type BankHeader, type MemoryBank } from './bank.ts';
import { greedyCoreset } from './coreset.ts';
import { nearestDistances, releaseBank, uploadBank, type GpuBank } from './knn.ts';

export interface PatchCoreConfig {
  readonly layers: readonly string[];
  /** Working size: every image is resized so that its longest side has this many pixels (aspect kept). */
  readonly size: number;
  /** Working-size pixels per patch. */
  readonly stride: number;
  /** Share of the nominal patches the coreset keeps (1: all). */
  readonly coresetRatio: number;
  readonly projectionDims: number;
  readonly seed: number;
}

/** Layers measured on Magnetic Tile (docs/benchmarks.md): block_12_add adds 0.03 pixel AUROC. */
export const PATCHCORE_DEFAULTS: PatchCoreConfig = {
  layers: ['block_2_add', 'block_5_add', 'block_12_add'],
  size: 256,
  stride: 8,
  coresetRatio: 0.1,
  projectionDims: 128,
  seed: 0,
};

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

/** The patch features of one image, resized to the working size, on the patch grid. */
export function patchFeatures(gpu: Gpu, graph: NetworkGraph, image: ImageTensor, config: PatchCoreConfig): PatchArray {
  const working = workingShape(image, config.size);
  const grid = patchGrid(working, config.stride);
  const f = networkFeatureMaps(gpu, graph, image, working, grid);
  const patches = grid.width * grid.height;
  const stride = Math.ceil(patches / 4) * 4;
  const data = gpu.alloc(f.channels * stride);
  let c0 = 0;
  for (const chunk of f.chunks) {
    if (stride === patches) gpu.copy(chunk.data, data, chunk.channels * patches, 0, c0 * stride);
    else for (let c = 0; c < chunk.channels; c++) gpu.copy(chunk.data, data, patches, c * patches, (c0 + c) * stride);
    c0 += chunk.channels;
    gpu.release(chunk.data);
  }
  return { data, patches, channels: f.channels, working, grid };
}

export interface BuildProgress {
  /** Called after each image's patches are collected, and during the coreset selection. */
  readonly onImage?: (done: number) => void;
  readonly onCoreset?: (done: number, total: number) => void;
}

/** A memory bank from nominal images (any sizes; each is resized to the working size). */
export async function buildBank(
  gpu: Gpu,
  images: Iterable<ImageTensor> | AsyncIterable<ImageTensor>,
  config: PatchCoreConfig,
  progress: BuildProgress = {},
): Promise<MemoryBank> {
  const graph = await mobileNetGraph(config.layers);
  const perImage: Float32Array[] = [];
  let channels = 0;
  for await (const image of images) {
    const p = patchFeatures(gpu, graph, image, config);
    const stride = Math.ceil(p.patches / 4) * 4;
    const planar = await gpu.readF32(p.data, p.channels * stride);
    gpu.release(p.data);
    channels = p.channels;
    const rows = new Float32Array(p.patches * channels);
    for (let c = 0; c < channels; c++) for (let i = 0; i < p.patches; i++) rows[i * channels + c] = planar[c * stride + i];
    perImage.push(rows);
    progress.onImage?.(perImage.length);
  }
  if (perImage.length === 0) throw new TttError('INVALID_INPUT', 'a memory bank needs at least one nominal image');
  const imageCount = perImage.length;
  const all = new Float32Array(perImage.reduce((a, r) => a + r.length, 0));
  let o = 0;
  for (const r of perImage.splice(0)) {
    all.set(r, o);
    o += r.length;
  }
  const sourcePatches = all.length / channels;
  const count = Math.max(1, Math.min(sourcePatches, Math.round(config.coresetRatio * sourcePatches)));
  const chosen = await greedyCoreset(gpu, all, channels, count, { projectionDims: config.projectionDims, seed: config.seed, onProgress: progress.onCoreset });
  const features = new Float32Array(chosen.length * channels);
  chosen.forEach((idx, i) => features.set(all.subarray(idx * channels, (idx + 1) * channels), i * channels));
  const header: BankHeader = {
    version: BANK_VERSION,
    extractor: 'mobilenetv2',
    weights: graph.source,
    layers: [...config.layers],
    size: config.size,
    stride: config.stride,
    patches: chosen.length,
    channels,
    coresetRatio: config.coresetRatio,
    projectionDims: config.projectionDims,
    seed: config.seed,
    images: imageCount,
    sourcePatches,
  };
  return { header, features };
}

export interface PatchCoreScore {
  /** The anomaly map at the requested size. */
  readonly anomalyMap: ScoreMap;
  /** The image score: the map's maximum. */
  readonly predScore: number;
}

/** A loaded memory bank, on the GPU, ready to score images. */
export class PatchCoreScorer {
  private constructor(
    private readonly gpu: Gpu,
    readonly header: BankHeader,
    private readonly graph: NetworkGraph,
    private readonly bank: GpuBank,
  ) {}

  static async load(gpu: Gpu, bank: MemoryBank): Promise<PatchCoreScorer> {
    const graph = await mobileNetGraph(bank.header.layers);
    const channels = [...graph.outputs.values()].reduce((a, t) => a + graph.channels[t], 0);
    if (channels !== bank.header.channels) {
      throw new TttError('SIZE_MISMATCH', `the memory bank has ${bank.header.channels}-channel patches but layers ${bank.header.layers.join(', ')} of ${graph.source} give ${channels}`);
    }
    return new PatchCoreScorer(gpu, bank.header, graph, uploadBank(gpu, bank.features, channels));
  }

  get config(): PatchCoreConfig {
    return this.header;
  }

  /** Scores one image; the map is produced at the working size and resampled to `output` (default: the image's size). */
  async score(image: ImageTensor, output: Shape = image): Promise<PatchCoreScore> {
    const gpu = this.gpu;
    const q = patchFeatures(gpu, this.graph, image, this.config);
    const { working, grid } = q;
    const { distance, index } = nearestDistances(gpu, this.bank, q.data, q.patches);
    gpu.release(q.data, index);
    const up = resampleBilinear(gpu, distance, 1, grid, working);
    gpu.release(distance);
    const smooth = gaussianSmooth(gpu, up, 1, working.width, working.height, smoothingSigma(this.header.size));
    gpu.release(up);
    const same = output.width === working.width && output.height === working.height;
    const final = same ? smooth : resampleBilinear(gpu, smooth, 1, working, output);
    const data = await gpu.readF32(final, output.width * output.height);
    gpu.release(smooth);
    if (!same) gpu.release(final);
    let predScore = -Infinity;
    for (const v of data) if (v > predScore) predScore = v;
    return { anomalyMap: { data, width: output.width, height: output.height }, predScore };
  }

  release(): void {
    releaseBank(this.gpu, this.bank);
  }
}
