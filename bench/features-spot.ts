// The synthetic dark spot (src/synthetic.ts, one dark blob, as `ttt synth`) segmented with each feature set:
// per-image F1 and the marked area over the spot's, per seed. The table of docs/results.md, Classifier
// features, "The synthetic dark spot".
//
//   nice -n 5 npx tsx bench/features-spot.ts [--size 128] [--seeds 1,2,3,4] [--variants a,b] [--set key=value ...]
//
// Variants are named by their sources: mobilenetv2, filterbank, resnet50 (the single extractors), or a
// '+'-joined list of features.sources (image+filterbank, filterbank+resnet50:stage1, ...); a trailing '~'
// turns features.groupNormalize off (image+filterbank~); a leading '+' makes a single source combined (+mobilenetv2:
// one group, weighed 1/sqrt(152)).

import { parseArgs } from 'node:util';
import { confusion, pixelMetrics } from '../src/core/metrics.ts';
import { parseAssignments, resolveOptions } from '../src/core/options.ts';
import { segment } from '../src/core/pipeline.ts';
import { syntheticSample } from '../src/synthetic.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { registerMobileNet } from '../src/models/mobilenet.ts';
import { registerResnet50 } from '../src/models/resnet50.ts';

const { values: v } = parseArgs({
  options: {
    size: { type: 'string', default: '128' },
    seeds: { type: 'string', default: '1,2,3,4' },
    variants: { type: 'string', default: 'mobilenetv2,filterbank,image,image+filterbank,image+filterbank~,filterbank+mobilenetv2,filterbank+mobilenetv2~,image+mobilenetv2,image+filterbank+mobilenetv2' },
    set: { type: 'string', multiple: true },
  },
});
const common = parseAssignments(v.set ?? []);
const overrides = (name: string): Record<string, unknown> => {
  const ungrouped = name.endsWith('~');
  const sources = ungrouped ? name.slice(0, -1) : name;
  if (['mobilenetv2', 'filterbank', 'resnet50'].includes(sources) && !ungrouped && !name.startsWith('+')) return { ...common, 'features.extractor': sources };
  return { ...common, 'features.extractor': 'combined', 'features.sources': sources.split('+').filter((x) => x).join(','), 'features.groupNormalize': !ungrouped };
};
const names = v.variants!.split(',');
for (const n of names) resolveOptions(overrides(n));
registerMobileNet();
registerResnet50();
const { gpu, adapterName } = await nodeGpu();
const size = Number(v.size);
const seeds = v.seeds!.split(',').map(Number);
console.log(`adapter: ${adapterName}; ${size}x${size}, one dark spot; F1 (marked area / spot area)\n`);
console.log(`| features | ${seeds.map((s) => `seed ${s}`).join(' | ')} |`);
console.log(`|---|${seeds.map(() => '---:').join('|')}|`);
const samples = seeds.map((seed) => syntheticSample({ width: size, height: size, seed, defects: 1 }));
for (const n of names) {
  const cells: string[] = [];
  for (const s of samples) {
    const r = await segment(gpu, s, resolveOptions(overrides(n)));
    const m = pixelMetrics(confusion(r.predMask, s.groundTruth));
    const area = s.groundTruth.reduce((a, b) => a + b, 0);
    cells.push(`${m.f1.toFixed(2)} (${(r.predMask.reduce((a, b) => a + b, 0) / area).toFixed(1)}x)`);
  }
  console.log(`| ${n} | ${cells.join(' | ')} |`);
}
process.exit(0);
