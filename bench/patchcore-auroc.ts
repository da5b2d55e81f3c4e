// Pixel AUROC of the built-in PatchCore scorer on an MVTec-layout dataset (e.g. ../shared/datasets/
// magnetic-tile): a bank from train/good, every test image scored at its own size against its mask.
// Per defect type: the pixels of that type's images; overall: the pixels of all test images (good included).
//
//   npx tsx bench/patchcore-auroc.ts /work/shared/datasets/magnetic-tile [--limit 200] [--size 256]
//     [--coreset 0.1 | --coreset-rows 10000] [--preselect 0.1] [--search exact|projected] [--slices 16]
//     [--backbone resnet50|mobilenetv2] [--layers a,b] [--stride 8] [--test-limit N] [--bank FILE] [--save-bank FILE]
//
// Several banks in one run (each image's features are computed once, each test image's once for all banks):
//   --variants 200:auto,680:0.1,680:1[:exact]   LIMIT:PRESELECT[:SEARCH] per bank: the training images (evenly
//   spaced), the per-image pre-selection share (1: the exact greedy coreset), the search. The rows of the
//   largest LIMIT are read once with all patches kept; a variant's pre-selection is then applied to its
//   images' stored rows (the same function the streamed build applies as it reads). Its build time is the
//   sum of its images' feature times, the pre-selection and the coreset.
//   --recall N   on N test images (evenly spaced), the share of patches whose projected-search entry is the
//   exact search's nearest entry, and the mean ratio of their distances.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { listImages, readImages } from '../src/cli/bank.ts';
import { writeFileAtomic } from '../src/io/files.ts';
import { decodeImage, decodeMask } from '../src/io/image.ts';
import { auroc, splitByMask } from '../src/core/patchcore/auroc.ts';
import { decodeBank, encodeBank, type MemoryBank } from '../src/core/patchcore/bank.ts';
import {
  bankFromRows, bankRows, PATCHCORE_DEFAULTS, PatchCoreScorer, preselectImage, type ImageRows, type PatchCoreConfig, type SearchMode,
} from '../src/core/patchcore/patchcore.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { registerMobileNet } from '../src/models/mobilenet.ts';
import { registerResnet50 } from '../src/models/resnet50.ts';
import { autoPreselect, concatRows, scorerLayers } from '../src/core/patchcore/patchcore.ts';
import type { Backbone } from '../src/core/patchcore/bank.ts';


const { values: v, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    limit: { type: 'string' }, size: { type: 'string' }, coreset: { type: 'string' }, 'coreset-rows': { type: 'string' }, preselect: { type: 'string' },
    search: { type: 'string' }, slices: { type: 'string' }, layers: { type: 'string' }, backbone: { type: 'string' }, variants: { type: 'string' }, recall: { type: 'string' },
    stride: { type: 'string' }, 'test-limit': { type: 'string' }, bank: { type: 'string' }, 'save-bank': { type: 'string' }, json: { type: 'boolean' },
  },
});
const root = positionals[0];
if (!root || !existsSync(join(root, 'train', 'good'))) {
  console.error('usage: tsx bench/patchcore-auroc.ts DATASET_DIR [--limit N] [--coreset-rows N] [--preselect S] [--search exact|projected] [--variants 200:1,680:0.1] [--recall N] [--bank FILE] [--save-bank FILE]');
  process.exit(2);
}
registerMobileNet();
registerResnet50();
const { gpu, adapterName } = await nodeGpu();
const backbone = (v.backbone ?? PATCHCORE_DEFAULTS.backbone) as Backbone;
const config: PatchCoreConfig = {
  ...PATCHCORE_DEFAULTS,
  backbone,
  size: Number(v.size ?? PATCHCORE_DEFAULTS.size),
  stride: Number(v.stride ?? PATCHCORE_DEFAULTS.stride),
  coresetRatio: Number(v.coreset ?? PATCHCORE_DEFAULTS.coresetRatio),
  coresetRows: v.coreset ? 0 : Number(v['coreset-rows'] ?? PATCHCORE_DEFAULTS.coresetRows),
  preselect: 1,
  layers: v.layers ? v.layers.split(',') : scorerLayers(backbone),
};
const searchOf = (s: string | undefined): SearchMode | undefined => (s === undefined ? undefined : s === 'exact' || s === 'projected' ? s : (() => { throw new Error(`search ${s}`); })());
const scorerOptions = { search: searchOf(v.search), slices: v.slices ? Number(v.slices) : undefined };
const trainDir = join(root, 'train', 'good');
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

interface Variant {
  name: string;
  bank: MemoryBank;
  build: { seconds: number; featureSeconds: number; preselectSeconds: number; coresetSeconds: number };
  search?: SearchMode;
}
const variants: Variant[] = [];

if (v.bank) {
  variants.push({ name: v.bank, bank: decodeBank(readFileSync(v.bank), v.bank), build: { seconds: 0, featureSeconds: 0, preselectSeconds: 0, coresetSeconds: 0 } });
} else {
  const all = listImages(trainDir).length;
  const specs = (v.variants ?? `${v.limit ?? 'all'}:${v.preselect ?? 'auto'}`).split(',').map((s) => {
    const [limit, share, search] = s.split(':');
    const n = limit === 'all' ? undefined : Number(limit);
    return { limit: n, share: share === undefined || share === 'auto' ? autoPreselect(Math.min(n ?? all, all), config) : Number(share), search: searchOf(search) };
  });
  const maxLimit = specs.some((s) => s.limit === undefined) ? undefined : Math.max(...specs.map((s) => s.limit!));
  const paths = listImages(trainDir, maxLimit);
  // One pass: every image's rows with all patches kept (pre-selection 1), and its feature time.
  const featureMs: number[] = [];
  let t = performance.now();
  const rows = await bankRows(gpu, readImages(paths), { ...config, preselect: 1 }, {
    onImage: (n) => {
      const now = performance.now();
      featureMs.push(now - t);
      t = now;
      if (n % 50 === 0) log(`features: ${n}/${paths.length} images`);
    },
  });
  const position = new Map(paths.map((p, i) => [p, i]));
  for (const spec of specs) {
    const picked = listImages(trainDir, spec.limit).map((p) => position.get(p)!);
    const t0 = performance.now();
    const images: ImageRows[] = spec.share < 1 ? picked.map((k, j) => preselectImage(rows.perImage[k], rows.channels, spec.share, config.seed + j)) : picked.map((k) => rows.perImage[k]);
    const t1 = performance.now();
    const c = { ...config, preselect: spec.share };
    const bank = await bankFromRows(gpu, { ...rows, perImage: images }, c, {
      onCoreset: (n, total) => n % 2048 === 0 && log(`${spec.limit ?? all}:${spec.share}: coreset ${n}/${total}`),
    });
    const t2 = performance.now();
    const featureSeconds = picked.reduce((a, k) => a + featureMs[k], 0) / 1000;
    const build = { featureSeconds: +featureSeconds.toFixed(1), preselectSeconds: +((t1 - t0) / 1000).toFixed(1), coresetSeconds: +((t2 - t1) / 1000).toFixed(1), seconds: +(featureSeconds + (t2 - t0) / 1000).toFixed(1) };
    const name = `${picked.length} images, preselect ${spec.share}${spec.search ? `, ${spec.search}` : ''}`;
    log(`${name}: bank of ${bank.header.patches} from ${bank.header.sourcePatches} patches, ${JSON.stringify(build)}`);
    variants.push({ name, bank, build, search: spec.search });
    if (v['save-bank'] && specs.length === 1) await writeFileAtomic(v['save-bank'], encodeBank(bank));
  }
  rows.perImage.length = 0;
}

const scorers = await Promise.all(variants.map((x) => PatchCoreScorer.load(gpu, x.bank, { ...scorerOptions, search: x.search ?? scorerOptions.search })));
const categories = readdirSync(join(root, 'test')).sort();
const files = categories.flatMap((cat) => listImages(join(root, 'test', cat), v['test-limit'] ? Number(v['test-limit']) : undefined).map((file) => ({ cat, file })));

// Recall of the projected search against the exact search, on the same patches.
const recall: Record<string, { hits: number; patches: number; ratio: number }> = {};
if (v.recall) {
  const n = Number(v.recall);
  const pick = Array.from({ length: Math.min(n, files.length) }, (_, i) => files[Math.floor((i * files.length) / Math.min(n, files.length))]);
  for (const [k, s] of scorers.entries()) {
    if (s.search !== 'projected') continue;
    const r = { hits: 0, patches: 0, ratio: 0 };
    for (const { file } of pick) {
      const image = await decodeImage(readFileSync(file), file);
      const a = await s.nearestPatches(image, null, 'projected');
      const b = await s.nearestPatches(image, null, 'exact');
      for (let i = 0; i < a.index.length; i++) {
        r.hits += a.index[i] === b.index[i] ? 1 : 0;
        r.ratio += b.distance[i] > 0 ? a.distance[i] / b.distance[i] : 1;
      }
      r.patches += a.index.length;
    }
    recall[variants[k].name] = { hits: +(r.hits / r.patches).toFixed(4), patches: r.patches, ratio: +(r.ratio / r.patches).toFixed(5) };
    log(`recall ${variants[k].name}: ${JSON.stringify(recall[variants[k].name])}`);
  }
}

interface Acc { pos: Map<string, Float32Array[]>; neg: Map<string, Float32Array[]>; images: { score: number; defective: boolean }[]; ms: number }
const acc: Acc[] = variants.map(() => ({ pos: new Map(), neg: new Map(), images: [], ms: 0 }));
let featuresMs = 0;
for (const [n, { cat, file }] of files.entries()) {
  const image = await decodeImage(readFileSync(file), file);
  let mask: Uint8Array = new Uint8Array(image.width * image.height);
  if (cat !== 'good') mask = await decodeMask(readFileSync(join(root, 'ground_truth', cat, `${basename(file, extname(file))}_mask.png`)), file, image);
  const t0 = performance.now();
  const q = await scorers[0].patches(image);
  await gpu.sync();
  featuresMs += performance.now() - t0;
  for (const [k, s] of scorers.entries()) {
    const t1 = performance.now();
    const { anomalyMap, predScore } = await s.scorePatches(q, image);
    acc[k].ms += performance.now() - t1;
    const split = splitByMask(anomalyMap.data, mask);
    for (const [m, part] of [[acc[k].pos, split.positives], [acc[k].neg, split.negatives]] as const) m.set(cat, [...(m.get(cat) ?? []), part]);
    acc[k].images.push({ score: predScore, defective: cat !== 'good' });
  }
  gpu.release(q.data);
  if ((n + 1) % 50 === 0) log(`scored ${n + 1}/${files.length} test images`);
}

const results = variants.map((x, k) => {
  const a = acc[k];
  const pixel: Record<string, number> = {};
  for (const cat of categories) if (cat !== 'good') pixel[cat] = +auroc(concatRows(a.pos.get(cat) ?? []), concatRows(a.neg.get(cat) ?? [])).toFixed(4);
  pixel.overall = +auroc(concatRows([...a.pos.values()].flat()), concatRows([...a.neg.values()].flat())).toFixed(4);
  const image = auroc(Float32Array.from(a.images.filter((s) => s.defective).map((s) => s.score)), Float32Array.from(a.images.filter((s) => !s.defective).map((s) => s.score)));
  const { patches, sourcePatches, images, channels, preselect, coresetRows, coresetRatio, layers } = x.bank.header;
  return {
    name: x.name,
    bank: { images, sourcePatches, patches, channels, layers, preselect, coresetRows, coresetRatio, ...x.build },
    search: scorers[k].search,
    pixelAuroc: pixel,
    imageAuroc: +image.toFixed(4),
    meanScoreMs: +((featuresMs + a.ms) / files.length).toFixed(1),
    recall: recall[x.name],
  };
});
console.log(JSON.stringify({ adapter: adapterName, dataset: root, testImages: files.length, meanFeatureMs: +(featuresMs / files.length).toFixed(1), results }, null, v.json ? 0 : 2));
process.exit(0);
