// Where the evaluation's anomaly maps come from: any detector, behind one interface. `mapsFolder` reads
// maps a detector exported to disk; the built-in scorer implements the same interface.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TttError } from '../core/errors.ts';
import type { ImageTensor, ScoreMap } from '../core/types.ts';
import { readInputFile } from '../io/files.ts';
import { decodeScoreMap } from '../io/scoremap.ts';
import { NOMINAL_TYPE, type Dataset, type DatasetImage } from './dataset.ts';

export interface PrepareContext {
  /** An image at the evaluation's working resolution. */
  loadImage(item: DatasetImage): Promise<ImageTensor>;
  /** Reports progress of a long preparation (e.g. building a memory bank from train/good). */
  progress(done: number, total: number): void;
}

export interface ScoreSource {
  /** Names the source in reports ("maps /data/patchcore-maps", "patchcore ..."). */
  readonly name: string;
  /**
   * Runs once before any score(): a detector builds its model from `dataset.train`; a folder of maps
   * checks that every map the run will read exists, so a missing one fails the run before it starts.
   */
  prepare?(dataset: Dataset, context: PrepareContext): Promise<void>;
  /**
   * The anomaly map of a validation or test image. `image` is the image at the working resolution; the
   * map may have any resolution with the image's aspect ratio (it is resampled bilinearly).
   */
  score(item: DatasetImage, image: ImageTensor): Promise<ScoreMap>;
  /** What to name in an error about the map of `item` (its file); by default "the score map of <id>". */
  locate?(item: DatasetImage): string;
}

export const MAP_EXTENSIONS = ['.npy', '.tiff', '.tif'];

/**
 * Where a map lives in a maps folder, without extension: test images at `<maps>/<type>/<stem>` (the
 * layout detectors export, e.g. `<maps>/crack/003.npy`, `<maps>/good/017.npy`); nominal calibration
 * images under their own folder, `<maps>/validation/good/<stem>`, or `<maps>/train/good/<stem>` when the
 * validation set was split off train/good.
 */
export function mapBase(dir: string, item: DatasetImage): string {
  if (item.split === 'test') return join(dir, item.type, item.stem);
  return join(dir, item.split, NOMINAL_TYPE, item.stem);
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() ?? false;
}

/** The one map file of an item: exactly one of <base>.npy, .tiff, .tif must exist. */
async function findMap(dir: string, item: DatasetImage): Promise<string> {
  const base = mapBase(dir, item);
  const found: string[] = [];
  for (const ext of MAP_EXTENSIONS) if (await isFile(base + ext)) found.push(base + ext);
  if (found.length === 0) {
    throw new TttError('NOT_FOUND', `${base}.npy: the score map of ${item.id} does not exist (looked for ${MAP_EXTENSIONS.map((e) => base + e).join(', ')})`);
  }
  if (found.length > 1) throw new TttError('INVALID_INPUT', `${found[0]}: ${item.id} has more than one score map (${found.join(', ')}); keep one`);
  return found[0];
}

/** Score maps exported by any detector: `.npy` (h x w) or one-channel float TIFF, laid out as mapBase says. */
export function mapsFolder(dir: string): ScoreSource {
  const paths = new Map<string, string>();
  return {
    name: `maps ${dir}`,
    async prepare(dataset) {
      if (!(await stat(dir).catch(() => null))?.isDirectory()) throw new TttError('NOT_FOUND', `${dir}: the maps folder does not exist`);
      for (const item of [...dataset.validation, ...dataset.test]) paths.set(item.id, await findMap(dir, item));
    },
    async score(item) {
      const path = paths.get(item.id) ?? (await findMap(dir, item));
      paths.set(item.id, path);
      return decodeScoreMap(await readInputFile(path, 'score map'), path);
    },
    locate: (item) => paths.get(item.id) ?? `${mapBase(dir, item)}.npy`,
  };
}
