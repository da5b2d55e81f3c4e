// GPU time per kernel (timestamp queries) and wall time per stage of one segmentation, medians of 7 runs
// after 3 warm-up runs. Usage: npx tsx bench/profile.ts [size]
import { nodeGpu } from '../src/gpu/node.ts';
import { segment } from '../src/core/pipeline.ts';
import { resolveOptions } from '../src/core/options.ts';
import { syntheticSample } from '../src/synthetic.ts';
import { median } from '../src/cli/benchmarks/ttt.ts';
const { gpu } = await nodeGpu();
if (!gpu.enableProfiling()) throw new Error('this device has no timestamp queries');
const size = Number(process.argv[2] ?? 1024);
// The filterbank, as `ttt bench` times it (the network's features are timed on their own), on the GPU path
// (the kernels are what is profiled).
const options = resolveOptions({ 'features.extractor': 'filterbank', 'compute.stages': 'gpu' });
const s = syntheticSample({ width: size, height: size, seed: 42, defects: 3, mapStride: 1 });
for (let k = 0; k < 3; k++) { await segment(gpu, s, options); await gpu.takeProfile(); }
const acc = new Map<string, number[]>(); const tim: Record<string, number[]> = {};
for (let k = 0; k < 7; k++) {
  const r = await segment(gpu, s, options);
  for (const [a, b] of Object.entries(r.timings)) (tim[a] ??= []).push(b!);
  for (const [a, b] of await gpu.takeProfile()) { const l = acc.get(a) ?? []; l.push(b); acc.set(a, l); }
}
console.log(JSON.stringify(Object.fromEntries(Object.entries(tim).map(([a, b]) => [a, +median(b).toFixed(1)]))));
for (const [k, v] of [...acc].sort((a, b) => median(b[1]) - median(a[1]))) console.log(k.padEnd(32), median(v).toFixed(2));
process.exit(0);
