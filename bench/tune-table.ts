// Tables from saved per-image results: the `--json` files of bench/tune.ts (one configuration's images may
// come from several files, e.g. a run on half a and one on half b, which together are the whole test set)
// and the report.json of a `ttt eval` run (its thr_*, oracle and ttt rows, e.g. the full table with
// today's defaults). Per method: pooled F1 per defect type and over all, precision, recall, per-image F1,
// defect-free images flagged, and how many types reach the best thr_* of that type.
//
//   npx tsx bench/tune-table.ts --report RUN/report.json --runs a.json,b.json [--half a|b] [--seed 0] [--configs 'n1;n2']
//
// --half keeps one seeded half (the same split as `ttt eval --half`); without it every image. The oracle
// row from a report.json keeps the threshold that run chose on its own images (on a half: the whole set's).

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { addConfusion, meanMetrics, pixelMetrics, type Confusion } from '../src/core/metrics.ts';
import { testHalf } from '../src/eval/dataset.ts';

type Img = { id: string; type: string; anomalous: boolean; c: [number, number, number, number] };
const { values: v } = parseArgs({
  options: {
    report: { type: 'string' },
    runs: { type: 'string' },
    half: { type: 'string' },
    seed: { type: 'string', default: '0' },
    configs: { type: 'string' },
    'report-methods': { type: 'string', default: 'thr_global_3sigma,thr_global_1sigma,thr_pixel_3sigma,oracle,ttt' },
  },
});
const seed = Number(v.seed);
const keep = (id: string) => v.half === undefined || testHalf(id, seed) === v.half;
const methods = new Map<string, Map<string, Img>>();
const add = (name: string, list: Img[]) => {
  const m = methods.get(name) ?? new Map<string, Img>();
  for (const x of list) if (keep(x.id)) m.set(x.id, x);
  methods.set(name, m);
};
if (v.report) {
  const r = JSON.parse(readFileSync(v.report, 'utf8')) as { imageResults: { id: string; type: string; anomalous: boolean; methods: Record<string, Confusion> }[] };
  for (const m of v['report-methods']!.split(',')) {
    const list = r.imageResults.filter((x) => x.methods[m]).map((x) => ({ id: x.id, type: x.type, anomalous: x.anomalous, c: [x.methods[m].tp, x.methods[m].fp, x.methods[m].fn, x.methods[m].tn] as Img['c'] }));
    if (list.length) add(m === 'ttt' ? 'ttt (report)' : m, list);
  }
}
for (const file of v.runs ? v.runs.split(',') : []) {
  const j = JSON.parse(readFileSync(file, 'utf8')) as { images: Record<string, Img[]> };
  for (const [name, list] of Object.entries(j.images)) add(name, list);
}
const wanted = v.configs ? v.configs.split(';') : [...methods.keys()];
for (const n of wanted) if (!methods.has(n)) throw new Error(`no results named ${JSON.stringify(n)} (have: ${[...methods.keys()].join('; ')})`);
const conf = (x: Img): Confusion => ({ tp: x.c[0], fp: x.c[1], fn: x.c[2], tn: x.c[3] });
const zero: Confusion = { tp: 0, fp: 0, fn: 0, tn: 0 };
const reference = methods.get('thr_global_3sigma') ?? methods.get(wanted[0])!;
const types = [...new Set([...reference.values()].filter((x) => x.anomalous).map((x) => x.type))].sort();
const stats = (m: Map<string, Img>) => {
  const all = [...m.values()];
  const anomalous = all.filter((x) => x.anomalous);
  const nominal = all.filter((x) => !x.anomalous);
  const pooled = pixelMetrics(anomalous.map(conf).reduce(addConfusion, zero));
  const perType = Object.fromEntries(types.map((t) => [t, pixelMetrics(anomalous.filter((x) => x.type === t).map(conf).reduce(addConfusion, zero)).f1]));
  const perImage = meanMetrics(anomalous.map((x) => pixelMetrics(conf(x)))).f1;
  const flagged = nominal.filter((x) => x.c[0] + x.c[1] > 0).length;
  return { pooled, perType, perImage, flagged, nominal: nominal.length, anomalous: anomalous.length };
};
const THR = ['thr_global_3sigma', 'thr_global_1sigma', 'thr_pixel_3sigma'].filter((m) => methods.has(m));
const s = Object.fromEntries([...new Set([...THR, ...wanted])].map((n) => [n, stats(methods.get(n) ?? new Map())]));
const best = Object.fromEntries(types.map((t) => [t, Math.max(...THR.map((m) => s[m].perType[t]))]));
const bestPooled = Math.max(...THR.map((m) => s[m].pooled.f1));
const oracle = s.oracle?.pooled.f1;
const f = (x: number) => x.toFixed(3);
console.log(`half ${v.half ?? 'all'} (seed ${seed}); images per method: anomalous / defect-free`);
console.log(`| method | ${types.join(' | ')} | pooled F1 | P | R | per-image F1 | good flagged | types >= best thr | / best thr | / oracle | images |`);
console.log(`|---|${types.map(() => '---:').join('|')}|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
if (THR.length) console.log(`| best thr_* per type | ${types.map((t) => f(best[t])).join(' | ')} | ${f(bestPooled)} | | | | | | | | |`);
for (const n of wanted) {
  const x = s[n];
  const isThr = THR.includes(n);
  console.log(
    `| ${n} | ${types.map((t) => f(x.perType[t])).join(' | ')} | ${f(x.pooled.f1)} | ${f(x.pooled.precision)} | ${f(x.pooled.recall)} | ${f(x.perImage)} | ${x.nominal ? `${x.flagged}/${x.nominal} (${((100 * x.flagged) / x.nominal).toFixed(1)}%)` : '-'} | ${isThr || !THR.length ? '' : types.filter((t) => x.perType[t] >= best[t]).length} | ${THR.length ? (x.pooled.f1 / bestPooled).toFixed(2) + 'x' : ''} | ${oracle ? (x.pooled.f1 / oracle).toFixed(2) + 'x' : ''} | ${x.anomalous} / ${x.nominal} |`,
  );
}
