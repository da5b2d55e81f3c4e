// `ttt bank build`: a PatchCore memory bank (built-in scorer) from a folder of nominal images.

import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { TttError } from '../core/errors.ts';
import { encodeBank } from '../core/patchcore/bank.ts';
import { buildBank, PATCHCORE_DEFAULTS, type PatchCoreConfig } from '../core/patchcore/patchcore.ts';
import type { ImageTensor } from '../core/types.ts';
import { nodeGpu } from '../gpu/node.ts';
import { intArg, parse } from './args.ts';
import { readInputFile, writeFileAtomic } from '../io/files.ts';
import { decodeImage } from '../io/image.ts';

const HELP = `usage: ttt bank build --images DIR --out bank.bin [options]

Builds a PatchCore memory bank from the nominal (defect-free) images in DIR with the pretrained
MobileNetV2 (TTT_MOBILENET_MODEL=path/model.json selects another layers model).

  --images DIR     folder of nominal images (png, jpg, tif, bmp, webp)
  --out FILE       the bank file to write
  --size N         working size: every image is resized so that its longest side is N (default ${PATCHCORE_DEFAULTS.size})
  --coreset R      share of the patches the greedy coreset keeps, in (0, 1] (default ${PATCHCORE_DEFAULTS.coresetRatio})
  --limit N        use at most N images, evenly spaced over the sorted file list
  --layers L       comma-separated network layers (default ${PATCHCORE_DEFAULTS.layers.join(',')})
  --stride N       working-size pixels per patch (default ${PATCHCORE_DEFAULTS.stride})
  --seed N         seed of the coreset's start and random projection (default 0)`;

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp', '.webp']);

/** The image files of a folder in name order, `limit` of them evenly spaced when given. */
export function listImages(dir: string, limit?: number): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
  } catch (e) {
    throw new TttError('NOT_FOUND', `${dir}: ${(e as Error).message}`);
  }
  if (names.length === 0) throw new TttError('INVALID_INPUT', `${dir} holds no images (${[...IMAGE_EXT].join(', ')})`);
  if (limit !== undefined && limit < names.length) names = Array.from({ length: limit }, (_, i) => names[Math.floor((i * names.length) / limit)]);
  return names.map((f) => join(dir, f));
}

export async function* readImages(paths: readonly string[]): AsyncGenerator<ImageTensor> {
  for (const p of paths) yield await decodeImage(await readInputFile(p, 'image'), p);
}

function ratioArg(value: string | undefined): number {
  if (value === undefined) return PATCHCORE_DEFAULTS.coresetRatio;
  const r = Number(value);
  if (!(r > 0 && r <= 1)) throw new TttError('INVALID_OPTION', `--coreset expects a share in (0, 1], got ${JSON.stringify(value)}`);
  return r;
}

export const command = {
  summary: 'build a PatchCore memory bank from nominal images (bank build --images DIR --out bank.bin)',
  async run(argv: string[]): Promise<void> {
    const [sub, ...rest] = argv;
    if (sub === '--help' || sub === '-h') {
      console.log(HELP);
      return;
    }
    if (sub !== 'build') throw new TttError('INVALID_OPTION', `unknown bank command ${JSON.stringify(sub ?? '')}\n\n${HELP}`);
    const v = parse(
      rest,
      {
        images: { type: 'string' }, out: { type: 'string' }, size: { type: 'string' }, coreset: { type: 'string' },
        limit: { type: 'string' }, layers: { type: 'string' }, stride: { type: 'string' }, seed: { type: 'string' },
      },
      HELP,
    );
    if (!v.images || !v.out) throw new TttError('INVALID_OPTION', `--images and --out are required\n\n${HELP}`);
    const config: PatchCoreConfig = {
      ...PATCHCORE_DEFAULTS,
      size: intArg('size', v.size, PATCHCORE_DEFAULTS.size, 32, 2048),
      coresetRatio: ratioArg(v.coreset),
      stride: intArg('stride', v.stride, PATCHCORE_DEFAULTS.stride, 1, 64),
      seed: intArg('seed', v.seed, 0, 0, 0x7fffffff),
      layers: v.layers ? v.layers.split(',').map((s) => s.trim()) : PATCHCORE_DEFAULTS.layers,
    };
    if (statSync(v.images, { throwIfNoEntry: false })?.isDirectory() !== true) throw new TttError('NOT_FOUND', `${v.images} is not a folder`);
    const paths = listImages(v.images, v.limit === undefined ? undefined : intArg('limit', v.limit, 0));
    const { gpu } = await nodeGpu();
    const t0 = performance.now();
    const bank = await buildBank(gpu, readImages(paths), config, {
      onImage: (n) => n % 20 === 0 && process.stderr.write(`bank: ${n}/${paths.length} images\n`),
      onCoreset: (n, total) => n % 2048 === 0 && process.stderr.write(`bank: coreset ${n}/${total}\n`),
    });
    await writeFileAtomic(v.out, encodeBank(bank));
    const { header } = bank;
    console.log(JSON.stringify({ out: v.out, images: header.images, patches: header.patches, sourcePatches: header.sourcePatches, channels: header.channels, seconds: +((performance.now() - t0) / 1000).toFixed(1) }));
  },
};
