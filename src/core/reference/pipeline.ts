// The whole segmentation in plain TypeScript, stage for stage as src/core/pipeline.ts: the reference the
// GPU path is tested and benchmarked against.

import { TttError } from '../errors.ts';
import { imageGate } from '../gate.ts';
import { defaultOptions, type TttOptions } from '../options.ts';
import { emptyResult, gateReason, missingLabelsReason, requestedPercentiles, trainedResult, validateInput, type SegmentInput } from '../pipeline.ts';
import type { FeatureTensor, SegmentationResult, StageName } from '../types.ts';
import { referencePredict, referenceGather, referenceTrain } from './classifier.ts';
import { referenceBilinear, referenceFilterbank, referenceStandardize } from './features.ts';
import { referencePseudoLabels } from './pseudoLabels.ts';
import { maskScoreFloor, seedFloor } from '../pseudoLabels.ts';
import { referenceAnalyzeScoreMap } from './stats.ts';

export function referenceFeatures(input: SegmentInput, options: TttOptions): FeatureTensor {
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
  } else {
    // The network's reference (reference/mobilenet.ts) is checked layer by layer in its own tests; the
    // whole-pipeline reference takes the filterbank or supplied features.
    throw new TttError('INVALID_OPTION', `the reference pipeline has no ${options.features.extractor} features: use features.extractor=filterbank or supplied features`);
  }
  return referenceStandardize(f);
}

export function referenceSegment(input: SegmentInput, options: TttOptions = defaultOptions()): SegmentationResult {
  validateInput(input);
  const { image, scoreMap } = input;
  const { width, height } = image;
  const timings: Partial<Record<StageName, number>> = {};
  let t = performance.now();
  const lap = (stage: StageName) => {
    const now = performance.now();
    timings[stage] = now - t;
    t = now;
  };
  const data =
    scoreMap.width === width && scoreMap.height === height ? scoreMap.data : referenceBilinear(scoreMap.data, 1, scoreMap, image);
  const map = { data, width, height };
  lap('upload');
  const analysis = referenceAnalyzeScoreMap(map, requestedPercentiles(options));
  const stats = analysis.stats;
  const gate = imageGate(stats.max, input.calibration, options);
  lap('stats');
  const base = { predScore: stats.max, anomalyMap: stats, gate, featureChannels: 0, timings };
  if (gate && !gate.anomalous) {
    return emptyResult(width, height, { ...base, pseudoLabels: null, emptyReason: gateReason(gate) });
  }
  const labels = referencePseudoLabels(
    map,
    { anomalous: analysis.bins[0], nominal: analysis.bins[1] },
    { min: stats.min, scale: analysis.scale },
    options,
    seedFloor(input.calibration, options),
  );
  lap('pseudoLabels');
  if (labels.counts.anomalous === 0 || labels.counts.nominal === 0) {
    return emptyResult(width, height, { ...base, pseudoLabels: labels.counts, emptyReason: missingLabelsReason(labels.counts) });
  }
  const features = referenceFeatures(input, options);
  lap('features');
  const set = referenceGather(labels.labels, features);
  lap('gather');
  const report = referenceTrain(set, labels.counts, options);
  lap('classifier');
  const { mask } = referencePredict(report.weights, features, data, maskScoreFloor(input.calibration, options));
  lap('predict');
  const result = trainedResult(base, mask, data, image, { pseudoLabels: labels.counts, classifier: report, featureChannels: features.channels }, options);
  lap('regions');
  return result;
}
