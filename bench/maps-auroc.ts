// Pixel and image AUROC of saved score maps (a `--maps` folder, e.g. from `ttt eval --save-maps`) on an
// MVTec-layout dataset, without scoring anything again. Each map is compared with its image's mask resampled
// nearest-neighbour to the map's size (the working resolution the maps were saved at). Per defect type: the
// pixels of that type's images; overall: the pixels of every test image (defect-free ones included), as
// bench/patchcore-auroc.ts counts them. Image AUROC: each map's maximum, defective against defect-free.
//
//   npx tsx bench/maps-auroc.ts --dataset ../shared/datasets/magnetic-tile --maps /work/maps [--half a|b] [--seed 0] [--json]

import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { auroc, splitByMask } from '../src/core/patchcore/auroc.ts';
import { NOMINAL_TYPE, openDataset, resampleNearest } from '../src/eval/dataset.ts';
import { mapsFolder } from '../src/eval/scoreSource.ts';
import { decodeMask } from '../src/io/image.ts';
import { readInputFile } from '../src/io/files.ts';
import type { ImageTensor } from '../src/core/types.ts';

const { values: v } = parseArgs({
  options: {
    dataset: { type: 'string' }, maps: { type: 'string' }, half: { type: 'string' }, seed: { type: 'string' },
    limit: { type: 'string' }, json: { type: 'boolean' },
  },
});
if (!v.dataset || !v.maps) throw new Error('usage: --dataset DIR --maps DIR [--half a|b] [--seed N] [--limit N] [--json]');
if (v.half !== undefined && v.half !== 'a' && v.half !== 'b') throw new Error(`--half must be a or b, got ${v.half}`);
const dataset = await openDataset(v.dataset, {
  seed: Number(v.seed ?? 0), limit: v.limit === undefined ? undefined : Number(v.limit), half: v.half as 'a' | 'b' | undefined,
});
const source = mapsFolder(v.maps);
await source.prepare!(dataset, { loadImage: async () => { throw new Error('not used'); }, progress: () => {} });

interface Pixels { pos: Float32Array[]; neg: Float32Array[] }
const byType = new Map<string, Pixels>();
const all: Pixels = { pos: [], neg: [] };
const images: { defective: boolean; score: number }[] = [];
const concat = (parts: Float32Array[]) => {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};
for (const item of dataset.test) {
  const map = await source.score(item, undefined as unknown as ImageTensor);
  const size = { width: map.width, height: map.height };
  let mask: Uint8Array;
  if (item.maskPath) {
    const bytes = await readInputFile(item.maskPath, 'mask');
    const meta = await sharp(bytes).metadata();
    const original = { width: meta.width!, height: meta.height! };
    mask = resampleNearest(await decodeMask(bytes, item.maskPath, original), original, size);
  } else mask = new Uint8Array(map.width * map.height);
  const { positives, negatives } = splitByMask(map.data, mask);
  const t = byType.get(item.type) ?? { pos: [], neg: [] };
  t.pos.push(positives); t.neg.push(negatives); byType.set(item.type, t);
  all.pos.push(positives); all.neg.push(negatives);
  let max = -Infinity;
  for (const s of map.data) if (s > max) max = s;
  images.push({ defective: item.type !== NOMINAL_TYPE, score: max });
}
const perType: Record<string, number> = {};
for (const [type, p] of byType) if (type !== NOMINAL_TYPE) perType[type] = +auroc(concat(p.pos), concat(p.neg)).toFixed(4);
const overall = +auroc(concat(all.pos), concat(all.neg)).toFixed(4);
const image = +auroc(
  Float32Array.from(images.filter((s) => s.defective).map((s) => s.score)),
  Float32Array.from(images.filter((s) => !s.defective).map((s) => s.score)),
).toFixed(4);
const counts = Object.fromEntries([...byType].map(([t, p]) => [t, p.pos.length]));
const result = { maps: v.maps, half: v.half ?? null, images: dataset.test.length, counts, perType, overall, image };
if (v.json) console.log(JSON.stringify(result));
else {
  console.log(`${result.images} test images (${JSON.stringify(counts)})${v.half ? `, half ${v.half}` : ''}`);
  console.log(`pixel AUROC: ${Object.entries(perType).map(([t, a]) => `${t} ${a}`).join(', ')}; overall ${overall}; image AUROC ${image}`);
}
