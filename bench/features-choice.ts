// The choice of the classifier's features by measurement: the test-time stage (`ttt` method of ttt eval)
// with each feature set, on the test images of an MVTec-layout dataset with given score maps (a folder from
// `ttt eval --save-maps`), against the best global-threshold baseline (thr_*) per defect type. Reports the
// pooled and per-image F1 per type and overall, over all images and over two seeded halves: the variant is
// chosen on half A (overall pooled F1) and its figures on half B are the held-out check.
//
//   nice -n 5 npx tsx bench/features-choice.ts --dataset ../shared/datasets/magnetic-tile --maps /tmp/feat/maps-mnv2 \
//     --limit 40 [--variants a,b,...] [--set key=value ...] [--json FILE]
//
// --limit and --seed must be those the maps were saved with (the same images are drawn).

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { drawKey } from '../src/eval/dataset.ts';
import { runEval } from '../src/eval/run.ts';
import { mapsFolder } from '../src/eval/scoreSource.ts';
import type { ImageResult } from '../src/eval/report.ts';
import type { MethodName } from '../src/eval/methods.ts';
import { addConfusion, meanMetrics, pixelMetrics, type Confusion } from '../src/core/metrics.ts';
import { parseAssignments, resolveOptions } from '../src/core/options.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { registerMobileNet } from '../src/models/mobilenet.ts';
import { registerResnet50 } from '../src/models/resnet50.ts';

/** The feature sets compared (overrides of the ttt method's options). */
export const VARIANTS: Record<string, Record<string, unknown>> = {
  mobilenetv2: { 'features.extractor': 'mobilenetv2' },
  filterbank: { 'features.extractor': 'filterbank' },
  image: { 'features.extractor': 'combined', 'features.sources': 'image' },
  'image+filterbank': { 'features.extractor': 'combined', 'features.sources': 'image,filterbank' },
  'image+filterbank (ungrouped)': { 'features.extractor': 'combined', 'features.sources': 'image,filterbank', 'features.groupNormalize': false },
  'image+mobilenetv2': { 'features.extractor': 'combined', 'features.sources': 'image,mobilenetv2' },
  'filterbank+mobilenetv2': { 'features.extractor': 'combined', 'features.sources': 'filterbank,mobilenetv2' },
  'image+filterbank+mobilenetv2': { 'features.extractor': 'combined', 'features.sources': 'image,filterbank,mobilenetv2' },
  'image+filterbank+mobilenetv2 (ungrouped)': { 'features.extractor': 'combined', 'features.sources': 'image,filterbank,mobilenetv2', 'features.groupNormalize': false },
  'mobilenetv2 (one group)': { 'features.extractor': 'combined', 'features.sources': 'mobilenetv2' },
  resnet50: { 'features.extractor': 'resnet50' },
  'resnet50:stage1': { 'features.extractor': 'combined', 'features.sources': 'resnet50:stage1' },
  'resnet50:stage2': { 'features.extractor': 'combined', 'features.sources': 'resnet50:stage2' },
  'resnet50:stage1+2+3': { 'features.extractor': 'combined', 'features.sources': 'resnet50:stage1,resnet50:stage2,resnet50:stage3' },
  'image+resnet50:stage1': { 'features.extractor': 'combined', 'features.sources': 'image,resnet50:stage1' },
  'filterbank+resnet50:stage1': { 'features.extractor': 'combined', 'features.sources': 'filterbank,resnet50:stage1' },
  'image+filterbank+resnet50:stage1+2+3': { 'features.extractor': 'combined', 'features.sources': 'image,filterbank,resnet50:stage1,resnet50:stage2,resnet50:stage3' },
  'mobilenetv2+resnet50:stage1': { 'features.extractor': 'combined', 'features.sources': 'mobilenetv2,resnet50:stage1' },
};
const THRESHOLDS: MethodName[] = ['thr_global_3sigma', 'thr_global_1sigma', 'thr_pixel_3sigma'];
const SALT_HALF = 0x68616c66;

const { values: v } = parseArgs({
  options: {
    dataset: { type: 'string' },
    maps: { type: 'string' },
    limit: { type: 'string' },
    seed: { type: 'string', default: '0' },
    size: { type: 'string', default: '256' },
    variants: { type: 'string' },
    set: { type: 'string', multiple: true },
    json: { type: 'string' },
  },
});
if (!v.dataset || !v.maps) throw new Error('usage: features-choice.ts --dataset DIR --maps DIR [--limit N] [--variants a,b] [--set k=v] [--json FILE]');
const seed = Number(v.seed);
const common = parseAssignments(v.set ?? []);
const names = v.variants ? v.variants.split(',') : Object.keys(VARIANTS);
for (const n of names) if (!VARIANTS[n]) throw new Error(`unknown variant ${n} (known: ${Object.keys(VARIANTS).join(', ')})`);
for (const n of names) resolveOptions({ ...common, ...VARIANTS[n] });

registerMobileNet();
registerResnet50();
const { gpu, adapterName } = await nodeGpu();
const evalOnce = async (methods: MethodName[], overrides: Record<string, unknown>) => {
  const t0 = performance.now();
  const r = await runEval({ gpu, dataset: v.dataset!, source: mapsFolder(v.maps!), methods, size: Number(v.size), limit: v.limit ? Number(v.limit) : undefined, seed, tttOverrides: overrides });
  return { images: r.report.imageResults, ms: performance.now() - t0 };
};

/** Per type and overall, pooled and per-image F1 of one method over a subset of the anomalous images. */
function scores(images: readonly ImageResult[], method: MethodName, keep: (r: ImageResult) => boolean) {
  const types = [...new Set(images.filter((r) => r.anomalous).map((r) => r.type))].sort();
  const of = (list: ImageResult[]) => {
    const cs = list.map((r) => r.methods[method] as Confusion);
    const zero: Confusion = { tp: 0, fp: 0, fn: 0, tn: 0 };
    return { pooled: +pixelMetrics(cs.reduce(addConfusion, zero)).f1.toFixed(4), perImage: +meanMetrics(cs.map(pixelMetrics)).f1.toFixed(4), n: list.length };
  };
  const anomalous = images.filter((r) => r.anomalous && keep(r));
  const out: Record<string, { pooled: number; perImage: number; n: number }> = {};
  for (const t of types) out[t] = of(anomalous.filter((r) => r.type === t));
  out.overall = of(anomalous);
  const nominal = images.filter((r) => !r.anomalous && keep(r));
  const flagged = nominal.filter((r) => (r.methods[method]!.tp + r.methods[method]!.fp) > 0).length;
  return { f1: out, flaggedNominal: nominal.length ? +(flagged / nominal.length).toFixed(4) : null };
}

const halfA = (r: ImageResult) => drawKey(r.id, seed, SALT_HALF) % 2 === 0;
const subsets = { all: () => true, A: halfA, B: (r: ImageResult) => !halfA(r) };
const base = await evalOnce(THRESHOLDS, {});
const table: Record<string, Record<string, ReturnType<typeof scores>>> = {};
for (const m of THRESHOLDS) table[m] = Object.fromEntries(Object.entries(subsets).map(([k, f]) => [k, scores(base.images, m, f)]));
const ms: Record<string, number> = {};
for (const n of names) {
  const r = await evalOnce(['ttt'], { ...common, ...VARIANTS[n] });
  table[n] = Object.fromEntries(Object.entries(subsets).map(([k, f]) => [k, scores(r.images, 'ttt', f)]));
  ms[n] = Math.round(r.ms);
  process.stderr.write(`${n}: overall pooled F1 ${table[n].all.f1.overall.pooled} (${(r.ms / 1000).toFixed(0)} s)\n`);
}

// The best threshold per type (the baseline a feature set must not lose to), per subset.
const types = Object.keys(table[THRESHOLDS[0]].all.f1);
const bestThr = (subset: string, type: string, key: 'pooled' | 'perImage') => Math.max(...THRESHOLDS.map((m) => table[m][subset].f1[type][key]));
const chosen = names.reduce((a, b) => (table[b].A.f1.overall.pooled > table[a].A.f1.overall.pooled ? b : a));
const fmt = (x: number) => x.toFixed(3);
const lines: string[] = [];
for (const subset of ['all', 'A', 'B'] as const) {
  lines.push(`\n### ${subset === 'all' ? 'all test images' : `half ${subset}`} (pooled F1 / per-image F1; images per type: ${types.map((t) => `${t} ${table[THRESHOLDS[0]][subset].f1[t].n}`).join(', ')})\n`);
  lines.push(`| features | ${types.join(' | ')} | flagged good |`, `|---|${types.map(() => '---').join('|')}|---|`);
  lines.push(`| best thr_* per type | ${types.map((t) => `${fmt(bestThr(subset, t, 'pooled'))} / ${fmt(bestThr(subset, t, 'perImage'))}`).join(' | ')} | |`);
  for (const n of [...THRESHOLDS, ...names]) {
    const s = table[n][subset];
    const cell = (t: string) => {
      const mark = THRESHOLDS.includes(n as MethodName) ? '' : s.f1[t].pooled < bestThr(subset, t, 'pooled') ? ' (<thr)' : '';
      return `${fmt(s.f1[t].pooled)} / ${fmt(s.f1[t].perImage)}${mark}`;
    };
    lines.push(`| ${n} | ${types.map(cell).join(' | ')} | ${s.flaggedNominal ?? ''} |`);
  }
}
lines.push(`\nchosen on half A (overall pooled F1): ${chosen}; on half B: ${table[chosen].B.f1.overall.pooled} pooled, ${table[chosen].B.f1.overall.perImage} per image`);
console.log(`adapter: ${adapterName}; maps: ${v.maps}; limit ${v.limit ?? 'none'}, seed ${seed}, size ${v.size}${v.set ? `; --set ${v.set.join(' ')}` : ''}`);
console.log(lines.join('\n'));
console.log(`\nseconds per variant (whole eval pass): ${names.map((n) => `${n} ${(ms[n] / 1000).toFixed(0)}`).join(', ')}`);
if (v.json) writeFileSync(v.json, JSON.stringify({ adapter: adapterName, maps: v.maps, limit: v.limit, seed, table, chosen, ms }, null, 2));
process.exit(0);
