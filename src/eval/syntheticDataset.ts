// Synthetic datasets with a folder of detector maps, to try and test `ttt eval` without real data: the
// MVTec AD layout (src/synthetic.ts samples) and the MVTec 3D-AD layout (src/synthetic3d.ts parts).

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pcgHash } from '../core/rng.ts';
import { writeFilesAtomic } from '../io/files.ts';
import { encodeImagePng, encodeMaskPng } from '../io/image.ts';
import { encodeNpy } from '../io/npy.ts';
import { syntheticSample } from '../synthetic.ts';
import { synthetic3dSample } from '../synthetic3d.ts';
import { encodeFloatTiff } from '../io/tiff.ts';

export interface SyntheticDatasetOptions {
  /** Image width; the height is 3/4 of it (not square, so that resizing bugs show). */
  width: number;
  /** Images in train/good, validation/good, test/good and in each defect type. */
  count: number;
  seed?: number;
  /** The detector's stride: maps are this many times smaller than the images. */
  mapStride?: number;
  colour?: boolean;
  /** Write validation/good (true) or leave the split to the reader (false). */
  validation?: boolean;
}

/** Defect types and their number of defects per image (src/synthetic.ts: even defects are blobs, odd scratches). */
export const SYNTHETIC_TYPES: Readonly<Record<string, number>> = { blob: 1, mixed: 3 };

/** Writes `<out>/dataset` (MVTec layout) and `<out>/maps` (ttt eval --maps layout); returns both paths. */
export async function writeSyntheticDataset(out: string, opts: SyntheticDatasetOptions): Promise<{ dataset: string; maps: string }> {
  const dataset = join(out, 'dataset');
  const maps = join(out, 'maps');
  const width = opts.width;
  const height = Math.max(1, Math.round(width * 0.75));
  const stride = opts.mapStride ?? 1;
  const seed = opts.seed ?? 1;
  const sets: { folder: string; mapFolder: string | null; type: string; defects: number }[] = [
    { folder: 'train/good', mapFolder: null, type: 'good', defects: 0 },
    ...(opts.validation === false ? [] : [{ folder: 'validation/good', mapFolder: 'validation/good', type: 'good', defects: 0 }]),
    { folder: 'test/good', mapFolder: 'good', type: 'good', defects: 0 },
    ...Object.entries(SYNTHETIC_TYPES).map(([type, defects]) => ({ folder: `test/${type}`, mapFolder: type, type, defects })),
  ];
  const dirs = new Set<string>();
  const files: { path: string; bytes: Uint8Array }[] = [];
  for (const [s, set] of sets.entries()) {
    dirs.add(join(dataset, set.folder));
    if (set.mapFolder) dirs.add(join(maps, set.mapFolder));
    if (set.defects) dirs.add(join(dataset, 'ground_truth', set.type));
    // Without validation/good the reader splits train/good, whose maps it then reads from maps/train/good.
    if (!set.mapFolder && opts.validation === false) dirs.add(join(maps, 'train/good'));
    for (let i = 0; i < opts.count; i++) {
      const stem = String(i).padStart(3, '0');
      const sample = syntheticSample({
        width,
        height,
        seed: pcgHash((seed * 7919 + s * 1009 + i) >>> 0),
        defects: set.defects,
        mapStride: stride,
        colour: opts.colour,
      });
      files.push({ path: join(dataset, set.folder, `${stem}.png`), bytes: await encodeImagePng(sample.image) });
      const mapDir = set.mapFolder ?? (opts.validation === false ? 'train/good' : null);
      if (mapDir) files.push({ path: join(maps, mapDir, `${stem}.npy`), bytes: encodeNpy(sample.scoreMap.data, [sample.scoreMap.height, sample.scoreMap.width]) });
      if (set.defects) files.push({ path: join(dataset, 'ground_truth', set.type, `${stem}_mask.png`), bytes: await encodeMaskPng(sample.groundTruth, width, height) });
    }
  }
  for (const d of dirs) await mkdir(d, { recursive: true });
  await writeFilesAtomic(files);
  return { dataset, maps };
}

/** Defect types of the synthetic MVTec 3D-AD-layout dataset and their defects per part (dents and bumps alternate). */
export const SYNTHETIC_3D_TYPES: Readonly<Record<string, number>> = { dent: 1, dent_and_bump: 2 };

/**
 * Writes `<out>/dataset` in the MVTec 3D-AD layout (one class: {train,validation,test}/<type>/{rgb,xyz,gt}/,
 * xyz as 3-sample float32 TIFF) with parts from src/synthetic3d.ts, whose dents and bumps do not show in
 * the image, and `<out>/maps` (a multimodal detector's maps, ttt eval --maps layout); returns both paths.
 */
export async function writeSynthetic3dDataset(out: string, opts: { width: number; count: number; seed?: number }): Promise<{ dataset: string; maps: string }> {
  const dataset = join(out, 'dataset');
  const maps = join(out, 'maps');
  const width = opts.width;
  const height = Math.max(1, Math.round(width * 0.75));
  const seed = opts.seed ?? 1;
  const sets = [
    { split: 'train', type: 'good', defects: 0, mapFolder: null as string | null },
    { split: 'validation', type: 'good', defects: 0, mapFolder: 'validation/good' },
    { split: 'test', type: 'good', defects: 0, mapFolder: 'good' },
    ...Object.entries(SYNTHETIC_3D_TYPES).map(([type, defects]) => ({ split: 'test', type, defects, mapFolder: type })),
  ];
  const dirs = new Set<string>();
  const files: { path: string; bytes: Uint8Array }[] = [];
  for (const [s, set] of sets.entries()) {
    const base = join(dataset, set.split, set.type);
    for (const sub of ['rgb', 'xyz', ...(set.defects ? ['gt'] : [])]) dirs.add(join(base, sub));
    if (set.mapFolder) dirs.add(join(maps, set.mapFolder));
    for (let i = 0; i < opts.count; i++) {
      const stem = String(i).padStart(3, '0');
      const sample = synthetic3dSample({ width, height, seed: pcgHash((seed * 7919 + s * 1009 + i) >>> 0), defects: set.defects });
      files.push({ path: join(base, 'rgb', `${stem}.png`), bytes: await encodeImagePng(sample.image) });
      files.push({ path: join(base, 'xyz', `${stem}.tiff`), bytes: encodeFloatTiff(sample.pointCloud.data, width, height, 3) });
      if (set.defects) files.push({ path: join(base, 'gt', `${stem}.png`), bytes: await encodeMaskPng(sample.groundTruth, width, height) });
      if (set.mapFolder) files.push({ path: join(maps, set.mapFolder, `${stem}.npy`), bytes: encodeNpy(sample.scoreMap.data, [height, width]) });
    }
  }
  for (const d of dirs) await mkdir(d, { recursive: true });
  await writeFilesAtomic(files);
  return { dataset, maps };
}
