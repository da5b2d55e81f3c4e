import { nodeGpu } from '../src/gpu/node.ts';
import { kernels, groupsFor } from '../src/core/kernels.ts';
const { gpu } = await nodeGpu();
gpu.enableProfiling();
const pixels = 1 << 20, C = 25;
const feat = gpu.upload(new Float32Array(pixels * C).map((_, i) => (i % 7) - 3));
const model = gpu.upload(new Float32Array(C + 1).map((_, i) => (i % 3) - 1));
const decision = gpu.alloc(pixels); const mask = gpu.alloc(pixels / 4);
const variants = [1, 4, 8, 32].map((w) => ({ w, spec: { ...kernels.predictVec4, constants: { WORDS: w } } }));
const res: Record<number, number[]> = {};
for (let r = 0; r < 9; r++) for (const v of variants) {
  gpu.run(v.spec, { pixels, channels: C, chunkChannels: C, channelOffset: 0, first: 1, last: 1, pad0: 0, pad1: 0 }, { model, chunk: feat, decision, mask }, groupsFor(pixels / 4, 256 * v.w));
  await gpu.sync();
  const p = await gpu.takeProfile();
  (res[v.w] ??= []).push(p.get('classifier.predictVec4')!);
}
for (const [w, t] of Object.entries(res)) console.log('WORDS', w, t.sort((a, b) => a - b)[4].toFixed(2));
process.exit(0);
