// `ttt bank build`: a PatchCore memory bank (built-in scorer) from a folder of nominal images, with their
// point clouds for a bank of 3-D features.

import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { TttError, withSubjectAsync } from '../core/errors.ts';
import { BACKBONES, BANK_MODALITIES, encodeBank, type Backbone, type BankModality } from '../core/patchcore/bank.ts';
import { autoPreselect, buildBank, PATCHCORE_DEFAULTS, scorerLayers, type BankSample, type PatchCoreConfig } from '../core/patchcore/patchcore.ts';
import type { ImageTensor } from '../core/types.ts';
import { POINT_CLOUD_EXTENSIONS, readPointCloud } from '../io/pointcloud.ts';
import { nodeGpu } from '../gpu/node.ts';
import { intArg, parse } from './args.ts';
import { findOneFile, readInputFile, writeFileAtomic } from '../io/files.ts';
import { decodeImage } from '../io/image.ts';

const HELP = `usage: ttt bank build --images DIR --out bank.bin [options]

Builds a PatchCore memory bank from the nominal (defect-free) images in DIR with a pretrained network
(ImageNet ResNet-50 v2 by default, TTT_RESNET50_WEIGHTS=file selects another weights file; or MobileNetV2,
TTT_MOBILENET_WEIGHTS=imagenet|file or TTT_MOBILENET_MODEL=path/model.json; the bank records which)
and/or the 3-D features of their organized point clouds.

  --images DIR     folder of nominal images (png, jpg, tif, bmp, webp); a folder of the MVTec 3D-AD layout
                   (e.g. bagel/train/good, holding rgb/ and xyz/) reads the images from DIR/rgb and their
                   point clouds from DIR/xyz
  --out FILE       the bank file to write
  --modality M     rgb (image features), 3d (3-D features of the point clouds) or both (concatenated, each
                   modality normalized to the same expected squared distance) (default rgb)
  --point-clouds DIR  the point clouds (<stem>.tiff, .tif or .npy, the image's stem) when not in DIR/xyz
  --geometry-scales L comma-separated window radii of the 3-D features (default ${PATCHCORE_DEFAULTS.geometryScales.join(',')})
  --size N         working size: every image is resized so that its longest side is N (default ${PATCHCORE_DEFAULTS.size})
  --coreset-rows N rows the greedy coreset keeps (default ${PATCHCORE_DEFAULTS.coresetRows}, or all patches when fewer)
  --coreset R      instead: share of the patches the greedy coreset keeps, in (0, 1]
  --preselect S    share of each image's patches its own greedy k-center pre-selection keeps before the
                   coreset over all images, in (0, 1] (1: the exact greedy coreset); auto (default): about
                   ${4}x the coreset's rows in all, 1 for small banks (modality rgb only)
  --limit N        use at most N images, evenly spaced over the sorted file list
  --backbone B     ${BACKBONES.join(' or ')} (default ${PATCHCORE_DEFAULTS.backbone})
  --layers L       comma-separated network layers (default: resnet50 ${scorerLayers('resnet50').join(',')}, mobilenetv2 ${scorerLayers('mobilenetv2').join(',')})
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

/** The point cloud of each image: <cloudDir>/<stem>.{tiff,tif,npy}, exactly one; every one must exist. */
export async function pointCloudPaths(images: readonly string[], cloudDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const image of images) out.push(await findOneFile(join(cloudDir, basename(image, extname(image))), POINT_CLOUD_EXTENSIONS, 'point cloud', image));
  return out;
}

async function* readSamples(paths: readonly string[], clouds: readonly string[] | null): AsyncGenerator<BankSample> {
  for (const [k, p] of paths.entries()) {
    const image = await decodeImage(await readInputFile(p, 'image'), p);
    const c = clouds?.[k];
    yield { image, pointCloud: c ? await readPointCloud(c) : null };
  }
}

/** --modality of the built-in scorer (default: the scorer's). */
export function modalityArg(value: string | undefined): BankModality {
  if (value === undefined) return PATCHCORE_DEFAULTS.modality;
  if (!(BANK_MODALITIES as readonly string[]).includes(value)) throw new TttError('INVALID_OPTION', `--modality expects ${BANK_MODALITIES.join(', ')}, got ${JSON.stringify(value)}`);
  return value as BankModality;
}

function scalesArg(value: string | undefined): number[] {
  if (value === undefined) return [...PATCHCORE_DEFAULTS.geometryScales];
  const scales = value.split(',').map((s) => Number(s.trim()));
  if (scales.length === 0 || scales.length > 4 || !scales.every((s) => s >= 1 && s <= 16)) {
    throw new TttError('INVALID_OPTION', `--geometry-scales expects 1 to 4 numbers in [1, 16], got ${JSON.stringify(value)}`);
  }
  return scales;
}

/** --backbone of the built-in scorer (default: the scorer's). */
export function backboneArg(value: string | undefined): Backbone {
  if (value === undefined) return PATCHCORE_DEFAULTS.backbone;
  if (!(BACKBONES as readonly string[]).includes(value)) throw new TttError('INVALID_OPTION', `--backbone expects ${BACKBONES.join(' or ')}, got ${JSON.stringify(value)}`);
  return value as Backbone;
}

/** --preselect: a share in (0, 1], or auto (autoPreselect for the number of images). */
export function preselectArg(value: string | undefined, images: number, config: PatchCoreConfig): number {
  if (value === undefined || value === 'auto') return autoPreselect(images, config);
  const r = Number(value);
  if (!(r > 0 && r <= 1)) throw new TttError('INVALID_OPTION', `--preselect expects a share in (0, 1] or auto, got ${JSON.stringify(value)}`);
  return r;
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
        modality: { type: 'string' }, 'point-clouds': { type: 'string' }, 'geometry-scales': { type: 'string' },
        backbone: { type: 'string' }, 'coreset-rows': { type: 'string' }, preselect: { type: 'string' },
      },
      HELP,
    );
    if (!v.images || !v.out) throw new TttError('INVALID_OPTION', `--images and --out are required\n\n${HELP}`);
    if (v.coreset !== undefined && v['coreset-rows'] !== undefined) throw new TttError('INVALID_OPTION', '--coreset and --coreset-rows are alternatives: give one');
    const backbone = backboneArg(v.backbone);
    const config: PatchCoreConfig = {
      ...PATCHCORE_DEFAULTS,
      size: intArg('size', v.size, PATCHCORE_DEFAULTS.size, 32, 2048),
      coresetRatio: ratioArg(v.coreset),
      coresetRows: v.coreset !== undefined ? 0 : intArg('coreset-rows', v['coreset-rows'], PATCHCORE_DEFAULTS.coresetRows, 1, 10_000_000),
      stride: intArg('stride', v.stride, PATCHCORE_DEFAULTS.stride, 1, 64),
      seed: intArg('seed', v.seed, 0, 0, 0x7fffffff),
      backbone,
      layers: v.layers ? v.layers.split(',').map((s) => s.trim()) : scorerLayers(backbone),
      modality: modalityArg(v.modality),
      geometryScales: scalesArg(v['geometry-scales']),
    };
    const isDir = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
    if (!isDir(v.images)) throw new TttError('NOT_FOUND', `${v.images} is not a folder`);
    // The MVTec 3D-AD layout: DIR/rgb and DIR/xyz.
    const layout3d = isDir(join(v.images, 'rgb')) && isDir(join(v.images, 'xyz'));
    const imageDir = layout3d ? join(v.images, 'rgb') : v.images;
    const cloudDir = v['point-clouds'] ?? (layout3d ? join(v.images, 'xyz') : null);
    if (config.modality !== 'rgb' && !cloudDir) {
      throw new TttError('INVALID_OPTION', `--modality ${config.modality} needs point clouds: --point-clouds DIR, or --images in the MVTec 3D-AD layout (DIR/rgb, DIR/xyz)`);
    }
    if (v['point-clouds'] && !isDir(v['point-clouds'])) throw new TttError('NOT_FOUND', `${v['point-clouds']} is not a folder`);
    const paths = listImages(imageDir, v.limit === undefined ? undefined : intArg('limit', v.limit, 0));
    const clouds = config.modality !== 'rgb' && cloudDir ? await pointCloudPaths(paths, cloudDir) : null;
    const built = { ...config, preselect: preselectArg(v.preselect, paths.length, config) };
    const { gpu } = await nodeGpu();
    const t0 = performance.now();
    const bank = await buildBank(gpu, readSamples(paths, clouds), built, {
      onImage: (n) => n % 20 === 0 && process.stderr.write(`bank: ${n}/${paths.length} images\n`),
      onCoreset: (n, total) => n % 2048 === 0 && process.stderr.write(`bank: coreset ${n}/${total}\n`),
    });
    await writeFileAtomic(v.out, encodeBank(bank));
    const { header } = bank;
    console.log(JSON.stringify({ out: v.out, modality: header.modality, backbone: header.backbone, preselect: header.preselect, images: header.images, patches: header.patches, sourcePatches: header.sourcePatches, channels: header.channels, seconds: +((performance.now() - t0) / 1000).toFixed(1) }));
  },
};
