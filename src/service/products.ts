// Product commands: create a product with its scorer and option overrides; add nominal samples. For an
// EXTERNAL product they are score maps and the calibration is recomputed from all of them (they are
// stored, so the calibration is always exactly `calibrate()` of every map added so far); for a BUILTIN
// product they are images, which rebuild its memory bank and calibration (builtin.ts).

import { calibrate, calibrationToJson } from '../core/calibration.ts';
import { TttError, withSubjectAsync } from '../core/errors.ts';
import { checkOptionLimits, parseOptionLimits } from '../core/cost.ts';
import { resolveOptions } from '../core/options.ts';
import type { ScoreMap } from '../core/types.ts';
import { checkAspect, checkDimensions, checkFinite } from '../core/validate.ts';
import { decodeScoreMap } from '../io/scoremap.ts';
import type { Scorer } from '../generated/prisma/enums.ts';
import { addNominalImages } from './builtin.ts';
import { inScope, productScope, type Principal } from './auth.ts';
import type { ServiceContext } from './context.ts';
import type { PrismaClient } from '../db.ts';
import { localId, notFound } from './ids.ts';
import { parseOptionPairs, type OptionPair } from './options.ts';
import { isUniqueViolation } from './prisma-errors.ts';
import { checkUploadSize, readUpload, type FileLike } from './uploads.ts';

export interface CreateProductInput {
  name: string;
  line?: string | null;
  /** Default EXTERNAL. */
  scorer?: Scorer | null;
  options?: readonly OptionPair[] | null;
}

const MAX_NAME = 200;

export async function createProduct(ctx: ServiceContext, input: CreateProductInput): Promise<string> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > MAX_NAME) throw new TttError('INVALID_INPUT', `name must have 1 to ${MAX_NAME} characters`);
  const overrides = parseOptionPairs(input.options);
  resolveOptions(overrides);
  try {
    const { id } = await ctx.db.product.create({ data: { name, line: input.line ?? null, scorer: input.scorer ?? 'EXTERNAL', options: overrides as object }, select: { id: true } });
    return id;
  } catch (e) {
    if (isUniqueViolation(e)) throw new TttError('INVALID_INPUT', `a product named ${JSON.stringify(name)} already exists`);
    throw e;
  }
}

/**
 * Sets a product's option limits (replacing the previous ones; an empty list clears them): the most an
 * inspection of it may ask of each option that costs processing time (core/cost.ts). The product's own
 * options must be within them. Returns the product's local id.
 */
export async function setProductOptionLimits(ctx: ServiceContext, productGlobalId: string, pairs: readonly OptionPair[]): Promise<string> {
  const productId = localId('Product', productGlobalId);
  const product = await ctx.db.product.findFirst({ where: { AND: [{ id: productId }, productScope(ctx.auth)] }, select: { options: true } });
  if (!product) throw notFound('Product', productGlobalId);
  const limits = parseOptionLimits(parseOptionPairs(pairs));
  const own = resolveOptions(product.options as Record<string, unknown>);
  try {
    checkOptionLimits(own, own, limits);
  } catch (e) {
    throw new TttError('INVALID_OPTION', `the product's own options exceed the new limits: ${(e as Error).message.replace(/, the product's limit$/, '')}`);
  }
  const updated = await ctx.db.product.updateMany({ where: { id: productId }, data: { optionLimits: limits as object } });
  if (updated.count === 0) throw notFound('Product', productGlobalId);
  return productId;
}

/** At most this many maps per call (each is decoded and held in memory). */
export const MAX_NOMINAL_FILES = 500;

function toBytes(data: Float32Array): Uint8Array<ArrayBuffer> {
  const le = new Uint8Array(data.byteLength);
  const view = new DataView(le.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return le;
}

function fromBytes(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** The local id of a product the principal may see; NOT_FOUND, as for a missing product, otherwise. */
export async function visibleProductId(db: PrismaClient, principal: Principal, productGlobalId: string): Promise<string> {
  const id = localId('Product', productGlobalId);
  if (!inScope(principal, id) || (await db.product.count({ where: { id } })) === 0) throw notFound('Product', productGlobalId);
  return id;
}

export interface NominalSamples {
  images?: readonly FileLike[] | null;
  scoreMaps?: readonly FileLike[] | null;
  /** The images' organized point clouds (BUILTIN), one per image in order. */
  pointClouds?: readonly FileLike[] | null;
}

/** Adds nominal samples of the kind the product's scorer takes; returns the product's local id. */
export async function addNominalSamples(ctx: ServiceContext, productGlobalId: string, samples: NominalSamples): Promise<string> {
  const productId = localId('Product', productGlobalId);
  const product = await ctx.db.product.findFirst({ where: { AND: [{ id: productId }, productScope(ctx.auth)] }, select: { scorer: true } });
  if (!product) throw notFound('Product', productGlobalId);
  const images = samples.images ?? [];
  const scoreMaps = samples.scoreMaps ?? [];
  if (product.scorer === 'BUILTIN') {
    if (scoreMaps.length > 0) {
      throw new TttError('INVALID_INPUT', 'scoreMaps: the product uses the built-in scorer (scorer BUILTIN), which calibrates on its own maps: add nominal images (images) instead');
    }
    if (images.length === 0) throw new TttError('INVALID_INPUT', 'images: at least one nominal image is needed');
    await addNominalImages(ctx, productId, images, samples.pointClouds ?? []);
  } else {
    if ((samples.pointClouds ?? []).length > 0) {
      throw new TttError('INVALID_INPUT', 'pointClouds: the product is scored by an external detector (scorer EXTERNAL), whose nominal samples are its score maps');
    }
    if (images.length > 0) {
      throw new TttError('INVALID_INPUT', "images: the product is scored by an external detector (scorer EXTERNAL): add that detector's score maps of nominal parts (scoreMaps) instead");
    }
    await addNominalScoreMaps(ctx, productId, scoreMaps);
  }
  return productId;
}

async function addNominalScoreMaps(ctx: ServiceContext, productId: string, files: readonly FileLike[]): Promise<void> {
  const { db, config } = ctx;
  if (files.length === 0) throw new TttError('INVALID_INPUT', 'scoreMaps: at least one nominal score map is needed');
  if (files.length > MAX_NOMINAL_FILES) throw new TttError('INVALID_INPUT', `scoreMaps: at most ${MAX_NOMINAL_FILES} maps per call, got ${files.length}`);
  files.forEach((f, k) => checkUploadSize(f, `scoreMaps[${k}]`, config.maxUploadBytes));

  const added: { name: string; map: ScoreMap }[] = [];
  for (const [k, file] of files.entries()) {
    const upload = await readUpload(file);
    const map = await withSubjectAsync(`scoreMaps[${k}]`, () => decodeScoreMap(upload.bytes, upload.name));
    checkDimensions(`scoreMaps[${k}] ${upload.name}`, map.width, map.height);
    checkFinite(`scoreMaps[${k}] ${upload.name}`, map.data, map.width, map.height);
    if (added.length > 0) checkAspect(`scoreMaps[${k}] ${upload.name}`, map, added[0].map);
    added.push({ name: upload.name, map });
  }

  await db.$transaction(
    async (tx) => {
      // Serializes concurrent additions to one product, so that no map is left out of the calibration.
      await tx.$queryRaw`SELECT id FROM "Product" WHERE id = ${productId}::uuid FOR UPDATE`;
      const stored = await tx.nominalScoreMap.findMany({
        where: { productId },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        select: { name: true, width: true, height: true, data: true },
      });
      const storedMaps: ScoreMap[] = stored.map((s) => ({ width: s.width, height: s.height, data: fromBytes(s.data) }));
      if (storedMaps.length > 0) added.forEach((a) => checkAspect(`nominal score map ${a.name}`, a.map, storedMaps[0]));
      const calibration = calibrate([...storedMaps, ...added.map((a) => a.map)]);
      await tx.nominalScoreMap.createMany({
        data: added.map((a) => ({ productId, name: a.name, width: a.map.width, height: a.map.height, data: toBytes(a.map.data) })),
      });
      await tx.product.update({ where: { id: productId }, data: { calibration: calibrationToJson(calibration) as object } });
    },
    { timeout: 60_000 },
  );
}
