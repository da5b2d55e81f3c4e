// One test-time-training segmentation on the GPU: score map -> statistics -> gate -> features ->
// pseudo-labels -> training set -> classifier -> mask -> regions. Only small statistics, the model, the
// mask and (when the map was resampled) the working-resolution map come back to the host.

import { borderNormalize, levelCalibration, runCalibration, type Calibration } from './calibration.ts';
import { normalizeBorder } from './normalize.ts';
import { deviceLimits, planRun } from './plan.ts';
import { TttError } from './errors.ts';
import { predict, trainClassifier } from './classifier.ts';
import { checkChannelLimit, chooseExtractor, concatFeatures, extractFeatures, releaseFeatures, resolveModality, type FeatureExtractor } from './features/index.ts';
import { geometryFeatures, preparePointCloud, type PreparedPointCloud } from './features/geometry.ts';
import { weightStandardization } from './features/groups.ts';
import { resampleBilinear } from './features/resample.ts';
import { gatherTrainingSet } from './gather.ts';
import { imageGate } from './gate.ts';
import type { Gpu, GpuArray } from './gpu.ts';
import { readMask } from './binarize.ts';
import { defaultOptions, type TttOptions } from './options.ts';
import { maskScoreFloor, pseudoLabels, seedFloor } from './pseudoLabels.ts';
import { channelMoments, type Standardization, hostAnalyzeScoreMap, hostGather, hostPredictMask, hostPseudoLabels, hostTrain } from './hostStage.ts';
import { MAX_CHANNELS } from './kernels.ts';
import { coarseGather, coarseMoments, coarsePredictMask, materializeCoarse, type CoarseFeatures } from './coarseFeatures.ts';
import { referenceBilinear } from './reference/features.ts';
import { closeMask, connectedComponents, fillHoles, peakFloorMask } from './regions.ts';
import { refineOnGpu, refineOnHost } from './refine.ts';
import { stageFeatures, type StagedFeatures } from './wasm/hostKernels.ts';
import { analyzeScoreMap } from './stats.ts';
import type {
  ClassifierReport,
  GateReport,
  FeatureTensor,
  GpuScoreMap,
  GpuFeatures,
  ImageTensor,
  PointCloud,
  PseudoLabelCounts,
  ScoreMap,
  SegmentationResult,
  StageName,
  StagePlacement,
} from './types.ts';
import { validateFeatures, validateImage, validatePointCloud, validateScoreMap } from './validate.ts';
import { countValid, resampleValidity, uploadValidity } from './validity.ts';

export interface SegmentInput {
  /** The image at the working resolution. */
  image: ImageTensor;
  /** The anomaly map; resampled to the image's size when smaller or larger (same aspect ratio). */
  scoreMap: ScoreMap;
  /**
   * The same map's values already on this device (the built-in scorer's output, `PatchCoreScorer.score`
   * with keepOnDevice): used instead of uploading `scoreMap.data` again. Stays the caller's.
   */
  scoreMapDevice?: GpuArray | null;
  /** Caller-supplied feature maps (C x h x w); they replace the extractor. */
  features?: FeatureTensor;
  /** Nominal statistics for the image-level gate. */
  calibration?: Calibration | null;
  /**
   * The organized point cloud of the part (any resolution with the image's aspect ratio): its 3-D features
   * join the image's (features.modality), and its holes are masked out of every stage.
   */
  pointCloud?: PointCloud | null;
}

export interface SegmentHooks {
  /** An extractor to use instead of the options' choice (e.g. a pretrained network). */
  extractor?: FeatureExtractor;
  /**
   * Called after each stage has finished on the GPU, with its name; throwing stops the run there (a job's
   * time limit). The run's buffers go back to the pool as on any failure.
   */
  checkpoint?: (stage: StageName) => void;
}

/** Percentiles every run computes: the pseudo-label thresholds and a few for reports. */
export function requestedPercentiles(options: TttOptions): number[] {
  const own = options.mask.scoreFloorPercentile;
  return [options.pseudoLabels.anomalousPercentile, options.pseudoLabels.nominalPercentile, 50, 90, 99, ...(own > 0 ? [own] : [])];
}

export function emptyResult(
  width: number,
  height: number,
  base: Omit<SegmentationResult, 'width' | 'height' | 'predMask' | 'predLabel' | 'defectFraction' | 'regions' | 'classifier'>,
): SegmentationResult {
  return { ...base, width, height, predMask: new Uint8Array(width * height), predLabel: false, defectFraction: 0, regions: [], classifier: null };
}

export const gateReason = (gate: GateReport): string =>
  `image-level gate: image score ${gate.imageScore.toPrecision(6)} is not above the nominal threshold ${gate.threshold.toPrecision(6)}`;

export const missingLabelsReason = (counts: PseudoLabelCounts): string =>
  counts.anomalous === 0
    ? 'no anomalous pseudo-labels: no local maximum of the map reaches the anomalous percentile (and the seed floor, when set)'
    : 'no nominal pseudo-labels: every pixel is anomalous or above the nominal percentile';

/**
 * The result of a run that trained a classifier: the mask's peak floors applied (mask.regionFraction,
 * mask.peakFraction above the mask floor `floor`; src/core/regions.ts), then it is closed and its holes
 * filled (mask.closeRadius, mask.fillHoles; never onto invalid pixels), then regions are measured on (and
 * may trim) it.
 */
export function trainedResult(
  base: Pick<SegmentationResult, 'predScore' | 'anomalyMap' | 'gate' | 'timings' | 'placement'>,
  predMask: Uint8Array,
  scores: Float32Array,
  size: { width: number; height: number },
  run: { pseudoLabels: PseudoLabelCounts; classifier: ClassifierReport; featureChannels: number },
  options: TttOptions,
  valid: Uint8Array | null = null,
  floor = -Infinity,
): SegmentationResult {
  const { width, height } = size;
  const m = options.mask;
  predMask = peakFloorMask(predMask, scores, width, height, floor, m.peakFraction, m.peakCompactShare, m.regionFraction);
  if (options.mask.closeRadius > 0 || options.mask.fillHoles) {
    closeMask(predMask, width, height, options.mask.closeRadius);
    if (options.mask.fillHoles) fillHoles(predMask, width, height);
    if (valid) for (let i = 0; i < predMask.length; i++) predMask[i] &= valid[i];
  }
  const regions = connectedComponents(predMask, width, height, scores, options.regions.connectivity, options.regions.minArea);
  const area = regions.reduce((a, r) => a + r.area, 0);
  return { ...base, ...run, width, height, predMask, predLabel: area > 0, defectFraction: area / (width * height), regions, emptyReason: null };
}

/** Checks every input against the image; returns the point cloud's validity (null without a cloud). */
export function validateInput(input: SegmentInput): Uint8Array | null {
  validateImage(input.image);
  validateScoreMap(input.scoreMap, input.image);
  if (input.features) validateFeatures(input.features, input.image);
  return input.pointCloud ? validatePointCloud(input.pointCloud, input.image) : null;
}

/**
 * The point cloud ready for the kernels and its validity at the working resolution (a pixel is valid when
 * every point its bilinear sample reads is); null without a point cloud.
 */
export function preparePoints(input: SegmentInput, cloudValid?: Uint8Array | null): { cloud: PreparedPointCloud; valid: Uint8Array } | null {
  if (!input.pointCloud) return null;
  const cloud = preparePointCloud(input.pointCloud, cloudValid ?? undefined);
  const valid = resampleValidity(cloud.valid, cloud, input.image);
  if (countValid(valid) === 0) {
    throw new TttError('INVALID_INPUT', 'no pixel of the working resolution has valid 3-D points around it (the point cloud is mostly holes)');
  }
  return { cloud, valid };
}

/** Where the test-time stage runs for these options on this device (compute.stages). */
export function stagePlacement(gpu: Gpu, options: TttOptions): StagePlacement {
  const s = options.compute.stages;
  return s === 'auto' ? (gpu.software ? 'host' : 'gpu') : s;
}

export async function segment(
  gpu: Gpu,
  input: SegmentInput,
  options: TttOptions = defaultOptions(),
  hooks: SegmentHooks = {},
): Promise<SegmentationResult> {
  // The same check as the submission's, before any work (the host path too: its features run on the GPU):
  // what cannot fit the device fails here, typed.
  const cloudValid = validateInput(input);
  const { image, scoreMap } = input;
  await planRun(deviceLimits(gpu.device), { image, scoreMap, features: input.features, pointCloud: input.pointCloud }, options, hooks.extractor !== undefined);
  if (stagePlacement(gpu, options) === 'host') return segmentOnHost(gpu, input, options, hooks, cloudValid);
  const { width, height } = image;
  const n = width * height;
  const modality = resolveModality(options, input.pointCloud);
  const { calibration: calibrated, profile } = runCalibration(input.calibration, options.map.borderNormalize);
  const points = preparePoints(input, cloudValid);
  const timings: Partial<Record<StageName, number>> = {};
  const placement: Partial<Record<StageName, StagePlacement>> = {};
  let t = performance.now();
  const lap = async (stage: StageName) => {
    await gpu.sync();
    const now = performance.now();
    timings[stage] = (timings[stage] ?? 0) + now - t;
    placement[stage] = 'gpu';
    t = now;
    hooks.checkpoint?.(stage);
  };
  const owned: Parameters<Gpu['release']> = [];
  try {
    const onDevice = input.scoreMapDevice;
    if (onDevice && onDevice.length < scoreMap.data.length) throw new TttError('INTERNAL', `a score map of ${scoreMap.data.length} values with ${onDevice.length} on the device`);
    const uploaded = onDevice ?? gpu.upload(scoreMap.data);
    if (!onDevice) owned.push(uploaded);
    const resampled = scoreMap.width !== width || scoreMap.height !== height;
    const working = resampled ? resampleBilinear(gpu, uploaded, 1, scoreMap, image) : uploaded;
    if (resampled) owned.push(working);
    // At the working resolution (the profile's bands are fractions of the longest side).
    const mapData = profile ? normalizeBorder(gpu, working, image, profile) : working;
    if (profile) owned.push(mapData);
    const map: GpuScoreMap = { data: mapData, width, height };
    const validity = points ? uploadValidity(gpu, points.valid) : null;
    if (validity) owned.push(validity.data);
    await lap('upload');

    const analysis = await analyzeScoreMap(gpu, map, requestedPercentiles(options), validity);
    owned.push(analysis.qbins);
    const stats = analysis.stats;
    const calibration = levelCalibration(calibrated, stats.percentiles['50'], options.map.level);
    const gate = imageGate(stats.max, calibration, options);
    await lap('stats');
    const base = { predScore: stats.max, anomalyMap: stats, gate, featureChannels: 0, timings, placement };
    if (gate && !gate.anomalous) {
      return emptyResult(width, height, { ...base, pseudoLabels: null, emptyReason: gateReason(gate) });
    }

    const labels = await pseudoLabels(gpu, map, analysis.qbins, { min: stats.min, scale: analysis.scale }, options, seedFloor(calibration, options), validity);
    owned.push(labels.labels, labels.blockCounts);
    await lap('pseudoLabels');
    if (labels.counts.anomalous === 0 || labels.counts.nominal === 0) {
      return emptyResult(width, height, { ...base, pseudoLabels: labels.counts, emptyReason: missingLabelsReason(labels.counts) });
    }

    const parts: GpuFeatures[] = [];
    try {
      if (modality !== '3d') parts.push(await extractFeatures(gpu, image, hooks.extractor ?? chooseExtractor(options, input.features)));
      if (modality !== 'rgb') parts.push(await geometryFeatures(gpu, points!.cloud, image, options.features.geometryScales, validity!));
    } catch (e) {
      for (const p of parts) releaseFeatures(gpu, p);
      throw e;
    }
    const features = concatFeatures(parts);
    checkChannelLimit(gpu, features);
    await lap('features');
    let released = false;
    try {
      const rows = labels.counts.anomalous + labels.counts.nominal;
      const set = gatherTrainingSet(gpu, labels, rows, features);
      owned.push(set.x, set.targets, set.pixels);
      await lap('gather');
      const { model, report } = await trainClassifier(gpu, set, labels.counts, options);
      owned.push(model);
      await lap('classifier');
      const floor = maskScoreFloor(calibration, options, stats.percentiles);
      const { decision, mask } = predict(gpu, model, features, mapData, floor, validity);
      owned.push(decision, mask);
      const predMask = await readMask(gpu, mask, n);
      const scoresHost = resampled || profile ? await gpu.readF32(mapData, n) : scoreMap.data;
      await lap('predict');
      // The first pass's features are done with: the refinement's own are not held beside them.
      releaseFeatures(gpu, features);
      released = true;
      const refined = options.refine.mode === 'local' ? await refineOnGpu(gpu, image, predMask, labels.labels, mapData, options, validity, points?.valid ?? null) : predMask;
      if (options.refine.mode === 'local') await lap('refine');
      const result = trainedResult(base, refined, scoresHost, image, { pseudoLabels: labels.counts, classifier: report, featureChannels: features.channels }, options, points?.valid ?? null, floor);
      timings.regions = performance.now() - t;
      placement.regions = 'host';
      return result;
    } finally {
      if (!released) releaseFeatures(gpu, features);
    }
  } finally {
    gpu.release(...owned);
  }
}

function checkHostChannels(channels: number): void {
  if (channels > MAX_CHANNELS) throw new TttError('TOO_LARGE', `${channels} feature channels exceed the classifier's limit of ${MAX_CHANNELS}`);
}

/**
 * The features on the host for the host path, with their standardization (to fold into the classifier):
 * supplied maps (resampled on the host when needed), or an extractor's maps computed on the GPU and read back
 * raw, standardized over the image on the host; a point cloud's channels come back standardized from the
 * GPU (over its valid pixels) and get the identity.
 */
async function hostFeatures(
  gpu: Gpu,
  input: SegmentInput,
  options: TttOptions,
  hooks: SegmentHooks,
  modality: 'rgb' | '3d' | 'both',
  points: ReturnType<typeof preparePoints>,
): Promise<{ features: FeatureTensor | CoarseFeatures; coarse: boolean; standardization: Standardization; on: StagePlacement; staged?: StagedFeatures | null }> {
  const { image } = input;
  const n = image.width * image.height;
  const supplied = input.features;
  if (supplied && modality === 'rgb' && !hooks.extractor) {
    const same = supplied.width === image.width && supplied.height === image.height;
    const data = same ? supplied.data : referenceBilinear(supplied.data, supplied.channels, supplied, image);
    const features = { data, channels: supplied.channels, width: image.width, height: image.height };
    // Copied once into the WebAssembly kernels' memory for the moments and the prediction (null: JS loops).
    const staged = stageFeatures(data, n, supplied.channels);
    return { features, coarse: false, standardization: channelMoments(features, null, staged), on: 'host', staged };
  }
  const extractor = modality === '3d' ? null : (hooks.extractor ?? chooseExtractor(options, supplied));
  // The extractor's maps straight to the host where it can: its coarse layers, which the host stage reads
  // through their resampling (src/core/coarseFeatures.ts), never materialized for the image alone.
  const hostImage = extractor?.extractHost ? await extractor.extractHost(gpu, image) : null;
  if (hostImage) checkHostChannels(hostImage.channels);
  if (hostImage && modality === 'rgb') {
    const standardization = weightStandardization(coarseMoments(hostImage), hostImage.groups, hostImage.channels);
    return { features: hostImage, coarse: true, standardization, on: 'gpu' };
  }
  const validity = points ? uploadValidity(gpu, points.valid) : null;
  const parts: GpuFeatures[] = [];
  try {
    if (extractor && !hostImage) parts.push(await extractFeatures(gpu, image, extractor, false));
    if (modality !== 'rgb') parts.push(await geometryFeatures(gpu, points!.cloud, image, options.features.geometryScales, validity!));
    const gpuFeatures = concatFeatures(parts);
    const channels = (hostImage?.channels ?? 0) + gpuFeatures.channels;
    checkHostChannels(channels);
    const data = new Float32Array(channels * n);
    let offset = 0;
    if (hostImage) {
      data.set(materializeCoarse(hostImage));
      offset = hostImage.channels * n;
    }
    for (const chunk of gpuFeatures.chunks) {
      data.set(await gpu.readF32(chunk.data, chunk.channels * n), offset);
      offset += chunk.channels * n;
    }
    const features = { data, channels, width: image.width, height: image.height };
    // Copied once into the WebAssembly kernels' memory for the moments and the prediction (null: JS loops).
    const staged = stageFeatures(data, n, channels);
    const imageChannels = modality === '3d' ? 0 : (hostImage?.channels ?? parts[0].channels);
    const standardization = { mean: new Float64Array(channels), sd: new Float64Array(channels).fill(1) };
    if (imageChannels > 0) {
      // Each channel's moments are its own: those of the image channels, the first imageChannels of all.
      const all = channelMoments(features, null, staged);
      const moments = { mean: all.mean.subarray(0, imageChannels), sd: all.sd.subarray(0, imageChannels) };
      const own = weightStandardization(moments, hostImage ? hostImage.groups : parts[0].groups, imageChannels);
      standardization.mean.set(own.mean);
      standardization.sd.set(own.sd);
    }
    return { features, coarse: false, standardization, on: 'gpu', staged };
  } finally {
    for (const p of parts) releaseFeatures(gpu, p);
    if (validity) gpu.release(validity.data);
  }
}

/**
 * compute.stages=host: the test-time stage in plain TypeScript (src/core/hostStage.ts), stage for stage as
 * `segment`; only feature extraction (an extractor's or a point cloud's) uses the GPU.
 */
async function segmentOnHost(gpu: Gpu, input: SegmentInput, options: TttOptions, hooks: SegmentHooks, cloudValid: Uint8Array | null): Promise<SegmentationResult> {
  if (input.features) checkHostChannels(input.features.channels);
  const { image, scoreMap } = input;
  const { width, height } = image;
  const modality = resolveModality(options, input.pointCloud);
  const { calibration: calibrated, profile } = runCalibration(input.calibration, options.map.borderNormalize);
  const points = preparePoints(input, cloudValid);
  const valid = points?.valid ?? null;
  const timings: Partial<Record<StageName, number>> = {};
  const placement: Partial<Record<StageName, StagePlacement>> = {};
  let t = performance.now();
  const lap = (stage: StageName, on: StagePlacement = 'host') => {
    const now = performance.now();
    timings[stage] = now - t;
    placement[stage] = on;
    t = now;
    // As on the GPU path: between stages, not after the last (regions).
    if (stage !== 'regions') hooks.checkpoint?.(stage);
  };
  const resampled = scoreMap.width !== width || scoreMap.height !== height;
  const working = resampled ? referenceBilinear(scoreMap.data, 1, scoreMap, image) : scoreMap.data;
  const data = profile ? borderNormalize({ data: working, width, height }, profile) : working;
  const map = { data, width, height };
  lap('upload');
  const analysis = hostAnalyzeScoreMap(map, requestedPercentiles(options), valid);
  const stats = analysis.stats;
  const calibration = levelCalibration(calibrated, stats.percentiles['50'], options.map.level);
  const gate = imageGate(stats.max, calibration, options);
  lap('stats');
  const base = { predScore: stats.max, anomalyMap: stats, gate, featureChannels: 0, timings, placement };
  if (gate && !gate.anomalous) {
    return emptyResult(width, height, { ...base, pseudoLabels: null, emptyReason: gateReason(gate) });
  }
  const labels = hostPseudoLabels(map, analysis, options, seedFloor(calibration, options), valid);
  lap('pseudoLabels');
  if (labels.counts.anomalous === 0 || labels.counts.nominal === 0) {
    return emptyResult(width, height, { ...base, pseudoLabels: labels.counts, emptyReason: missingLabelsReason(labels.counts) });
  }
  const { features, coarse, standardization, on, staged } = await hostFeatures(gpu, input, options, hooks, modality, points);
  lap('features', on);
  const set = coarse
    ? coarseGather(labels, features as CoarseFeatures, standardization)
    : hostGather(labels, features as FeatureTensor, standardization);
  lap('gather');
  const report = hostTrain(set, labels.counts, options);
  lap('classifier');
  const floor = maskScoreFloor(calibration, options, stats.percentiles);
  const predMask = coarse
    ? coarsePredictMask(report.weights, features as CoarseFeatures, standardization, data, floor, valid)
    : hostPredictMask(report.weights, features as FeatureTensor, standardization, data, floor, valid, staged);
  lap('predict');
  const refined = options.refine.mode === 'local' ? await refineOnHost(gpu, image, predMask, labels.labels, data, options, valid) : predMask;
  if (options.refine.mode === 'local') lap('refine');
  const result = trainedResult(base, refined, data, image, { pseudoLabels: labels.counts, classifier: report, featureChannels: features.channels }, options, valid, floor);
  lap('regions');
  return result;
}

