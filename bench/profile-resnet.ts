// Where the ResNet-50 v2 forward's time goes, one size x size image (default 256): GPU time per dispatch
// (timestamp queries) summed per stage (stem = preprocessing + conv0 + max pool) and per kernel, and the wall
// time of the whole forward (preprocessing, network to stage 3 activated, synced) and the process CPU time
// over it (lavapipe's threads included); medians of 5 runs after
// 2 warm-up runs.
// Usage: npx tsx bench/profile-resnet.ts [size] [runs]
import { nodeGpu } from '../src/gpu/node.ts';
import { preprocessImage, runNetwork } from '../src/core/features/mobilenet/forward.ts';
import type { KernelSpec } from '../src/core/gpu.ts';
import { DEFAULT_RESNET_LAYERS } from '../src/core/features/resnet/graph.ts';
import { resnet50Graph } from '../src/core/features/resnet/registry.ts';
import { registerResnet50 } from '../src/models/resnet50.ts';
import { benchImage } from '../src/cli/benchmarks/mobilenet.ts';
import { median } from '../src/cli/benchmarks/ttt.ts';

const { gpu } = await nodeGpu();
const profiling = gpu.enableProfiling();
registerResnet50();
const size = Number(process.argv[2] ?? 256);
const runs = Number(process.argv[3] ?? 5);
const graph = await resnet50Graph(DEFAULT_RESNET_LAYERS);
const image = benchImage(size, size);

// Label every dispatch with the stage of the op it belongs to (runNetwork dispatches in op order).
const stageOf = (name: string) => /stage(\d)/.exec(name)?.[0] ?? 'stem';
let labels: string[] = [];
const run = gpu.run.bind(gpu);
gpu.run = ((spec: KernelSpec, ...rest: Parameters<typeof run> extends [unknown, ...infer R] ? R : never) => {
  const k = labels.length;
  labels.push(spec.name);
  return run({ ...spec, name: `${k}|${spec.name}` }, ...rest);
}) as typeof gpu.run;
const opOfDispatch: string[] = ['stem'];
for (const op of graph.ops) {
  const windowed = op.kind === 'conv' && !(op.kh === 1 && op.kw === 1 && op.sh === 1 && op.sw === 1);
  // Stage N's activated output is named by stage N+1's first batch norm (stage4's counts with stage 3).
  for (let i = 0; i < (windowed ? 2 : 1); i++) opOfDispatch.push(/stage4/.test(op.name) ? 'stage3' : stageOf(op.name));
}

const wall: number[] = [];
const cpu: number[] = [];
const perStage = new Map<string, number[]>();
const perKernel = new Map<string, number[]>();
for (let k = 0; k < runs + 2; k++) {
  labels = [];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const input = preprocessImage(gpu, image, image, undefined, graph.input);
  const outs = runNetwork(gpu, graph, input);
  await gpu.sync();
  const t1 = performance.now();
  const c1 = process.cpuUsage(c0);
  gpu.release(input.data, ...[...outs.values()].map((t) => t.data));
  const prof = profiling ? await gpu.takeProfile() : new Map<string, number>();
  if (k < 2) continue;
  wall.push(t1 - t0);
  cpu.push((c1.user + c1.system) / 1000);
  const stages = new Map<string, number>();
  const kernels = new Map<string, number>();
  for (const [name, ms] of prof) {
    const [idx, kernel] = name.split('|');
    const stage = opOfDispatch[Number(idx)] ?? '?';
    stages.set(stage, (stages.get(stage) ?? 0) + ms);
    kernels.set(kernel, (kernels.get(kernel) ?? 0) + ms);
  }
  for (const [s, ms] of stages) perStage.set(s, [...(perStage.get(s) ?? []), ms]);
  for (const [s, ms] of kernels) perKernel.set(s, [...(perKernel.get(s) ?? []), ms]);
}
const fmt = (m: Map<string, number[]>) => Object.fromEntries([...m].map(([k, v]) => [k, +median(v).toFixed(1)]));
console.log(JSON.stringify({ size, runs, wallMs: +median(wall).toFixed(1), cpuMs: +median(cpu).toFixed(1), gpuMsPerStage: fmt(perStage), gpuMsPerKernel: fmt(perKernel), timestamps: profiling }, null, 1));
