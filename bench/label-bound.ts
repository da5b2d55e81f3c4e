// How much of test-time training's result is the pseudo-labels' doing: the same GPU stages as `ttt`
// (features, gather, classifier, predict with the calibrated score floor on the border-normalized map, as
// the defaults), but trained on labels drawn from the image's own ground truth (up to `--rows` defect
// pixels and as many defect-free ones) instead of the map's pseudo-labels. Pooled F1 over the anomalous
// test images, with and without the score floor, next to the `ttt` defaults on the same maps. An upper
// bound for pseudo-labelling, not a method (it reads the answer).
//
//   npx tsx bench/label-bound.ts --dataset DIR --maps DIR [--size 256] [--rows 500] [--limit N]

import { parseArgs } from 'node:util';
import { borderNormalize, calibrate, runCalibration } from '../src/core/calibration.ts';
import { predict, trainClassifier } from '../src/core/classifier.ts';
import { chooseExtractor, extractFeatures, releaseFeatures } from '../src/core/features/index.ts';
import { gatherTrainingSet } from '../src/core/gather.ts';
import { COMPACT_BLOCK } from '../src/core/kernels.ts';
import { addConfusion, confusion, pixelMetrics, type Confusion } from '../src/core/metrics.ts';
import { resolveOptions } from '../src/core/options.ts';
import { LABEL_ANOMALOUS, LABEL_NOMINAL, maskScoreFloor } from '../src/core/pseudoLabels.ts';
import { segment } from '../src/core/pipeline.ts';
import { readMask } from '../src/core/binarize.ts';
import { pcgHash } from '../src/core/rng.ts';
import type { ScoreMap } from '../src/core/types.ts';
import { toWorkingResolution } from '../src/eval/run.ts';
import { NOMINAL_TYPE, loadImage, loadMask, openDataset } from '../src/eval/dataset.ts';
import { mapsFolder } from '../src/eval/scoreSource.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { registerMobileNet } from '../src/models/mobilenet.ts';

const { values: v } = parseArgs({ options: { dataset: { type: 'string' }, maps: { type: 'string' }, size: { type: 'string' }, rows: { type: 'string' }, limit: { type: 'string' } } });
if (!v.dataset || !v.maps) throw new Error('--dataset and --maps are required');
const size = Number(v.size ?? 256);
const perClass = Number(v.rows ?? 500);
registerMobileNet();
const { gpu } = await nodeGpu();
const source = mapsFolder(v.maps);
const dataset = await openDataset(v.dataset, { seed: 0, limit: v.limit === undefined ? undefined : Number(v.limit) });
const options = resolveOptions({});
const extractor = chooseExtractor(options);

const validation: ScoreMap[] = [];
for (const item of dataset.validation) {
  const { image } = await loadImage(item, size);
  validation.push(await toWorkingResolution(gpu, await source.score(item, image), image));
}
const calibration = calibrate(validation);
// The floor as `ttt` applies it: on the border-normalized map when map.borderNormalize is on.
const run = runCalibration(calibration, options.map.borderNormalize);
const floor = maskScoreFloor(run.calibration, options);

/** k distinct indices of `pool` (a partial Fisher-Yates shuffle). */
function draw(pool: number[], k: number, rnd: () => number): number[] {
  const a = pool.slice();
  const m = Math.min(k, a.length);
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rnd() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, m);
}

const none = (): Confusion => ({ tp: 0, fp: 0, fn: 0, tn: 0 });
const totals: Record<'floor' | 'noFloor' | 'ttt', Confusion> = { floor: none(), noFloor: none(), ttt: none() };
const add = (key: keyof typeof totals, c: Confusion) => (totals[key] = addConfusion(totals[key], c));
let draws = 0;
const rnd = () => pcgHash(draws++) / 4294967296;
let images = 0;
for (const item of dataset.test) {
  if (item.type === NOMINAL_TYPE) continue;
  const { image, original } = await loadImage(item, size);
  const truth = await loadMask(item, original, image);
  const map = await toWorkingResolution(gpu, await source.score(item, image), image);
  const n = image.width * image.height;
  add('ttt', confusion((await segment(gpu, { image, scoreMap: map, calibration }, options)).predMask, truth));
  const defect: number[] = [];
  const clear: number[] = [];
  for (let i = 0; i < n; i++) (truth[i] ? defect : clear).push(i);
  if (defect.length === 0) {
    const empty = confusion(new Uint8Array(n), truth);
    add('floor', empty);
    add('noFloor', empty);
    continue;
  }
  const labels = new Uint32Array(n);
  for (const i of draw(defect, perClass, rnd)) labels[i] = LABEL_ANOMALOUS;
  for (const i of draw(clear, perClass, rnd)) labels[i] = LABEL_NOMINAL;
  const blockCounts = new Uint32Array(Math.ceil(n / COMPACT_BLOCK));
  let anomalous = 0;
  let nominal = 0;
  labels.forEach((l, i) => {
    if (l === 0) return;
    blockCounts[Math.floor(i / COMPACT_BLOCK)]++;
    if (l === LABEL_ANOMALOUS) anomalous++;
    else nominal++;
  });
  const counts = { anomalous, nominal, eligible: clear.length };
  const gpuLabels = { labels: gpu.upload(labels), blockCounts: gpu.upload(blockCounts), counts };
  const scores = gpu.upload(run.profile ? borderNormalize(map, run.profile) : map.data);
  const features = await extractFeatures(gpu, image, extractor);
  const set = gatherTrainingSet(gpu, gpuLabels, anomalous + nominal, features);
  const { model } = await trainClassifier(gpu, set, counts, options);
  for (const [key, f] of [['floor', floor], ['noFloor', -Infinity]] as const) {
    const { decision, mask } = predict(gpu, model, features, scores, f, null);
    add(key, confusion(await readMask(gpu, mask, n), truth));
    gpu.release(decision, mask);
  }
  releaseFeatures(gpu, features);
  gpu.release(gpuLabels.labels, gpuLabels.blockCounts, scores, set.x, set.targets, set.pixels, model);
  images++;
}
const f = (c: Confusion) => pixelMetrics(c).f1.toFixed(3);
console.log(`${images} anomalous test images with a defect; pooled F1:`);
console.log(`| classifier trained on | score floor | pooled F1 |\n|---|---|---:|`);
console.log(`| pseudo-labels (ttt defaults) | as the defaults | ${f(totals.ttt)} |`);
console.log(`| ground truth, ${perClass} + ${perClass} pixels | mean + ${options.mask.scoreFloorSigmas} std | ${f(totals.floor)} |`);
console.log(`| ground truth, ${perClass} + ${perClass} pixels | none | ${f(totals.noFloor)} |`);
process.exit(0);
