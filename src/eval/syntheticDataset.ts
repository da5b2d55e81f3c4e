// A synthetic dataset in the MVTec AD layout with a folder of detector maps (src/synthetic.ts samples), to
// try and test `ttt eval` without real data.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pcgHash } from '../core/rng.ts';
import { writeFilesAtomic } from '../io/files.ts';
import { encodeImagePng, encodeMaskPng } from '../io/image.ts';
import { encodeNpy } from '../io/npy.ts';
import { syntheticSample } from '../synthetic.ts';

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
