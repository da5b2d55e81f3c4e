// Why connected components run on the CPU: the CPU pass over a read-back mask against the cost of one
// full-image GPU pass (a GPU labelling needs many such passes: label propagation with pointer jumping
// takes O(log d) to O(d) passes for regions of diameter d, plus a convergence read-back per round).
// Usage: npx tsx bench/regions.ts [size ...]

import { nodeGpu } from '../src/gpu/node.ts';
import { readMask, thresholdMask } from '../src/core/binarize.ts';
import { connectedComponents } from '../src/core/regions.ts';
import { syntheticSample } from '../src/synthetic.ts';
import { median } from '../src/cli/benchmarks/ttt.ts';

const { gpu, adapterName } = await nodeGpu();
gpu.enableProfiling();
const sizes = process.argv.slice(2).map(Number);
console.log(`adapter: ${adapterName}\n`);
console.log('| size | GPU pass (ms) | mask read-back (ms) | CPU components (ms) | regions |');
console.log('|---|---:|---:|---:|---:|');
for (const size of sizes.length ? sizes : [256, 1024]) {
  const s = syntheticSample({ width: size, height: size, seed: 5, defects: 6 });
  const n = size * size;
  const scores = s.scoreMap.data;
  const map = gpu.upload(scores);
  const pass: number[] = [];
  const readback: number[] = [];
  const cpu: number[] = [];
  let regions = 0;
  for (let r = 0; r < 21; r++) {
    const mask = thresholdMask(gpu, map, n, 0.5);
    await gpu.sync();
    pass.push([...(await gpu.takeProfile()).values()][0]);
    const t0 = performance.now();
    const host = await readMask(gpu, mask, n);
    const t1 = performance.now();
    regions = connectedComponents(host, size, size, scores, 8).length;
    cpu.push(performance.now() - t1);
    readback.push(t1 - t0);
    gpu.release(mask);
  }
  console.log(`| ${size}² | ${median(pass).toFixed(2)} | ${median(readback).toFixed(2)} | ${median(cpu).toFixed(2)} | ${regions} |`);
}
process.exit(0);
