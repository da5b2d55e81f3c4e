// A grid over `ttt` option overrides on one dataset, every configuration through the same evaluation as
// `ttt eval` (pooled and per-image F1 over all defect types, defect-free images flagged), to choose the
// defaults. Reads maps from a folder (write them once with `ttt eval --save-maps DIR`).
//
//   npx tsx bench/tune.ts --dataset DIR --maps DIR --grid grid.json [--size 256] [--limit N]
//
// grid.json: a list of { "name": "...", "set": { "key": value, ... } } (keys as `--set`).

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { nodeGpu } from '../src/gpu/node.ts';
import { runEval } from '../src/eval/run.ts';
import { mapsFolder } from '../src/eval/scoreSource.ts';
import { registerMobileNet } from '../src/models/nsfwjs.ts';

const { values: v } = parseArgs({ options: { dataset: { type: 'string' }, maps: { type: 'string' }, grid: { type: 'string' }, size: { type: 'string' }, limit: { type: 'string' } } });
if (!v.dataset || !v.maps || !v.grid) throw new Error('--dataset, --maps and --grid are required');
const grid = JSON.parse(readFileSync(v.grid, 'utf8')) as { name: string; set: Record<string, unknown> }[];
registerMobileNet();
const { gpu } = await nodeGpu();
console.log('| configuration | pooled F1 | IoU | P | R | per-image F1 | good flagged | FP rate | s |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const g of grid) {
  const t0 = performance.now();
  const r = await runEval({
    gpu,
    dataset: v.dataset,
    source: mapsFolder(v.maps),
    methods: ['ttt'],
    size: v.size === undefined ? 256 : Number(v.size) || null,
    limit: v.limit === undefined ? undefined : Number(v.limit),
    seed: 0,
    tttOverrides: g.set,
  });
  const m = r.summary.methods.ttt;
  const f = (x: number | undefined) => (x ?? NaN).toFixed(3);
  console.log(
    `| ${g.name} | ${f(m.pooled?.f1)} | ${f(m.pooled?.iou)} | ${f(m.pooled?.precision)} | ${f(m.pooled?.recall)} | ${f(m.perImage?.f1)} | ${m.nominal ? (100 * m.nominal.flaggedImages).toFixed(1) + '%' : '-'} | ${m.nominal ? m.nominal.falsePositiveRate.toExponential(2) : '-'} | ${((performance.now() - t0) / 1000).toFixed(0)} |`,
  );
}
process.exit(0);
