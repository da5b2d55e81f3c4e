// Pixel AUROC of the built-in PatchCore scorer on an MVTec-layout dataset (e.g. ../shared/datasets/
// magnetic-tile): a bank from train/good, every test image scored at its own size against its mask.
// Per defect type: the pixels of that type's images; overall: the pixels of all test images (good included).
//
//   npx tsx bench/patchcore-auroc.ts /work/shared/datasets/magnetic-tile [--limit 200] [--size 256]
//     [--coreset 0.1] [--layers block_2_add,block_5_add] [--stride 8] [--test-limit N] [--bank FILE] [--save-bank FILE]

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { listImages, readImages } from '../src/cli/bank.ts';
import { writeFileAtomic } from '../src/io/files.ts';
import { decodeImage, decodeMask } from '../src/io/image.ts';
import { auroc, splitByMask } from '../src/core/patchcore/auroc.ts';
import { decodeBank, encodeBank, type MemoryBank } from '../src/core/patchcore/bank.ts';
import { buildBank, PATCHCORE_DEFAULTS, PatchCoreScorer } from '../src/core/patchcore/patchcore.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { registerMobileNet } from '../src/models/nsfwjs.ts';

/** The arrays end to end (AUROC sorts its inputs in place; their order does not matter to it). */
function concat32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const { values: v, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    limit: { type: 'string' }, size: { type: 'string' }, coreset: { type: 'string' }, layers: { type: 'string' },
    stride: { type: 'string' }, 'test-limit': { type: 'string' }, bank: { type: 'string' }, 'save-bank': { type: 'string' }, json: { type: 'boolean' },
  },
});
const root = positionals[0];
if (!root || !existsSync(join(root, 'train', 'good'))) {
  console.error('usage: tsx bench/patchcore-auroc.ts DATASET_DIR [--limit N] [--size 256] [--coreset 0.1] [--layers a,b] [--stride 8] [--bank FILE] [--save-bank FILE]');
  process.exit(2);
}
registerMobileNet();
const { gpu, adapterName } = await nodeGpu();
const config = {
  ...PATCHCORE_DEFAULTS,
  size: Number(v.size ?? PATCHCORE_DEFAULTS.size),
  stride: Number(v.stride ?? PATCHCORE_DEFAULTS.stride),
  coresetRatio: Number(v.coreset ?? PATCHCORE_DEFAULTS.coresetRatio),
  layers: v.layers ? v.layers.split(',') : PATCHCORE_DEFAULTS.layers,
};

let bank: MemoryBank;
let buildSeconds = 0;
if (v.bank) {
  bank = decodeBank(readFileSync(v.bank), v.bank);
} else {
  const paths = listImages(join(root, 'train', 'good'), v.limit ? Number(v.limit) : undefined);
  const t0 = performance.now();
  bank = await buildBank(gpu, readImages(paths), config, {
    onImage: (n) => n % 50 === 0 && process.stderr.write(`bank: ${n}/${paths.length} images\n`),
    onCoreset: (n, total) => n % 4096 === 0 && process.stderr.write(`bank: coreset ${n}/${total}\n`),
  });
  buildSeconds = (performance.now() - t0) / 1000;
  if (v['save-bank']) await writeFileAtomic(v['save-bank'], encodeBank(bank));
}
const scorer = await PatchCoreScorer.load(gpu, bank);

const categories = readdirSync(join(root, 'test')).sort();
const perType: Record<string, { pixel: number; images: number }> = {};
const allPos: Float32Array[] = [];
const allNeg: Float32Array[] = [];
const imageScores: { score: number; defective: boolean }[] = [];
let scoreMs = 0;
for (const cat of categories) {
  const pos: Float32Array[] = [];
  const neg: Float32Array[] = [];
  const files = listImages(join(root, 'test', cat), v['test-limit'] ? Number(v['test-limit']) : undefined);
  for (const file of files) {
    const image = await decodeImage(readFileSync(file), file);
    const t0 = performance.now();
    const { anomalyMap, predScore } = await scorer.score(image);
    scoreMs += performance.now() - t0;
    let mask: Uint8Array = new Uint8Array(image.width * image.height);
    if (cat !== 'good') {
      mask = await decodeMask(readFileSync(join(root, 'ground_truth', cat, `${basename(file, extname(file))}_mask.png`)), file, image);
    }
    const split = splitByMask(anomalyMap.data, mask);
    pos.push(split.positives);
    neg.push(split.negatives);
    imageScores.push({ score: predScore, defective: cat !== 'good' });
  }
  const p = concat32(pos);
  const n = concat32(neg);
  allPos.push(p);
  allNeg.push(n);
  if (cat !== 'good') perType[cat] = { pixel: +auroc(p, n).toFixed(4), images: files.length };
  process.stderr.write(`${cat}: ${files.length} images${cat !== 'good' ? `, pixel AUROC ${perType[cat].pixel}` : ''}\n`);
}
const overall = auroc(concat32(allPos), concat32(allNeg));
const image = auroc(
  Float32Array.from(imageScores.filter((s) => s.defective).map((s) => s.score)),
  Float32Array.from(imageScores.filter((s) => !s.defective).map((s) => s.score)),
);
const result = {
  adapter: adapterName,
  dataset: root,
  bank: { ...bank.header, buildSeconds: +buildSeconds.toFixed(1) },
  pixelAuroc: { ...Object.fromEntries(Object.entries(perType).map(([k, r]) => [k, r.pixel])), overall: +overall.toFixed(4) },
  imageAuroc: +image.toFixed(4),
  meanScoreMs: +(scoreMs / imageScores.length).toFixed(1),
};
console.log(JSON.stringify(result, null, v.json ? 0 : 2));
process.exit(0);
