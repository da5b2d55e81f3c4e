// `ttt segment`: one image and its anomaly score map in, a defect mask (and optionally an overlay) out.
// Inputs are decoded and validated with the file named in every error; outputs are written only after
// everything succeeded, and atomically.

import { TttError, withSubject } from '../core/errors.ts';
import { OPTION_SPECS, parseAssignments, resolveOptions } from '../core/options.ts';
import { segment } from '../core/pipeline.ts';
import type { SegmentationResult, StageName } from '../core/types.ts';
import { validateFeatures, validateImage, validatePointCloud, validateScoreMap } from '../core/validate.ts';
import { countValid, pointValidity } from '../core/validity.ts';
import { resolveModality } from '../core/features/index.ts';
import { decodePointCloud } from '../io/pointcloud.ts';
import { nodeGpu } from '../gpu/node.ts';
import { decodeCalibration } from '../io/calibration.ts';
import { checkOutputPath, readInputFile, writeFilesAtomic } from '../io/files.ts';
import { decodeImage, encodeMaskPng, encodeOverlayPng } from '../io/image.ts';
import { decodeFeatures, decodeScoreMap } from '../io/scoremap.ts';
import { intArg, parse } from './args.ts';

const HELP = `usage: ttt segment --image FILE --score-map FILE [--point-cloud FILE] [options]

Segments the defects of one image by test-time training on its own anomaly score map.

inputs:
  --image FILE         PNG, JPEG or TIFF; grey or colour, 8 or 16 bit (alpha is ignored)
  --score-map FILE     the detector's anomaly map: .npy (h x w), 1-channel float TIFF, or 8/16-bit
                       grey PNG; any resolution with the image's aspect ratio (resampled bilinearly)
  --features FILE      feature maps, .npy C x h x w; they replace the built-in filterbank
  --point-cloud FILE   the organized point cloud (x, y, z per pixel): 3-sample 32/64-bit float TIFF (as
                       MVTec 3D-AD's xyz/*.tiff) or .npy (H, W, 3) float32/float64; the image's aspect
                       ratio; points that are NaN or (0, 0, 0) are holes, masked out everywhere. Its 3-D
                       features join the image's (features.modality=auto: both)
  --calibration FILE   nominal calibration (JSON) for the image-level gate
settings:
  --size N             downscale the image so its longest side is N pixels (never upscales)
  --set key=value      a pipeline option (repeatable); options and defaults:
${OPTION_SPECS.map((s) => `                         ${s.key}=${Array.isArray(s.default) ? s.default.join(',') : String(s.default)}`).join('\n')}
outputs:
  --out FILE           the mask as an 8-bit grey PNG at the working resolution (255 = defect)
  --overlay FILE       the image with the mask tinted red and each region's bounding box
  --json               print one JSON object instead of the summary

Exit status: 0 on success (also for an empty mask), 2 on bad input or options.`;

export const command = {
  summary: 'segment the defects of one image from its anomaly score map',
  async run(argv: string[]): Promise<void> {
    const v = parse(
      argv,
      {
        image: { type: 'string' },
        'score-map': { type: 'string' },
        features: { type: 'string' },
        'point-cloud': { type: 'string' },
        calibration: { type: 'string' },
        set: { type: 'string', multiple: true },
        out: { type: 'string' },
        overlay: { type: 'string' },
        json: { type: 'boolean' },
        size: { type: 'string' },
      },
      HELP,
    );
    const imagePath = v.image;
    const mapPath = v['score-map'];
    if (!imagePath || !mapPath) throw new TttError('INVALID_OPTION', '--image and --score-map are required (see ttt segment --help)');
    const maxSide = v.size === undefined ? undefined : intArg('size', v.size, 0, 1, 1 << 16);
    const options = resolveOptions(parseAssignments(v.set ?? []));
    if (v.out && v.overlay && v.out === v.overlay) throw new TttError('INVALID_OPTION', '--out and --overlay name the same file');
    for (const path of [v.out, v.overlay]) if (path) await checkOutputPath(path);

    // One file at a time, so that with several bad inputs the error is always about the first.
    const imageBytes = await readInputFile(imagePath, 'image');
    const mapBytes = await readInputFile(mapPath, 'score map');
    const featureBytes = v.features ? await readInputFile(v.features, 'feature maps') : undefined;
    const cloudPath = v['point-cloud'];
    const cloudBytes = cloudPath ? await readInputFile(cloudPath, 'point cloud') : undefined;
    const calibrationBytes = v.calibration ? await readInputFile(v.calibration, 'calibration') : undefined;
    const image = await decodeImage(imageBytes, imagePath, { maxSide });
    const scoreMap = await decodeScoreMap(mapBytes, mapPath);
    const features = featureBytes && v.features ? await decodeFeatures(featureBytes, v.features) : undefined;
    const pointCloud = cloudBytes && cloudPath ? decodePointCloud(cloudBytes, cloudPath) : undefined;
    const calibration = calibrationBytes && v.calibration ? decodeCalibration(calibrationBytes, v.calibration) : null;
    // The core validates again, but only here do we know which file a problem came from.
    withSubject(imagePath, () => validateImage(image));
    withSubject(mapPath, () => validateScoreMap(scoreMap, image));
    if (features && v.features) withSubject(v.features, () => validateFeatures(features, image));
    if (pointCloud && cloudPath) withSubject(cloudPath, () => validatePointCloud(pointCloud, image));
    const modality = withSubject(cloudPath ?? '--set features.modality', () => resolveModality(options, pointCloud));

    const { gpu, adapterName } = await nodeGpu();
    const result = await segment(gpu, { image, scoreMap, features, calibration, pointCloud }, options);

    const outputs: { path: string; bytes: Uint8Array }[] = [];
    if (v.out) outputs.push({ path: v.out, bytes: await encodeMaskPng(result.predMask, result.width, result.height) });
    if (v.overlay) outputs.push({ path: v.overlay, bytes: await encodeOverlayPng(image, result.predMask, result.regions) });
    await writeFilesAtomic(outputs);

    if (v.json) {
      const cloud = pointCloud ? { width: pointCloud.width, height: pointCloud.height, validPoints: countValid(pointValidity(pointCloud)) } : null;
      const f = options.features;
      // Which features the classifier saw: the extractor, and for combined its sources and group rule.
      const featureSet = features
        ? { extractor: 'supplied' }
        : f.extractor === 'combined'
          ? { extractor: f.extractor, sources: f.sources, groupNormalize: f.groupNormalize }
          : { extractor: f.extractor };
      console.log(JSON.stringify({ ...report(result, adapterName, scoreMap, { mask: v.out ?? null, overlay: v.overlay ?? null }), features: featureSet, modality, pointCloud: cloud }, null, 2));
    } else {
      console.log(summary(result, adapterName, image.channels, scoreMap, v.out, v.overlay));
    }
  },
};

function report(
  r: SegmentationResult,
  adapter: string,
  map: { width: number; height: number },
  outputs: { mask: string | null; overlay: string | null },
) {
  return {
    width: r.width,
    height: r.height,
    predLabel: r.predLabel,
    predScore: r.predScore,
    defectFraction: r.defectFraction,
    pseudoLabels: r.pseudoLabels,
    classifier: r.classifier ? { loss: r.classifier.loss, epochs: r.classifier.epochs } : null,
    gate: r.gate,
    regions: r.regions,
    emptyReason: r.emptyReason,
    timings: r.timings,
    placement: r.placement,
    featureChannels: r.featureChannels,
    anomalyMap: { ...r.anomalyMap, width: map.width, height: map.height },
    adapter,
    outputs,
  };
}

function summary(
  r: SegmentationResult,
  adapter: string,
  channels: number,
  map: { width: number; height: number },
  out: string | undefined,
  overlay: string | undefined,
): string {
  const ms = (t: number | undefined) => (t ?? 0).toFixed(1);
  const total = Object.values(r.timings).reduce((a, b) => a + (b ?? 0), 0);
  const lines = [`image ${r.width}x${r.height} (${channels === 1 ? 'grey' : 'colour'}), score map ${map.width}x${map.height}, on ${adapter}`];
  lines.push(`anomaly map: min ${r.anomalyMap.min.toPrecision(4)}, max ${r.anomalyMap.max.toPrecision(4)}, mean ${r.anomalyMap.mean.toPrecision(4)}`);
  if (r.gate) lines.push(`gate: image score ${r.gate.imageScore.toPrecision(4)} vs threshold ${r.gate.threshold.toPrecision(4)} -> ${r.gate.anomalous ? 'anomalous' : 'nominal'}`);
  if (r.pseudoLabels) lines.push(`pseudo-labels: ${r.pseudoLabels.anomalous} anomalous, ${r.pseudoLabels.nominal} nominal`);
  if (r.classifier) lines.push(`classifier: ${r.featureChannels} features, loss ${r.classifier.loss.toPrecision(4)} after ${r.classifier.epochs} epochs`);
  if (r.emptyReason) lines.push(`mask: empty (${r.emptyReason})`);
  else lines.push(`mask: ${(100 * r.defectFraction).toFixed(2)}% defective in ${r.regions.length} region${r.regions.length === 1 ? '' : 's'}`);
  if (out) lines.push(`wrote ${out}`);
  if (overlay) lines.push(`wrote ${overlay}`);
  lines.push(`time: ${total.toFixed(1)} ms (${Object.entries(r.timings).map(([k, t]) => `${k} ${ms(t)} on ${r.placement[k as StageName] ?? 'host'}`).join(', ')})`);
  return lines.join('\n');
}
