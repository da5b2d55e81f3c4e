// What storing the ImageNet MobileNetV2's convolution kernels as float16 costs: the WGSL forward with the
// shipped weights file against the same forward with the float32 originals (.npy files under ../shared, read
// at measurement time), on real images (Magnetic Tile, ../shared), per default layer: max and mean absolute
// difference, and both relative to the float32 output's max / mean magnitude (as bench/resnet50-fp16.ts).
// Usage: npx tsx bench/mobilenetv2-fp16.ts [size=256] [image.jpg ...]   (default: one image of each test class)
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../scripts/convert-resnet50.ts';
import { DEFAULT_LAYERS } from '../src/core/features/mobilenet/extractor.ts';
import { preprocessImage, readTensor, runNetwork } from '../src/core/features/mobilenet/forward.ts';
import { buildGluonMobileNetGraph } from '../src/core/features/mobilenet/gluon.ts';
import type { DecodedTensor } from '../src/core/features/mobilenet/weights.ts';
import { decodeTensorFile } from '../src/core/features/resnet/weights.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { decodeImage } from '../src/io/image.ts';
import { readMobileNetV2File } from '../src/models/mobilenetv2.ts';

const SHARED = join(import.meta.dirname, '..', '..', 'shared');
const size = Number(process.argv[2] ?? 256);
const dataset = join(SHARED, 'datasets', 'magnetic-tile', 'test');
const images = process.argv.length > 3
  ? process.argv.slice(3)
  : readdirSync(dataset).sort().map((c) => join(dataset, c, readdirSync(join(dataset, c)).filter((f) => f.endsWith('.jpg')).sort()[0]));

const { bytes, what } = readMobileNetV2File();
const half = decodeTensorFile(bytes, what);
const npyDir = join(SHARED, 'models', 'mobilenetv2-imagenet', 'weights');
const full = new Map<string, DecodedTensor>();
for (const name of half.tensors.keys()) full.set(name, readNpy(join(npyDir, `${name}.npy`)));
const layers = [...DEFAULT_LAYERS];
const g16 = buildGluonMobileNetGraph(half, layers);
const g32 = buildGluonMobileNetGraph({ source: 'float32 .npy', tensors: full }, layers);
const { gpu } = await nodeGpu();

const forward = async (graph: typeof g16, image: Awaited<ReturnType<typeof decodeImage>>) => {
  const input = preprocessImage(gpu, image, { width: size, height: size }, undefined, graph.input);
  const outs = runNetwork(gpu, graph, input);
  const host = new Map<string, Float32Array>();
  for (const [k, t] of outs) host.set(k, await readTensor(gpu, t));
  gpu.release(input.data, ...[...outs.values()].map((t) => t.data));
  return host;
};

const rows: Record<string, string | number>[] = [];
for (const file of images) {
  const image = await decodeImage(readFileSync(file), file);
  const a = await forward(g16, image);
  const b = await forward(g32, image);
  for (const l of layers) {
    const x = a.get(l)!;
    const y = b.get(l)!;
    let maxAbs = 0, sumAbs = 0, maxRef = 0, sumRef = 0;
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i] - y[i]);
      maxAbs = Math.max(maxAbs, d);
      sumAbs += d;
      maxRef = Math.max(maxRef, Math.abs(y[i]));
      sumRef += Math.abs(y[i]);
    }
    rows.push({
      image: file.split('/').slice(-2).join('/'), layer: l, maxAbs: +maxAbs.toExponential(2), meanAbs: +(sumAbs / x.length).toExponential(2),
      maxRel: +(maxAbs / maxRef).toExponential(2), meanRel: +(sumAbs / sumRef).toExponential(2),
    });
  }
}
console.table(rows);
