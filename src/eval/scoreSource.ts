// Where the evaluation's anomaly maps come from: any detector, behind one interface. `mapsFolder` reads
// maps a detector exported to disk; the built-in scorer implements the same interface.

import { mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TttError } from '../core/errors.ts';
import type { Gpu } from '../core/gpu.ts';
import type { Backbone, BankModality, MemoryBank } from '../core/patchcore/bank.ts';
import { autoPreselect, PATCHCORE_DEFAULTS, PatchCoreScorer, buildBank, scorerLayers, type PatchCoreConfig } from '../core/patchcore/patchcore.ts';
import type { ImageTensor, PointCloud, ScoreMap } from '../core/types.ts';
import { findOneFile, readInputFile, writeFileAtomic } from '../io/files.ts';
import { encodeNpy } from '../io/npy.ts';
import { decodeScoreMap } from '../io/scoremap.ts';
import { NOMINAL_TYPE, loadPointCloud, type Dataset, type DatasetImage } from './dataset.ts';

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
   * map may have any resolution with the image's aspect ratio (it is resampled bilinearly). `pointCloud`:
   * the image's organized point cloud (MVTec 3D-AD layout), at its stored resolution, or null.
   */
  score(item: DatasetImage, image: ImageTensor, pointCloud?: PointCloud | null): Promise<ScoreMap>;
  /** What to name in an error about the map of `item` (its file); by default "the score map of <id>". */
  locate?(item: DatasetImage): string;
  /** The maps do not depend on the image given to score() (read from a folder): a shift of the images cannot move them. */
  readonly mapsOnly?: boolean;
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

/** The one map file of an item: exactly one of <base>.npy, .tiff, .tif must exist. */
const findMap = (dir: string, item: DatasetImage): Promise<string> => findOneFile(mapBase(dir, item), MAP_EXTENSIONS, 'score map', item.id);

/** Score maps exported by any detector: `.npy` (h x w) or one-channel float TIFF, laid out as mapBase says. */
export function mapsFolder(dir: string): ScoreSource {
  const paths = new Map<string, string>();
  return {
    name: `maps ${dir}`,
    mapsOnly: true,
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
  /**
   * The features of a bank built here (overrides config.modality); by default both on a dataset with
   * point clouds (MVTec 3D-AD layout), rgb otherwise.
   */
  modality?: BankModality;
  /** The network of a bank built here, with its default layers (default: config's). */
  backbone?: Backbone;
  /** Build the bank from at most this many train images, evenly spaced over the sorted list. */
  bankImages?: number;
  /** Called with the bank once built, e.g. to save it. */
  onBank?: (bank: MemoryBank) => Promise<void>;
}

/**
 * The built-in scorer: PatchCore on the pretrained ResNet-50 (or MobileNetV2) and/or the 3-D features of the point clouds
 * (src/core/patchcore/). One bank scores every image, so every method of a run sees the same map.
 */
export function patchcoreSource(gpu: Gpu, opts: PatchCoreSourceOptions = {}): ScoreSource {
  const base = opts.config ?? PATCHCORE_DEFAULTS;
  let scorer: PatchCoreScorer | null = null;
  // Named by what it scores with: the modality of a bank built here is known once the dataset is open.
  let name = opts.bank
    ? `patchcore (saved bank of ${opts.bank.header.patches} patches, modality ${opts.bank.header.modality})`
    : `patchcore ${JSON.stringify({ ...base, modality: opts.modality ?? 'auto', bankImages: opts.bankImages ?? null })}`;
  return {
    get name() {
      return name;
    },
    async prepare(dataset, ctx) {
      const withClouds = dataset.layout === 'mvtec3d';
      let bank = opts.bank;
      if (!bank) {
        const modality = opts.modality ?? (withClouds ? 'both' : 'rgb');
        const network = opts.backbone ? { backbone: opts.backbone, layers: scorerLayers(opts.backbone) } : {};
        const images = Math.min(dataset.train.length, opts.bankImages ?? dataset.train.length);
        const config = { ...base, ...network, modality, preselect: base.preselect < 1 ? base.preselect : autoPreselect(images, base) };
        name = `patchcore ${JSON.stringify({ ...config, bankImages: opts.bankImages ?? null })}`;
        if (modality !== 'rgb' && !withClouds) {
          throw new TttError('INVALID_OPTION', `a ${modality} bank needs point clouds: a dataset in the MVTec 3D-AD layout (<split>/<type>/{rgb,xyz,gt}/)`);
        }
        const all = dataset.train;
        const n = Math.min(all.length, opts.bankImages ?? all.length);
        const chosen = Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]);
        async function* samples() {
          for (const [k, item] of chosen.entries()) {
            yield { image: await ctx.loadImage(item), pointCloud: modality === 'rgb' ? null : await loadPointCloud(item) };
            ctx.progress(k + 1, chosen.length, 'bank images');
          }
        }
        bank = await buildBank(gpu, samples(), config, { onCoreset: (done, total) => ctx.progress(done, total, 'coreset') });
        await opts.onBank?.(bank);
      } else if (bank.header.modality !== 'rgb' && !withClouds) {
        throw new TttError('INVALID_INPUT', `the memory bank holds 3-D features (modality ${bank.header.modality}) and the dataset has no point clouds (not in the MVTec 3D-AD layout)`);
      }
      scorer = await PatchCoreScorer.load(gpu, bank);
    },
    async score(_item, image, pointCloud) {
      if (!scorer) throw new TttError('INTERNAL', 'the PatchCore source was not prepared');
      return (await scorer.score(image, pointCloud ?? null)).anomalyMap;
    },
  };
}

/** Writes every map a source produces into `dir` in the maps-folder layout, for later --maps runs. */
export function savingMaps(source: ScoreSource, dir: string): ScoreSource {
  return {
    get name() {
      return source.name;
    },
    prepare: source.prepare?.bind(source),
    locate: source.locate?.bind(source),
    async score(item, image, pointCloud) {
      const map = await source.score(item, image, pointCloud);
      const base = mapBase(dir, item);
      await mkdir(dirname(base), { recursive: true });
      await writeFileAtomic(`${base}.npy`, encodeNpy(map.data, [map.height, map.width]));
      return map;
    },
  };
}
