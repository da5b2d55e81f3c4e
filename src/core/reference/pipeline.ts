// The whole segmentation in plain TypeScript, stage for stage as src/core/pipeline.ts: the reference the
// GPU path is tested and benchmarked against.

import { borderNormalize, levelCalibration, runCalibration } from '../calibration.ts';
import { TttError } from '../errors.ts';
import { imageGate } from '../gate.ts';
import { defaultOptions, type TttOptions } from '../options.ts';
import { resolveModality } from '../features/index.ts';
import { channelWeights } from '../features/groups.ts';
import { emptyResult, gateReason, missingLabelsReason, preparePoints, requestedPercentiles, trainedResult, validateInput, type SegmentInput } from '../pipeline.ts';
import type { FeatureTensor, SegmentationResult, StageName, StagePlacement } from '../types.ts';
import { referencePredict, referenceGather, referenceTrain } from './classifier.ts';
import { referenceBilinear, referenceFilterbank, referenceStandardize } from './features.ts';
import { referencePseudoLabels } from './pseudoLabels.ts';
import { maskScoreFloor, seedFloor } from '../pseudoLabels.ts';
import { referenceGeometryFeatures } from './geometry.ts';
import { referenceAnalyzeScoreMap } from './stats.ts';

/**
 * The features the classifier sees: the image's (standardized), the point cloud's, or both concatenated.
 * `points`: the prepared cloud when the caller has it (referenceSegment).
 */
export function referenceFeatures(input: SegmentInput, options: TttOptions, points = preparePoints(input)): FeatureTensor {
  const modality = resolveModality(options, input.pointCloud);
  const parts: FeatureTensor[] = [];
  if (modality !== '3d') parts.push(referenceImageFeatures(input, options));
  if (modality !== 'rgb') {
    parts.push(referenceGeometryFeatures(points!.cloud, input.image, options.features.geometryScales).features);
  }
  if (parts.length === 1) return parts[0];
  const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p.data, o);
    o += p.data.length;
  }
  return { data, channels: parts.reduce((a, p) => a + p.channels, 0), width: input.image.width, height: input.image.height };
}

export function referenceImageFeatures(input: SegmentInput, options: TttOptions): FeatureTensor {
  const { image } = input;
  let f: FeatureTensor;
  if (input.features) {
    const s = input.features;
    const same = s.width === image.width && s.height === image.height;
    f = same
      ? { ...s, data: s.data.slice() }
      : { data: referenceBilinear(s.data, s.channels, s, image), channels: s.channels, width: image.width, height: image.height };
  } else if (options.features.extractor === 'filterbank') {
    f = referenceFilterbank(image, options.features.sigmas);
  } else if (options.features.extractor === 'combined' && options.features.sources.every((s) => s === 'image' || s === 'filterbank')) {
    // The sources concatenated, each standardized and weighed by its group (features/groups.ts).
    const parts = options.features.sources.map((s) => (s === 'image' ? { ...image, data: image.data.slice() } : referenceFilterbank(image, options.features.sigmas)));
    const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
    let o = 0;
    for (const p of parts) {
      data.set(p.data, o);
      o += p.data.length;
    }
    const channels = parts.reduce((a, p) => a + p.channels, 0);
    const groups = options.features.groupNormalize ? parts.map((p, k) => ({ name: options.features.sources[k], channels: p.channels })) : undefined;
    return referenceStandardize({ data, channels, width: image.width, height: image.height }, null, channelWeights(groups, channels));
  } else {
    // The network's reference (reference/mobilenet.ts) is checked layer by layer in its own tests; the
    // whole-pipeline reference takes the filterbank or supplied features.
    throw new TttError('INVALID_OPTION', `the reference pipeline has no ${options.features.extractor} features: use features.extractor=filterbank, combined of image and filterbank, or supplied features`);
  }
  return referenceStandardize(f);
}

export function referenceSegment(input: SegmentInput, options: TttOptions = defaultOptions()): SegmentationResult {
  const points = preparePoints(input, validateInput(input));
  const valid = points?.valid ?? null;
  const { image, scoreMap } = input;
  const { width, height } = image;
  const timings: Partial<Record<StageName, number>> = {};
  const placement: Partial<Record<StageName, StagePlacement>> = {};
  let t = performance.now();
  const lap = (stage: StageName) => {
    const now = performance.now();
    timings[stage] = now - t;
    placement[stage] = 'host';
    t = now;
  };
  const { calibration: calibrated, profile } = runCalibration(input.calibration, options.map.borderNormalize);
  const working = scoreMap.width === width && scoreMap.height === height ? scoreMap.data : referenceBilinear(scoreMap.data, 1, scoreMap, image);
  const data = profile ? borderNormalize({ data: working, width, height }, profile) : working;
  const map = { data, width, height };
  lap('upload');
  const analysis = referenceAnalyzeScoreMap(map, requestedPercentiles(options), valid);
  const stats = analysis.stats;
  const calibration = levelCalibration(calibrated, stats.percentiles['50'], options.map.level);
  const gate = imageGate(stats.max, calibration, options);
  lap('stats');
  const base = { predScore: stats.max, anomalyMap: stats, gate, featureChannels: 0, timings, placement };
  if (gate && !gate.anomalous) {
    return emptyResult(width, height, { ...base, pseudoLabels: null, emptyReason: gateReason(gate) });
  }
  const labels = referencePseudoLabels(
    map,
    { anomalous: analysis.bins[0], nominal: analysis.bins[1] },
    { min: stats.min, scale: analysis.scale },
    options,
    seedFloor(calibration, options),
    valid,
  );
  lap('pseudoLabels');
  if (labels.counts.anomalous === 0 || labels.counts.nominal === 0) {
    return emptyResult(width, height, { ...base, pseudoLabels: labels.counts, emptyReason: missingLabelsReason(labels.counts) });
  }
  const features = referenceFeatures(input, options, points);
  lap('features');
  const set = referenceGather(labels.labels, features);
  lap('gather');
  const report = referenceTrain(set, labels.counts, options);
  lap('classifier');
  const floor = maskScoreFloor(calibration, options, stats.percentiles);
  const { mask } = referencePredict(report.weights, features, data, floor, valid);
  lap('predict');
  const result = trainedResult(base, mask, data, image, { pseudoLabels: labels.counts, classifier: report, featureChannels: features.channels }, options, valid, floor);
  lap('regions');
  return result;
}
