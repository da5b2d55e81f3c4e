// Nominal images of BUILTIN products: each addition stores the images and rebuilds the PatchCore memory
// bank from all of the product's nominal images, and the calibration from the maps of held-out ones (scored
// against a bank built without them, so that they look like parts the bank has never seen). A product
// whose nominal images come with point clouds (all of them) gets a bank of image and 3-D features (modality
// both); its inspections then need their point cloud to be scored.

import { calibrate, calibrationToJson, type Calibration } from '../core/calibration.ts';
import { TttError, withSubjectAsync } from '../core/errors.ts';
import { encodeBank, type Backbone, type MemoryBank } from '../core/patchcore/bank.ts';
import { autoPreselect, bankFromRows, bankRows, PatchCoreScorer, PATCHCORE_DEFAULTS, scorerLayers, type BankSample, type PatchCoreConfig } from '../core/patchcore/patchcore.ts';
import type { ScoreMap } from '../core/types.ts';
import { checkAspect, validateImage, validatePointCloud } from '../core/validate.ts';
import { Prisma } from '../generated/prisma/client.ts';
import { decodeImage } from '../io/image.ts';
import { decodePointCloud } from '../io/pointcloud.ts';
import type { ServiceContext } from './context.ts';
import { bankBuilds } from './metrics.ts';
import { checkUploadSize, readUpload, type FileLike } from './uploads.ts';

/** Every this-many-th nominal image (by position) is held out of the calibration bank. */
export const HOLD_OUT_EVERY = 5;

/** At most this many images per call. */
export const MAX_NOMINAL_IMAGES = 500;

/** Bank rebuilds attempted when other processes keep adding images to the same product meanwhile. */
const MAX_ATTEMPTS = 3;

/**
 * Positions of the nominal images whose maps calibrate a product of `count` images: every 5th (4, 9, 14,
 * ...), or the last one when there are 2 to 4 images; none for a single image (nothing would be left to
 * build the calibration bank from).
 */
export function heldOutPositions(count: number): number[] {
  const held: number[] = [];
  for (let p = HOLD_OUT_EVERY - 1; p < count; p += HOLD_OUT_EVERY) held.push(p);
  if (held.length === 0 && count >= 2) held.push(count - 1);
  return held;
}

interface NominalFile {
  name: string;
  bytes: Uint8Array<ArrayBuffer>;
  width: number;
  height: number;
  channels: number;
  /** The point cloud as uploaded, or null. */
  cloud: { name: string; bytes: Uint8Array<ArrayBuffer> } | null;
}

/**
 * The bank of a product's nominal images: the built-in scorer's defaults (coreset rows), the configured
 * backbone (SCORER_BACKBONE) with its default layers, image and 3-D features when they come with point
 * clouds, and the pre-selection of autoPreselect for the number of images (none up to about 40 images).
 */
export const builtinBankConfig = (backbone: Backbone, images: number, withClouds: boolean): PatchCoreConfig => ({
  ...PATCHCORE_DEFAULTS,
  backbone,
  layers: scorerLayers(backbone),
  modality: withClouds ? 'both' : 'rgb',
  preselect: autoPreselect(images, PATCHCORE_DEFAULTS),
});

// Additions to one product run one after another in this process; the position check in the final
// transaction catches additions by other processes.
const chains = new Map<string, Promise<void>>();

function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (chains.get(key) ?? Promise.resolve()).then(fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  chains.set(key, tail);
  void tail.then(() => chains.get(key) === tail && chains.delete(key));
  return run;
}

async function readImages(ctx: ServiceContext, files: readonly FileLike[], clouds: readonly FileLike[]): Promise<NominalFile[]> {
  if (files.length > MAX_NOMINAL_IMAGES) throw new TttError('INVALID_INPUT', `images: at most ${MAX_NOMINAL_IMAGES} images per call, got ${files.length}`);
  if (clouds.length > 0 && clouds.length !== files.length) {
    throw new TttError('INVALID_INPUT', `pointClouds: ${clouds.length} point clouds for ${files.length} images (one per image, in the same order, or none)`);
  }
  files.forEach((f, k) => checkUploadSize(f, `images[${k}]`, ctx.config.maxUploadBytes));
  clouds.forEach((f, k) => checkUploadSize(f, `pointClouds[${k}]`, ctx.config.maxUploadBytes));
  const out: NominalFile[] = [];
  for (const [k, file] of files.entries()) {
    const upload = await readUpload(file);
    const image = await withSubjectAsync(`images[${k}]`, async () => {
      const decoded = await decodeImage(upload.bytes, upload.name, { maxPixels: ctx.config.maxImagePixels });
      validateImage(decoded);
      return decoded;
    });
    if (out.length > 0) checkAspect(`images[${k}] ${upload.name}`, image, out[0]);
    let cloud: NominalFile['cloud'] = null;
    if (clouds[k]) {
      const c = await readUpload(clouds[k]);
      await withSubjectAsync(`pointClouds[${k}]`, async () => validatePointCloud(decodePointCloud(c.bytes, c.name, { maxPixels: ctx.config.maxImagePixels }), image));
      cloud = { name: c.name, bytes: c.bytes };
    }
    out.push({ name: upload.name, bytes: upload.bytes, width: image.width, height: image.height, channels: image.channels, cloud });
  }
  return out;
}

async function* decodeAll(ctx: ServiceContext, files: readonly NominalFile[]): AsyncGenerator<BankSample> {
  const maxPixels = ctx.config.maxImagePixels;
  for (const f of files) {
    yield { image: await decodeImage(f.bytes, f.name, { maxPixels }), pointCloud: f.cloud ? decodePointCloud(f.cloud.bytes, f.cloud.name, { maxPixels }) : null };
  }
}

/**
 * The bank of all images, and the calibration from the held-out images' maps (null for a single image).
 * Each image is decoded and its patch features extracted once for both banks; the held-out ones are decoded
 * once more to be scored.
 */
async function rebuild(ctx: ServiceContext, files: readonly NominalFile[]): Promise<{ bank: MemoryBank; calibration: Calibration | null }> {
  const { processor } = ctx;
  const config = builtinBankConfig(ctx.config.scorerBackbone, files.length, files[0]?.cloud != null);
  const held = new Set(heldOutPositions(files.length));
  const rows = await processor.withGpu((gpu) => bankRows(gpu, decodeAll(ctx, files), config));
  let calibration: Calibration | null = null;
  if (held.size > 0) {
    const rest = { ...rows, perImage: rows.perImage.filter((_, p) => !held.has(p)) };
    const calibrationBank = await processor.withGpu((gpu) => bankFromRows(gpu, rest, config));
    const maps = await processor.withGpu(async (gpu) => {
      const scorer = await PatchCoreScorer.load(gpu, calibrationBank);
      try {
        const out: ScoreMap[] = [];
        for await (const s of decodeAll(ctx, files.filter((_, p) => held.has(p)))) out.push((await scorer.score(s.image, s.pointCloud)).anomalyMap);
        return out;
      } finally {
        scorer.release();
      }
    });
    calibration = calibrate(maps);
  }
  const bank = await processor.withGpu((gpu) => bankFromRows(gpu, rows, config, {}, true));
  return { bank, calibration };
}

/**
 * Validates every image (nothing is stored on any error), then stores them with the rebuilt bank and
 * calibration in one transaction: a failure leaves the previous bank and calibration in place.
 */
export async function addNominalImages(ctx: ServiceContext, productId: string, files: readonly FileLike[], clouds: readonly FileLike[] = []): Promise<void> {
  const { db, logger } = ctx;
  const added = await readImages(ctx, files, clouds);
  await serialized(productId, async () => {
    for (let attempt = 1; ; attempt++) {
      const stored = await db.nominalImage.findMany({
        where: { productId },
        orderBy: { position: 'asc' },
        select: { name: true, data: true, width: true, height: true, channels: true, pointCloud: true, pointCloudName: true },
      });
      const storedFiles: NominalFile[] = stored.map((s) => ({
        name: s.name,
        bytes: s.data as Uint8Array<ArrayBuffer>,
        width: s.width,
        height: s.height,
        channels: s.channels,
        cloud: s.pointCloud ? { name: s.pointCloudName ?? 'xyz.tiff', bytes: s.pointCloud as Uint8Array<ArrayBuffer> } : null,
      }));
      if (storedFiles.length > 0) {
        added.forEach((a, k) => checkAspect(`images[${k}] ${a.name}`, a, storedFiles[0]));
        const before = storedFiles[0].cloud !== null;
        if (before !== (added[0].cloud !== null)) {
          throw new TttError(
            'INVALID_INPUT',
            before
              ? "pointClouds: the product's nominal images come with point clouds (its bank holds image and 3-D features): give one per image"
              : "pointClouds: the product's nominal images have no point clouds (its bank holds image features): add images without them",
          );
        }
      }
      const t0 = performance.now();
      const { bank, calibration } = await rebuild(ctx, [...storedFiles, ...added]);
      const saved = await db.$transaction(
        async (tx) => {
          await tx.$queryRaw`SELECT id FROM "Product" WHERE id = ${productId}::uuid FOR UPDATE`;
          if ((await tx.nominalImage.count({ where: { productId } })) !== stored.length) return false;
          await tx.nominalImage.createMany({
            data: added.map((a, k) => ({
              productId,
              position: stored.length + k,
              name: a.name,
              width: a.width,
              height: a.height,
              channels: a.channels,
              data: a.bytes,
              pointCloud: a.cloud?.bytes ?? null,
              pointCloudName: a.cloud?.name ?? null,
            })),
          });
          await tx.product.update({
            where: { id: productId },
            data: { scorerBank: encodeBank(bank) as Uint8Array<ArrayBuffer>, calibration: calibration ? (calibrationToJson(calibration) as object) : Prisma.DbNull },
          });
          return true;
        },
        { timeout: 60_000 },
      );
      bankBuilds.inc({ result: saved ? 'stored' : 'superseded' });
      logger.log(saved ? 'info' : 'warn', 'scorer bank', {
        product: productId,
        images: stored.length + added.length,
        patches: bank.header.patches,
        modality: bank.header.modality,
        heldOut: calibration?.count ?? 0,
        ms: Math.round(performance.now() - t0),
        ...(saved ? {} : { superseded: 'another process added nominal images meanwhile; rebuilding' }),
      });
      if (saved) return;
      if (attempt === MAX_ATTEMPTS) {
        throw new TttError('INVALID_INPUT', `the product's nominal images changed during each of ${MAX_ATTEMPTS} bank rebuilds (concurrent additions): try again`);
      }
    }
  });
}
