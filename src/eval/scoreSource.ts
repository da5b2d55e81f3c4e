// Where the evaluation's anomaly maps come from: any detector, behind one interface. `mapsFolder` reads
// maps a detector exported to disk; the built-in scorer implements the same interface.

import { mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TttError } from '../core/errors.ts';
import type { Gpu } from '../core/gpu.ts';
import type { MemoryBank } from '../core/patchcore/bank.ts';
import { PATCHCORE_DEFAULTS, PatchCoreScorer, buildBank, type PatchCoreConfig } from '../core/patchcore/patchcore.ts';
import type { ImageTensor, ScoreMap } from '../core/types.ts';
import { readInputFile, writeFileAtomic } from '../io/files.ts';
import { encodeNpy } from '../io/npy.ts';
import { decodeScoreMap } from '../io/scoremap.ts';
import { NOMINAL_TYPE, type Dataset, type DatasetImage } from './dataset.ts';

export interface PrepareContext {
  /** An image at the evaluation's working resolution. */
  loadImage(item: DatasetImage): Promise<ImageTensor>;
  /** Reports progress of a long preparation (e.g. building a memory bank from train/good), by phase. */
  progress(done: number, total: number, phase?: 'prepare' | 'bank images' | 'coreset'): void;
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

export interface PatchCoreSourceOptions {
  /** A saved bank (from `ttt bank build` or --save-bank); otherwise one is built from dataset.train. */
  bank?: MemoryBank;
  config?: PatchCoreConfig;
  /** Build the bank from at most this many train images, evenly spaced over the sorted list. */
  bankImages?: number;
  /** Called with the bank once built, e.g. to save it. */
  onBank?: (bank: MemoryBank) => Promise<void>;
}

/** The built-in scorer: PatchCore on the pretrained MobileNetV2 (src/core/patchcore/). */
export function patchcoreSource(gpu: Gpu, opts: PatchCoreSourceOptions = {}): ScoreSource {
  const config = opts.config ?? PATCHCORE_DEFAULTS;
  let scorer: PatchCoreScorer | null = null;
  return {
    name: opts.bank ? `patchcore (saved bank of ${opts.bank.header.patches} patches)` : `patchcore ${JSON.stringify({ ...config, bankImages: opts.bankImages ?? null })}`,
    async prepare(dataset, ctx) {
      let bank = opts.bank;
      if (!bank) {
        const all = dataset.train;
        const n = Math.min(all.length, opts.bankImages ?? all.length);
        const chosen = Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]);
        async function* images() {
          for (const [k, item] of chosen.entries()) {
            yield await ctx.loadImage(item);
            ctx.progress(k + 1, chosen.length, 'bank images');
          }
        }
        bank = await buildBank(gpu, images(), config, { onCoreset: (done, total) => ctx.progress(done, total, 'coreset') });
        await opts.onBank?.(bank);
      }
      scorer = await PatchCoreScorer.load(gpu, bank);
    },
    async score(_item, image) {
      if (!scorer) throw new TttError('INTERNAL', 'the PatchCore source was not prepared');
      return (await scorer.score(image)).anomalyMap;
    },
  };
}

/** Writes every map a source produces into `dir` in the maps-folder layout, for later --maps runs. */
export function savingMaps(source: ScoreSource, dir: string): ScoreSource {
  return {
    ...source,
    name: source.name,
    async score(item, image) {
      const map = await source.score(item, image);
      const base = mapBase(dir, item);
      await mkdir(dirname(base), { recursive: true });
      await writeFileAtomic(`${base}.npy`, encodeNpy(map.data, [map.height, map.width]));
      return map;
    },
  };
}
