// Converts the ImageNet ResNet-50 v2 weights (.npy per tensor, /work/shared/models/resnet50v2-imagenet, see
// its README) into the one file the project ships: models/resnet50v2-imagenet/weights.bin. Only what the
// network needs up to the end of stage 3 is kept, plus stage 4's first batch norm (it activates stage 3's
// output): not the final batch norm (batchnorm2) nor the classifier bias (dense0). Convolution kernels are
// stored as float16 (ONNX layout [cout][cin][kh][kw], unchanged), batch norms raw as float32.
//
//   npx tsx scripts/convert-resnet50.ts [../shared/models/resnet50v2-imagenet/weights] [models/resnet50v2-imagenet/weights.bin]

import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { encodeTensorFile, type StoredType } from '../src/core/features/resnet/weights.ts';

const here = dirname(new URL(import.meta.url).pathname);
const src = resolve(process.argv[2] ?? join(here, '..', '..', 'shared', 'models', 'resnet50v2-imagenet', 'weights'));
const dst = resolve(process.argv[3] ?? join(here, '..', 'models', 'resnet50v2-imagenet', 'weights.bin'));

/** A float32 C-order .npy file. */
export function readNpy(path: string): { shape: number[]; values: Float32Array } {
  const b = readFileSync(path);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = b[6];
  const headLen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + headLen);
  if (!/'descr':\s*'<f4'/.test(header) || !/'fortran_order':\s*False/.test(header)) throw new Error(`${path}: expected little-endian float32 in C order: ${header}`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)![1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const n = shape.reduce((a, c) => a * c, 1);
  const data = b.subarray(start + headLen);
  if (data.length !== 4 * n) throw new Error(`${path}: ${data.length} data bytes for shape ${shape}`);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = data.readFloatLE(4 * i);
  return { shape, values };
}

const wanted = (name: string): boolean =>
  /^resnetv24_(batchnorm[01]|conv0|stage[123]_(batchnorm|conv)\d+|stage4_batchnorm0)_(weight|gamma|beta|running_mean|running_var)$/.test(name);

/**
 * The .npy tensors of `from` that `wanted` keeps, convolution kernels (`*_weight`) as float16 and the rest
 * as float32, written as one tensor file to `to` (the shipped weights' format, weights.ts).
 */
export function convertNpyFolder(from: string, to: string, wanted: (name: string) => boolean, description: string): void {
  const names = readdirSync(from).filter((f) => f.endsWith('.npy')).map((f) => f.slice(0, -4)).filter(wanted).sort();
  const tensors = names.map((name) => {
    const { shape, values } = readNpy(join(from, `${name}.npy`));
    const dtype: StoredType = name.endsWith('_weight') ? 'float16' : 'float32';
    return { name, shape, dtype, values };
  });
  const file = encodeTensorFile(description, tensors);
  mkdirSync(dirname(to), { recursive: true });
  writeFileSync(to, file);
  const params = tensors.reduce((a, t) => a + t.values.length, 0);
  console.log(`${tensors.length} tensors, ${params} values, ${file.length} bytes -> ${to}`);
}

const main = (): void =>
  convertNpyFolder(src, dst, wanted, 'ImageNet ResNet-50 v2 (ONNX Model Zoo resnet50-v2-7, GluonCV) up to stage 3, float16 convolutions');

if (process.argv[1] && resolve(process.argv[1]) === resolve(here, 'convert-resnet50.ts')) main();
