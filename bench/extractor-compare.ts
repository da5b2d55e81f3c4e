// Test-time-training masks with the filterbank against the mobilenetv2 extractor, on the anomalous test
// images of an MVTec-layout dataset, with the built-in PatchCore maps as the anomaly maps (bank from
// train/good). Reports pooled and per-image F1 / IoU and the feature-stage time: the measurement behind the
// choice of the default extractor.
//
//   npx tsx bench/extractor-compare.ts /work/shared/datasets/magnetic-tile [--limit 50] [--test-limit 10] [--bank FILE]

import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { listImages, readImages } from '../src/cli/bank.ts';
import { decodeImage, decodeMask } from '../src/io/image.ts';
import { addConfusion, confusion, meanMetrics, pixelMetrics, type Confusion, type PixelMetrics } from '../src/core/metrics.ts';
import { resolveOptions } from '../src/core/options.ts';
import { decodeBank } from '../src/core/patchcore/bank.ts';
import { buildBank, PATCHCORE_DEFAULTS, PatchCoreScorer } from '../src/core/patchcore/patchcore.ts';
import { segment } from '../src/core/pipeline.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { registerMobileNet } from '../src/models/mobilenet.ts';
import { registerResnet50 } from '../src/models/resnet50.ts';

const { values: v, positionals } = parseArgs({
  allowPositionals: true,
  options: { limit: { type: 'string' }, 'test-limit': { type: 'string' }, bank: { type: 'string' }, layers: { type: 'string' } },
});
const root = positionals[0];
registerMobileNet();
registerResnet50();
const { gpu, adapterName } = await nodeGpu();
const bank = v.bank
  ? decodeBank(readFileSync(v.bank), v.bank)
  : await buildBank(gpu, readImages(listImages(join(root, 'train', 'good'), Number(v.limit ?? 50))), PATCHCORE_DEFAULTS);
const scorer = await PatchCoreScorer.load(gpu, bank);
const variants = {
  filterbank: resolveOptions({ 'features.extractor': 'filterbank', 'gate.mode': 'off' }),
  mobilenetv2: resolveOptions({ 'features.extractor': 'mobilenetv2', 'gate.mode': 'off', ...(v.layers ? { 'features.layers': v.layers } : {}) }),
};
const acc = Object.fromEntries(Object.keys(variants).map((k) => [k, { pooled: { tp: 0, fp: 0, fn: 0, tn: 0 } as Confusion, perImage: [] as PixelMetrics[], featureMs: 0, n: 0 }]));
for (const cat of readdirSync(join(root, 'test')).sort()) {
  if (cat === 'good') continue;
  for (const file of listImages(join(root, 'test', cat), v['test-limit'] ? Number(v['test-limit']) : undefined)) {
    const image = await decodeImage(readFileSync(file), file);
    const truth = await decodeMask(readFileSync(join(root, 'ground_truth', cat, `${basename(file, extname(file))}_mask.png`)), file, image);
    const { anomalyMap } = await scorer.score(image);
    for (const [name, options] of Object.entries(variants)) {
      const r = await segment(gpu, { image, scoreMap: anomalyMap }, options);
      const c = confusion(r.predMask, truth);
      const a = acc[name];
      a.pooled = addConfusion(a.pooled, c);
      a.perImage.push(pixelMetrics(c));
      a.featureMs += r.timings.features ?? 0;
      a.n++;
    }
  }
  process.stderr.write(`${cat} done\n`);
}
const round = (m: PixelMetrics) => Object.fromEntries(Object.entries(m).map(([k, x]) => [k, +x.toFixed(4)]));
console.log(JSON.stringify({
  adapter: adapterName,
  bank: { images: bank.header.images, patches: bank.header.patches, layers: bank.header.layers },
  results: Object.fromEntries(Object.entries(acc).map(([k, a]) => [k, { images: a.n, pooled: round(pixelMetrics(a.pooled)), perImage: round(meanMetrics(a.perImage)), featureMs: +(a.featureMs / a.n).toFixed(1) }])),
}, null, 2));
process.exit(0);
