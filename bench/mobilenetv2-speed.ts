// The two MobileNetV2s side by side in one process: the WGSL forward (preprocessing included, synced) and the
// whole mobilenetv2 extractor at the default layers, on a grey test texture, alternating A/B rounds; medians
// of the rounds' medians. The Keras topology ('same' padding, no expansion in block 0; the layers model of
// TTT_MOBILENET_MODEL when set, else Keras's MobileNetV2 with random weights from test/helpers: the timings
// do not depend on the weight values) against the shipped ImageNet one (GluonCV, symmetric padding, block 0
// expanded with t = 1).
//   nice -n 10 npx tsx bench/mobilenetv2-speed.ts [size=256] [rounds=3] [runs=10]
import { benchImage, timeNetwork } from '../src/cli/benchmarks/mobilenet.ts';
import { DEFAULT_LAYERS } from '../src/core/features/mobilenet/extractor.ts';
import { buildGluonMobileNetGraph } from '../src/core/features/mobilenet/gluon.ts';
import { buildGraph } from '../src/core/features/mobilenet/graph.ts';
import { decodeTensorFile } from '../src/core/features/resnet/weights.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { readMobileNetV2File } from '../src/models/mobilenetv2.ts';
import { loadLayersModelFiles, MODEL_ENV } from '../src/models/mobilenet.ts';
import { kerasMobileNetV2 } from '../test/helpers/kerasModel.ts';

const size = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 3);
const runs = Number(process.argv[4] ?? 10);
const { gpu, adapterName } = await nodeGpu();
const { bytes, what } = readMobileNetV2File();
const graphs = {
  keras: buildGraph(process.env[MODEL_ENV] ? loadLayersModelFiles(process.env[MODEL_ENV]) : kerasMobileNetV2(), DEFAULT_LAYERS),
  imagenet: buildGluonMobileNetGraph(decodeTensorFile(bytes, what), DEFAULT_LAYERS),
};
const image = benchImage(size, size);
const times: Record<string, { gpuMs: number[]; extractMs: number[] }> = { keras: { gpuMs: [], extractMs: [] }, imagenet: { gpuMs: [], extractMs: [] } };
for (let r = 0; r < rounds; r++) {
  for (const name of ['keras', 'imagenet'] as const) {
    const t = await timeNetwork(gpu, graphs[name], image, runs);
    times[name].gpuMs.push(t.gpuMs);
    times[name].extractMs.push(t.extractMs);
  }
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(`adapter: ${adapterName}; ${size}x${size}, ${rounds} rounds x ${runs} runs; keras: ${graphs.keras.source}`);
for (const [name, t] of Object.entries(times)) {
  console.log(`${name}: forward ${median(t.gpuMs).toFixed(1)} ms (rounds ${t.gpuMs.map((x) => x.toFixed(1)).join(', ')}), extractor ${median(t.extractMs).toFixed(1)} ms (rounds ${t.extractMs.map((x) => x.toFixed(1)).join(', ')})`);
}
