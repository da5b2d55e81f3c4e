import { readFileSync } from 'node:fs';
import { nodeGpu, loadShaders } from '../src/gpu/node.ts';
import { Gpu } from '../src/core/gpu.ts';
import { kernels, imageGroups } from '../src/core/kernels.ts';
const { gpu: g0 } = await nodeGpu();
const gpu = new Gpu(g0.device, { ...loadShaders(), fb_old: readFileSync('/tmp/exp/fb_old.wgsl', 'utf8') });
gpu.enableProfiling();
const W = 1024, H = 1024, planes = 2;
const src = gpu.upload(new Float32Array(W * H * planes).map(() => Math.random()));
const dst = gpu.alloc(W * H * planes);
const taps = gpu.upload(new Float32Array(25).fill(1 / 25));
const p = { width: W, height: H, planes, radius: 12, outChannel: 0, pad0: 0, pad1: 0, pad2: 0 };
const variants = [
  ['oldH', { ...kernels.blurH, name: 'oldH', shaders: ['fb_old'] }, imageGroups(W, H, planes)],
  ['newH', kernels.blurH, imageGroups(W, H / 4, planes)],
  ['oldV', { ...kernels.blurV, name: 'oldV', shaders: ['fb_old'] }, imageGroups(W, H, planes)],
  ['newV', kernels.blurV, imageGroups(W, H / 4, planes)],
] as const;
const res: Record<string, number[]> = {};
for (let r = 0; r < 7; r++) for (const [name, spec, groups] of variants) {
  gpu.run(spec as any, p, { src, dst, taps }, groups as any);
  await gpu.sync();
  const prof = await gpu.takeProfile();
  (res[name] ??= []).push([...prof.values()][0]);
}
for (const [k, t] of Object.entries(res)) console.log(k, t.sort((a, b) => a - b)[3].toFixed(2));
process.exit(0);
