// MobileNetV2 forward (our WGSL path against TensorFlow.js CPU, side by side) and PatchCore scoring.
//
//   npx tsx bench/features.ts [--sizes 224,256,512] [--runs 10] [--bank 10000] [--score-backbone resnet50] [--score-layers a,b] [--json]

import { parseArgs } from 'node:util';
import { benchFeatures } from '../src/cli/benchmarks/mobilenet.ts';
import { benchScore } from '../src/cli/benchmarks/score.ts';
import type { Backbone } from '../src/core/patchcore/bank.ts';
import { nodeGpu } from '../src/gpu/node.ts';

const { values: v } = parseArgs({ options: { sizes: { type: 'string' }, runs: { type: 'string' }, bank: { type: 'string' }, 'score-layers': { type: 'string' }, 'score-backbone': { type: 'string' }, json: { type: 'boolean' } } });
const sizes = (v.sizes ?? '224,256,512').split(',').map(Number);
const runs = Number(v.runs ?? 10);
const { adapterName } = await nodeGpu();
const features = await benchFeatures(sizes, runs);
const score = await benchScore(Number(v.bank ?? 10_000), 256, runs, (v['score-backbone'] ?? 'resnet50') as Backbone, v['score-layers']?.split(','));
if (v.json) {
  console.log(JSON.stringify({ adapter: adapterName, runs, features, score }));
} else {
  console.log(`adapter: ${adapterName}; medians of ${runs} runs after warm-up`);
  console.log('size      WGSL ms   tfjs-CPU ms   speed-up   extractor ms');
  for (const f of features) {
    const tfjs = f.tfjsMs === null ? `${'-'.padStart(13)} ${'-'.padStart(9)} ` : `${f.tfjsMs.toFixed(1).padStart(13)} ${(f.tfjsMs / f.gpuMs).toFixed(1).padStart(9)}x`;
    console.log(`${`${f.size}x${f.size}`.padEnd(9)} ${f.gpuMs.toFixed(1).padStart(7)} ${tfjs} ${f.extractMs.toFixed(1).padStart(14)}`);
  }
  console.log(`score: ${score.size}x${score.size} image (${score.patches} patches x ${score.channels} channels, ${score.layers.join('+')}) against ${score.bankSize} bank patches: ${score.gpuMs.toFixed(1)} ms (${score.search}), ${score.gpuExactMs.toFixed(1)} ms exact, tfjs-CPU ${score.tfjsMs ?? '-'} ms`);
}
process.exit(0);
