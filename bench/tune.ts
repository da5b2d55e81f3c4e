// A grid over `ttt` option overrides on one dataset, every configuration through the same evaluation as
// `ttt eval` (pooled F1 over all defect types and per type, per-image F1, defect-free images flagged), to
// choose the defaults. Reads maps from a folder (write them once with `ttt eval --save-maps DIR`).
//
//   npx tsx bench/tune.ts --dataset DIR --maps DIR --grid grid.json [--size 256] [--limit N] [--seed N]
//     [--half a|b] [--baselines] [--json FILE]
//
// grid.json: a list of { "name": "...", "set": { "key": value, ... } } (keys as `--set`).
// --half: one seeded half of the test images (tune on a, report on b). --baselines: first the thr_* and
// the oracle on the same images, and per configuration the count of types where ttt's pooled F1 is at
// least the best thr_* of that type. --limit and --seed must be ones the maps were saved for.

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { nodeGpu } from '../src/gpu/node.ts';
import { runEval } from '../src/eval/run.ts';
import type { MethodName } from '../src/eval/methods.ts';
import type { ImageResult, MethodSummary } from '../src/eval/report.ts';
import { mapsFolder } from '../src/eval/scoreSource.ts';
import { registerMobileNet } from '../src/models/mobilenet.ts';
import { registerResnet50 } from '../src/models/resnet50.ts';

const { values: v } = parseArgs({
  options: {
    dataset: { type: 'string' },
    maps: { type: 'string' },
    grid: { type: 'string' },
    size: { type: 'string' },
    limit: { type: 'string' },
    seed: { type: 'string', default: '0' },
    half: { type: 'string' },
    baselines: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
if (!v.dataset || !v.maps || !v.grid) throw new Error('--dataset, --maps and --grid are required');
if (v.half !== undefined && v.half !== 'a' && v.half !== 'b') throw new Error('--half must be a or b');
const grid = JSON.parse(readFileSync(v.grid, 'utf8')) as { name: string; set: Record<string, unknown> }[];
registerMobileNet();
registerResnet50();
const { gpu, adapterName } = await nodeGpu();
const THRESHOLDS: MethodName[] = ['thr_global_3sigma', 'thr_global_1sigma', 'thr_pixel_3sigma'];
const run = async (methods: MethodName[], set: Record<string, unknown>) => {
  const t0 = performance.now();
  const r = await runEval({
    gpu,
    dataset: v.dataset!,
    source: mapsFolder(v.maps!),
    methods,
    size: v.size === undefined ? 256 : Number(v.size) || null,
    limit: v.limit === undefined ? undefined : Number(v.limit),
    half: v.half as 'a' | 'b' | undefined,
    seed: Number(v.seed),
    tttOverrides: set,
  });
  return { summary: r.summary, images: r.report.imageResults, s: (performance.now() - t0) / 1000 };
};
const f = (x: number | undefined | null) => (x === undefined || x === null ? '-' : x.toFixed(3));
/** The defect types (those with anomalous images: pooled metrics), in name order. */
const anomalousTypes = (perType: Record<string, Record<string, MethodSummary>>) =>
  Object.keys(perType)
    .filter((t) => Object.values(perType[t]).some((m) => m.pooled !== null))
    .sort();
/** Per configuration, every image's confusion (bench/tune-table.ts merges halves and tabulates them). */
const images: Record<string, { id: string; type: string; anomalous: boolean; c: [number, number, number, number] }[]> = {};
const keep = (list: ImageResult[], m: MethodName) =>
  list.map((x) => {
    const c = x.methods[m]!;
    return { id: x.id, type: x.type, anomalous: x.anomalous, c: [c.tp, c.fp, c.fn, c.tn] as [number, number, number, number] };
  });
const rows: Record<string, { pooled: number | null; perImage: number | null; flagged: number | null; perType: Record<string, number | null>; atLeastBestThr?: number; s: number }> = {};
const describe = (m: MethodSummary, perType: Record<string, number | null>, s: number) => ({
  pooled: m.pooled?.f1 ?? null,
  perImage: m.perImage?.f1 ?? null,
  flagged: m.nominal?.flaggedImages ?? null,
  perType,
  s,
});
let types: string[] = [];
let bestThr: Record<string, number> = {};
const header = () => {
  console.log(`adapter: ${adapterName}; maps: ${v.maps}; half ${v.half ?? 'all'}, seed ${v.seed}, limit ${v.limit ?? 'none'}`);
  console.log(`| configuration | ${types.join(' | ')} | pooled F1 | per-image F1 | good flagged |${v.baselines ? ' types >= best thr |' : ''} s |`);
  console.log(`|---|${types.map(() => '---:').join('|')}|---:|---:|---:|${v.baselines ? '---:|' : ''}---:|`);
};
const line = (name: string, r: (typeof rows)[string]) =>
  console.log(
    `| ${name} | ${types.map((t) => f(r.perType[t])).join(' | ')} | ${f(r.pooled)} | ${f(r.perImage)} | ${r.flagged === null ? '-' : (100 * r.flagged).toFixed(1) + '%'} |${v.baselines ? ` ${r.atLeastBestThr ?? ''} |` : ''} ${r.s.toFixed(0)} |`,
  );
if (v.baselines) {
  const b = await run([...THRESHOLDS, 'oracle'], {});
  types = anomalousTypes(b.summary.perType);
  for (const m of [...THRESHOLDS, 'oracle'] as MethodName[]) {
    images[m] = keep(b.images, m);
    rows[m] = describe(b.summary.methods[m], Object.fromEntries(types.map((t) => [t, b.summary.perType[t][m]?.pooled?.f1 ?? null])), b.s);
  }
  bestThr = Object.fromEntries(types.map((t) => [t, Math.max(...THRESHOLDS.map((m) => rows[m].perType[t] ?? 0))]));
  rows['best thr_* per type'] = { pooled: Math.max(...THRESHOLDS.map((m) => rows[m].pooled ?? 0)), perImage: null, flagged: null, perType: bestThr, s: 0 };
  header();
  for (const [n, r] of Object.entries(rows)) line(n, r);
}
for (const g of grid) {
  const r = await run(['ttt'], g.set);
  if (!types.length) {
    types = anomalousTypes(r.summary.perType);
    header();
  }
  const row = describe(r.summary.methods.ttt, Object.fromEntries(types.map((t) => [t, r.summary.perType[t]?.ttt?.pooled?.f1 ?? null])), r.s);
  if (v.baselines) (row as (typeof rows)[string]).atLeastBestThr = types.filter((t) => (row.perType[t] ?? 0) >= bestThr[t]).length;
  rows[g.name] = row;
  images[g.name] = keep(r.images, 'ttt');
  line(g.name, row);
  if (v.json) writeFileSync(v.json, JSON.stringify({ adapter: adapterName, maps: v.maps, half: v.half ?? null, seed: Number(v.seed), limit: v.limit ?? null, grid, rows, images }));
}
process.exit(0);
