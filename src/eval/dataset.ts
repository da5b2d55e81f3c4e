// A reader for datasets in the MVTec AD layout (train/good, optional validation/good, test/<type>,
// ground_truth/<type>/<stem>_mask.png) and in the MVTec 3D-AD layout (one class folder with
// {train,validation,test}/<type>/{rgb,xyz,gt}/: the image, its organized point cloud and, for defects, the
// mask of the same stem): deterministic listing, a seeded validation split when the dataset has none,
// seeded per-set limits, and loading at a working resolution with masks kept pixel-aligned.

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TttError, withSubjectAsync } from '../core/errors.ts';
import { pcgHash } from '../core/rng.ts';
import type { ImageTensor, PointCloud } from '../core/types.ts';
import { findOneFile, readInputFile } from '../io/files.ts';
import { POINT_CLOUD_EXTENSIONS, readPointCloud } from '../io/pointcloud.ts';
import { decodeImage, decodeMask, fitSize, inspectRaster } from '../io/image.ts';

/** The type of defect-free images (MVTec's folder name). */
export const NOMINAL_TYPE = 'good';

/** Share of train/good drawn as the validation set when the dataset has no validation/good. */
export const VALIDATION_SHARE = 0.2;

const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.tif', '.tiff'];

export type Split = 'train' | 'validation' | 'test';

export interface DatasetImage {
  /** The path relative to the dataset root ("test/crack/003.png"): unique, used in messages and reports. */
  readonly id: string;
  /** The file to read. */
  readonly path: string;
  /** The folder the image was listed from (a validation image drawn from train/good has split 'train'). */
  readonly split: Split;
  /** The test type ("good" for defect-free images; every train and validation image is "good"). */
  readonly type: string;
  /** The file name without its extension. */
  readonly stem: string;
  /** The ground-truth mask of a defective test image; null for defect-free images. */
  readonly maskPath: string | null;
  /** The organized point cloud (MVTec 3D-AD layout), or null. */
  readonly pointCloudPath: string | null;
}

export interface Dataset {
  readonly root: string;
  /** Nominal images to build a detector from (what is left of train/good after a validation split). */
  readonly train: readonly DatasetImage[];
  /** Nominal images to calibrate thresholds and the image-level gate on. */
  readonly validation: readonly DatasetImage[];
  readonly validationSource: 'validation/good' | 'train/good split';
  /** Test images, grouped by type in `types` order, each group sorted by id. */
  readonly test: readonly DatasetImage[];
  /** Test types in sorted order; "good" among them when the dataset has defect-free test images. */
  readonly types: readonly string[];
  /** Images listed before --limit, per set: train, validation and each test type. */
  readonly available: Readonly<Record<string, number>>;
  /** 'mvtec3d': <split>/<type>/{rgb,xyz,gt}/, every image with a point cloud. */
  readonly layout: 'mvtec' | 'mvtec3d';
}

export interface OpenDatasetOptions {
  /** Seeds the validation split and the --limit draw. */
  seed: number;
  /** At most this many images per test type and per nominal set (train, validation). */
  limit?: number;
  /**
   * Keep one seeded half of the test images (after --limit): each image's key (drawKey with the seed) is
   * even for 'a', odd for 'b', so the halves are disjoint and together the whole test set. To tune on one
   * half and report the other.
   */
  half?: 'a' | 'b';
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

async function listDir(path: string): Promise<import('node:fs').Dirent[]> {
  try {
    return await readdir(path, { withFileTypes: true });
  } catch (e) {
    throw new TttError('NOT_FOUND', `${path}: cannot list the folder: ${(e as Error).message}`);
  }
}

/** Code-unit order, so the listing does not depend on the locale. */
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot).toLowerCase();
}

/** The image files of a folder as (stem, file) pairs, sorted; two files of one stem are refused. */
async function listImages(dir: string): Promise<{ stem: string; file: string }[]> {
  const entries = await listDir(dir);
  const out = new Map<string, string>();
  for (const e of entries) {
    if (e.name.startsWith('.') || !IMAGE_EXTENSIONS.includes(extensionOf(e.name))) continue;
    if (!e.isFile() && !(e.isSymbolicLink() && (await stat(join(dir, e.name)).catch(() => null))?.isFile())) continue;
    const stem = e.name.slice(0, e.name.length - extensionOf(e.name).length);
    const other = out.get(stem);
    if (other !== undefined) {
      throw new TttError('INVALID_INPUT', `${join(dir, e.name)}: another image of the same name exists (${join(dir, other)}); keep one`);
    }
    out.set(stem, e.name);
  }
  return [...out.entries()].map(([stem, file]) => ({ stem, file })).sort((a, b) => byName(a.stem, b.stem));
}

/** A seeded key per image id (FNV-1a of the id, mixed with the seed and a salt through the PCG hash). */
export function drawKey(id: string, seed: number, salt: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return pcgHash((pcgHash((h ^ salt) >>> 0) ^ (seed >>> 0)) >>> 0);
}

/**
 * The images with the n smallest keys, back in id order. Keys depend only on each id and the seed, so an
 * image is chosen or not regardless of which other files exist.
 */
function draw<T extends { id: string }>(items: readonly T[], n: number, seed: number, salt: number): { chosen: T[]; rest: T[] } {
  const keyed = items.map((item) => ({ item, key: drawKey(item.id, seed, salt) }));
  keyed.sort((a, b) => a.key - b.key || byName(a.item.id, b.item.id));
  const chosen = new Set(keyed.slice(0, n).map((k) => k.item));
  return { chosen: items.filter((i) => chosen.has(i)), rest: items.filter((i) => !chosen.has(i)) };
}

const SALT_SPLIT = 0x76616c31;
const SALT_LIMIT = 0x6c696d31;
const SALT_HALF = 0x68616c66;

/** Which seeded half of the test set an image is in (openDataset's `half`). */
export function testHalf(id: string, seed: number): 'a' | 'b' {
  return (drawKey(id, seed, SALT_HALF) & 1) === 0 ? 'a' : 'b';
}

function limited<T extends { id: string }>(items: readonly T[], limit: number | undefined, seed: number): T[] {
  return limit === undefined || items.length <= limit ? [...items] : draw(items, limit, seed, SALT_LIMIT).chosen;
}

/** MVTec 3D-AD: images in <split>/<type>/rgb/ rather than <split>/<type>/. */
async function isMvtec3d(root: string): Promise<boolean> {
  for (const split of ['train', 'validation']) if (await isDirectory(join(root, split, NOMINAL_TYPE, 'rgb'))) return true;
  const testDir = join(root, 'test');
  if (!(await isDirectory(testDir))) return false;
  for (const e of await listDir(testDir)) if (e.isDirectory() && (await isDirectory(join(testDir, e.name, 'rgb')))) return true;
  return false;
}

export async function openDataset(root: string, opts: OpenDatasetOptions): Promise<Dataset> {
  if (!(await isDirectory(root))) throw new TttError('NOT_FOUND', `${root}: the dataset folder does not exist`);
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 1)) {
    throw new TttError('INVALID_OPTION', `limit must be a positive integer, got ${opts.limit}`);
  }
  const layout = (await isMvtec3d(root)) ? 'mvtec3d' : 'mvtec';
  const sub = layout === 'mvtec3d' ? 'rgb' : '';
  const nominal = async (split: 'train' | 'validation'): Promise<DatasetImage[] | null> => {
    const dir = join(root, split, NOMINAL_TYPE, sub);
    if (!(await isDirectory(dir))) return null;
    return (await listImages(dir)).map(({ stem, file }) => ({
      id: layout === 'mvtec3d' ? `${split}/${NOMINAL_TYPE}/rgb/${file}` : `${split}/${NOMINAL_TYPE}/${file}`,
      path: join(dir, file),
      split,
      type: NOMINAL_TYPE,
      stem,
      maskPath: null,
      pointCloudPath: layout === 'mvtec3d' ? join(root, split, NOMINAL_TYPE, 'xyz') : null,
    }));
  };
  const trainAll = (await nominal('train')) ?? [];
  const validationFolder = await nominal('validation');
  let train: DatasetImage[];
  let validation: DatasetImage[];
  if (validationFolder) {
    if (validationFolder.length === 0) throw new TttError('INVALID_INPUT', `${join(root, 'validation', NOMINAL_TYPE, sub)}: the folder holds no images`);
    train = trainAll;
    validation = validationFolder;
  } else {
    if (trainAll.length === 0) {
      throw new TttError('NOT_FOUND', `${root}: neither validation/good nor train/good holds images: there is nothing to calibrate on`);
    }
    const n = Math.max(1, Math.round(VALIDATION_SHARE * trainAll.length));
    const split = draw(trainAll, n, opts.seed, SALT_SPLIT);
    validation = split.chosen;
    train = split.rest;
  }

  const testDir = join(root, 'test');
  if (!(await isDirectory(testDir))) throw new TttError('NOT_FOUND', `${testDir}: the dataset has no test folder`);
  const types = (await listDir(testDir))
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(byName);
  if (types.length === 0) throw new TttError('NOT_FOUND', `${testDir}: no test types (expected folders such as test/good, test/<defect>)`);
  const available: Record<string, number> = { train: train.length, validation: validation.length };
  const test: DatasetImage[] = [];
  if (opts.half !== undefined && opts.half !== 'a' && opts.half !== 'b') throw new TttError('INVALID_OPTION', `half must be a or b, got ${JSON.stringify(opts.half)}`);
  for (const type of types) {
    const listed = await listImages(join(testDir, type, sub));
    if (listed.length === 0) throw new TttError('INVALID_INPUT', `${join(testDir, type, sub)}: the folder holds no images`);
    available[`test/${type}`] = listed.length;
    const items: DatasetImage[] = listed.map(({ stem, file }) => ({
      id: layout === 'mvtec3d' ? `test/${type}/rgb/${file}` : `test/${type}/${file}`,
      path: join(testDir, type, sub, file),
      split: 'test',
      type,
      stem,
      maskPath: type === NOMINAL_TYPE ? null : layout === 'mvtec3d' ? join(testDir, type, 'gt', `${stem}.png`) : join(root, 'ground_truth', type, `${stem}_mask.png`),
      pointCloudPath: layout === 'mvtec3d' ? join(testDir, type, 'xyz') : null,
    }));
    const chosen = limited(items, opts.limit, opts.seed);
    test.push(...(opts.half ? chosen.filter((i) => testHalf(i.id, opts.seed) === opts.half) : chosen));
  }
  // Every chosen defective image needs its mask: fail now, not hours into a run.
  for (const item of test) {
    if (item.maskPath && !(await stat(item.maskPath).catch(() => null))?.isFile()) {
      throw new TttError('NOT_FOUND', `${item.maskPath}: the ground-truth mask of ${item.id} does not exist`);
    }
  }
  const chosenTrain = limited(train, opts.limit, opts.seed);
  const chosenValidation = limited(validation, opts.limit, opts.seed);
  // Every chosen image of the 3-D layout needs its point cloud: resolve the folder to the file now.
  const withCloud = async (items: DatasetImage[]) => {
    if (layout !== 'mvtec3d') return items;
    const out: DatasetImage[] = [];
    for (const item of items) out.push({ ...item, pointCloudPath: await findOneFile(join(item.pointCloudPath!, item.stem), POINT_CLOUD_EXTENSIONS, 'point cloud', item.id) });
    return out;
  };
  return {
    root,
    train: await withCloud(chosenTrain),
    validation: await withCloud(chosenValidation),
    validationSource: validationFolder ? 'validation/good' : 'train/good split',
    test: await withCloud(test),
    types,
    available,
    layout,
  };
}

/** The point cloud of an image of the MVTec 3D-AD layout, at its stored resolution. */
export async function loadPointCloud(item: DatasetImage): Promise<PointCloud | null> {
  if (!item.pointCloudPath) return null;
  return readPointCloud(item.pointCloudPath);
}

export interface LoadedImage {
  /** The image at the working resolution. */
  image: ImageTensor;
  /** The stored size, before resampling. */
  original: { width: number; height: number };
}

/** The image at the working resolution: longest side at most `maxSide` (lanczos3; never upscaled). */
export async function loadImage(item: DatasetImage, maxSide: number | undefined): Promise<LoadedImage> {
  const bytes = await readInputFile(item.path, 'image');
  const { meta } = await withSubjectAsync(item.path, () => inspectRaster(bytes, ['png', 'jpeg', 'tiff'], 'image'));
  const image = await decodeImage(bytes, item.path, { maxSide });
  return { image, original: { width: meta.width!, height: meta.height! } };
}

/** The size an image of `original` size has at the working resolution (as loadImage computes it). */
export function workingSize(original: { width: number; height: number }, maxSide: number | undefined): { width: number; height: number } {
  return maxSide ? fitSize(original.width, original.height, maxSide) : { ...original };
}

/**
 * The ground truth of a defective test image at the working resolution: the stored mask must have the
 * image's stored size (SIZE_MISMATCH otherwise); it is then resampled nearest-neighbour, so it stays binary.
 */
export async function loadMask(
  item: DatasetImage,
  original: { width: number; height: number },
  working: { width: number; height: number },
): Promise<Uint8Array> {
  if (!item.maskPath) throw new TttError('INTERNAL', `${item.id} has no ground truth (a defect-free image)`);
  const full = await decodeMask(await readInputFile(item.maskPath, 'mask'), item.maskPath, original);
  return resampleNearest(full, original, working);
}

/** Nearest-neighbour resampling of a mask (pixel centres mapped onto the source grid). */
export function resampleNearest(
  mask: Uint8Array,
  from: { width: number; height: number },
  to: { width: number; height: number },
): Uint8Array {
  if (from.width === to.width && from.height === to.height) return mask;
  const out = new Uint8Array(to.width * to.height);
  const xs = new Int32Array(to.width);
  for (let x = 0; x < to.width; x++) xs[x] = Math.min(from.width - 1, Math.floor(((x + 0.5) * from.width) / to.width));
  for (let y = 0; y < to.height; y++) {
    const sy = Math.min(from.height - 1, Math.floor(((y + 0.5) * from.height) / to.height));
    for (let x = 0; x < to.width; x++) out[y * to.width + x] = mask[sy * from.width + xs[x]];
  }
  return out;
}
