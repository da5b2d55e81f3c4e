// Where one built-in scorer score() goes (ResNet-50 stage2 + stage3, a random bank of the default size): GPU
// time per kernel (timestamp queries), split into the network forward and the rest (local means,
// resampling, copies, projection, search, re-rank, map), and the wall time of the whole score() and of
// the forward alone; medians of `runs` runs after 2 warm-up runs.
// Usage: npx tsx bench/profile-score.ts [size] [runs] [bank]
import { nodeGpu } from '../src/gpu/node.ts';
import type { KernelSpec } from '../src/core/gpu.ts';
import { preprocessImage, runNetwork } from '../src/core/features/mobilenet/forward.ts';
import { BANK_VERSION, type MemoryBank } from '../src/core/patchcore/bank.ts';
import { backboneGraph, PATCHCORE_DEFAULTS, PatchCoreScorer } from '../src/core/patchcore/patchcore.ts';
import { pcgHash } from '../src/core/rng.ts';
import { registerResnet50 } from '../src/models/resnet50.ts';
import { benchImage } from '../src/cli/benchmarks/mobilenet.ts';
import { median } from '../src/cli/benchmarks/ttt.ts';

const { gpu } = await nodeGpu();
const profiling = gpu.enableProfiling();
registerResnet50();
const size = Number(process.argv[2] ?? 256);
const runs = Number(process.argv[3] ?? 5);
const bankSize = Number(process.argv[4] ?? PATCHCORE_DEFAULTS.coresetRows);
const layers = ['stage2', 'stage3'];
const graph = await backboneGraph('resnet50', layers);
const channels = [...graph.outputs.values()].reduce((a, t) => a + graph.channels[t], 0);
const features = Float32Array.from({ length: bankSize * channels }, (_, i) => (pcgHash(i) / 4294967296) * 4);
const bank: MemoryBank = {
  header: {
    ...PATCHCORE_DEFAULTS, version: BANK_VERSION, backbone: 'resnet50', weights: graph.source, layers, size, patches: bankSize, channels,
    images: 1, sourcePatches: bankSize, coresetRows: bankSize, geometryScales: [], rgbChannels: channels, geometryChannels: 0, normalization: null,
  },
  features,
};
const scorer = await PatchCoreScorer.load(gpu, bank);
const image = benchImage(size, size);

// Network kernels: the dispatches of runNetwork (counted by running it alone once).
let names: string[] = [];
const run = gpu.run.bind(gpu);
gpu.run = ((spec: KernelSpec, ...rest: Parameters<typeof run> extends [unknown, ...infer R] ? R : never) => {
  const k = names.length;
  names.push(spec.name);
  return run({ ...spec, name: `${k}|${spec.name}` }, ...rest);
}) as typeof gpu.run;
names = [];
{
  const input = preprocessImage(gpu, image, image, undefined, graph.input);
  const outs = runNetwork(gpu, graph, input);
  await gpu.sync();
  gpu.release(input.data, ...[...outs.values()].map((t) => t.data));
}
const networkDispatches = names.length;
await gpu.takeProfile();

const wall: number[] = [];
const fwdWall: number[] = [];
const cpu: number[] = [];
const gpuNet: number[] = [];
const gpuRest: number[] = [];
const perKernel = new Map<string, number[]>();
for (let k = 0; k < runs + 2; k++) {
  names = [];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await scorer.score(image);
  const t1 = performance.now();
  const c1 = process.cpuUsage(c0);
  const prof = profiling ? await gpu.takeProfile() : new Map<string, number>();
  // The forward alone, wall.
  const t2 = performance.now();
  const input = preprocessImage(gpu, image, image, undefined, graph.input);
  const outs = runNetwork(gpu, graph, input);
  await gpu.sync();
  const t3 = performance.now();
  gpu.release(input.data, ...[...outs.values()].map((t) => t.data));
  if (profiling) await gpu.takeProfile();
  if (k < 2) continue;
  wall.push(t1 - t0);
  fwdWall.push(t3 - t2);
  cpu.push((c1.user + c1.system) / 1000);
  let net = 0;
  let rest = 0;
  const kernels = new Map<string, number>();
  for (const [name, ms] of prof) {
    const [idx, kernel] = name.split('|');
    if (Number(idx) < networkDispatches) net += ms;
    else {
      rest += ms;
      kernels.set(kernel, (kernels.get(kernel) ?? 0) + ms);
    }
  }
  gpuNet.push(net);
  gpuRest.push(rest);
  for (const [s, ms] of kernels) perKernel.set(s, [...(perKernel.get(s) ?? []), ms]);
}
const r = (v: number[]) => +median(v).toFixed(1);
console.log(JSON.stringify({
  size, runs, bankSize, search: scorer.search, scoreWallMs: r(wall), scoreCpuMs: r(cpu), forwardWallMs: r(fwdWall),
  gpuNetworkMs: r(gpuNet), gpuRestMs: r(gpuRest), gpuRestPerKernel: Object.fromEntries([...perKernel].map(([k, v]) => [k, r(v)])), timestamps: profiling,
}, null, 1));
scorer.release();
