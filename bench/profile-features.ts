// Where the default extractor's time goes on the host path, one 256x256 image (or [size]): GPU time per
// kernel (timestamp queries) of the network and the local means, and wall time of the whole host extraction
// (network, local means, read-back of the coarse means) and of the channel moments through the resampling; medians of 7 runs after 3 warm-up runs.
// Usage: npx tsx bench/profile-features.ts [size]
import { nodeGpu } from '../src/gpu/node.ts';
import { chooseExtractor } from '../src/core/features/index.ts';
import { coarseMoments } from '../src/core/coarseFeatures.ts';
import { resolveOptions } from '../src/core/options.ts';
import { registerMobileNet } from '../src/models/mobilenet.ts';
import { syntheticSample } from '../src/synthetic.ts';
import { median } from '../src/cli/benchmarks/ttt.ts';
const { gpu } = await nodeGpu();
const profiling = gpu.enableProfiling();
registerMobileNet();
const size = Number(process.argv[2] ?? 256);
const extractor = chooseExtractor(resolveOptions({ 'features.extractor': 'mobilenetv2' }));
const s = syntheticSample({ width: size, height: size, seed: 42, defects: 3, mapStride: 1 });
const wall: Record<string, number[]> = {};
const acc = new Map<string, number[]>();
for (let k = 0; k < 10; k++) {
  const t0 = performance.now();
  const f = await extractor.extractHost!(gpu, s.image);
  const t1 = performance.now();
  coarseMoments(f);
  const t2 = performance.now();
  if (k < 3) { if (profiling) await gpu.takeProfile(); continue; }
  (wall.extractHost ??= []).push(t1 - t0);
  (wall.moments ??= []).push(t2 - t1);
  if (profiling) for (const [a, b] of await gpu.takeProfile()) { const l = acc.get(a) ?? []; l.push(b); acc.set(a, l); }
}
console.log(JSON.stringify(Object.fromEntries(Object.entries(wall).map(([a, b]) => [a, +median(b).toFixed(1)]))));
let total = 0;
for (const [k, v] of [...acc].sort((a, b) => median(b[1]) - median(a[1]))) { total += median(v); console.log(k.padEnd(32), median(v).toFixed(2)); }
console.log('GPU total'.padEnd(32), total.toFixed(2));
process.exit(0);
