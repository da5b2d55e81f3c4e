// Memory held per loaded built-in scorer, as the service's scorer cache holds them (src/processing/scorers.ts):
// `count` banks of the default size (ResNet-50 stage2 + stage3, 1536 channels, coresetRows patches, random
// values), each encoded, decoded and loaded as a job loads it, its MemoryBank then dropped and the scorer
// kept. Reports after each load (after a full GC): the process RSS (lavapipe's device memory is host memory,
// so RSS counts the GPU buffers too), the JS array buffers (host copies), and the scorer's own count of device
// bytes where it has one, and the wall time of decodeBank + load (to the GPU's finish); then the RSS
// increment of each load after the first (the first also holds the pipelines and reusable temporaries)
// and their median.
// Usage: npx tsx --expose-gc bench/scorer-memory.ts [count] [patches]
import { nodeGpu } from '../src/gpu/node.ts';
import { BANK_VERSION, decodeBank, encodeBank, type MemoryBank } from '../src/core/patchcore/bank.ts';
import { backboneGraph, PATCHCORE_DEFAULTS, PatchCoreScorer } from '../src/core/patchcore/patchcore.ts';
import { pcgHash } from '../src/core/rng.ts';
import { registerResnet50 } from '../src/models/resnet50.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (npx tsx --expose-gc bench/scorer-memory.ts)');
const count = Number(process.argv[2] ?? 4);
const patches = Number(process.argv[3] ?? PATCHCORE_DEFAULTS.coresetRows);
const { gpu } = await nodeGpu();
registerResnet50();
const layers = ['stage2', 'stage3'];
const graph = await backboneGraph('resnet50', layers);
const channels = [...graph.outputs.values()].reduce((a, t) => a + graph.channels[t], 0);
const bytes = encodeBank({
  header: {
    ...PATCHCORE_DEFAULTS, version: BANK_VERSION, backbone: 'resnet50', weights: graph.source, layers, patches, channels,
    images: 1, sourcePatches: patches, coresetRows: patches, geometryScales: [], rgbChannels: channels, geometryChannels: 0, normalization: null,
  },
  features: Float32Array.from({ length: patches * channels }, (_, i) => (pcgHash(i) / 4294967296) * 4),
} satisfies MemoryBank);
const mb = (b: number) => (b / 1e6).toFixed(1);
const snapshot = async () => {
  await gpu.sync();
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, arrayBuffers: m.arrayBuffers };
};
const base = await snapshot();
console.log(`bank ${patches} x ${channels} (${mb(patches * channels * 4)} MB of features); before any load: rss ${mb(base.rss)} MB, arrayBuffers ${mb(base.arrayBuffers)} MB`);
const kept: PatchCoreScorer[] = [];
const rows: { rss: number; arrayBuffers: number }[] = [];
for (let k = 1; k <= count; k++) {
  const t0 = performance.now();
  const scorer = await PatchCoreScorer.load(gpu, decodeBank(bytes, 'bench bank'));
  await gpu.sync();
  const ms = performance.now() - t0;
  kept.push(scorer);
  const s = await snapshot();
  rows.push(s);
  const device = (scorer as unknown as { deviceBytes?: number }).deviceBytes;
  console.log(`after load ${k} (${scorer.search}, ${ms.toFixed(0)} ms decode + load): rss ${mb(s.rss)} MB (+${mb(s.rss - base.rss)}), arrayBuffers ${mb(s.arrayBuffers)} MB (+${mb(s.arrayBuffers - base.arrayBuffers)})${device === undefined ? '' : `, device bytes of this scorer ${mb(device)} MB`}`);
}
if (count > 1) {
  // Each load's increment; their median (the allocator may reuse the freed pages of a previous load's
  // temporaries for one load: a single small step, which the median leaves out).
  const steps = rows.slice(1).map((r, k) => r.rss - rows[k].rss);
  const med = [...steps].sort((a, b) => a - b)[Math.floor((steps.length - 1) / 2)];
  const host = (rows[count - 1].arrayBuffers - rows[0].arrayBuffers) / (count - 1);
  console.log(`rss increments per load 2..${count}: ${steps.map(mb).join(', ')} MB; median ${mb(med)} MB per cached scorer; host arrayBuffers ${mb(host)} MB per scorer`);
}
for (const s of kept) s.release();
