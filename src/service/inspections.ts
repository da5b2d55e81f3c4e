// Inspection commands: submit (validate every input within the request, in a worker thread; store, queue),
// reprocess, delete.
// A rejected submission stores nothing: all decoding and checks happen before one transaction writes the
// inspection and its inputs, so a failure at any step leaves no inspection or a complete one. Without a
// score map (BUILTIN products with a bank) the job computes it with the built-in scorer. Products outside
// the caller's key scope answer as missing ones.

import { TttError } from '../core/errors.ts';
import { checkOptionLimits } from '../core/cost.ts';
import { resolveOptions, type TttOptions } from '../core/options.ts';
import { planRun } from '../core/plan.ts';
import { Prisma } from '../generated/prisma/client.ts';
import type { BlobKind } from '../generated/prisma/enums.ts';
import { offload } from '../io/offload.ts';
import { inspectionScope, productScope } from './auth.ts';
import type { ServiceContext } from './context.ts';
import { step } from './faults.ts';
import { localId, notFound } from './ids.ts';
import { parseOptionPairs, type OptionPair } from './options.ts';
import { isUniqueViolation } from './prisma-errors.ts';
import { checkUploadSize, readUpload, type FileLike, type Upload } from './uploads.ts';

export interface SubmitInput {
  productId: string;
  image: FileLike;
  scoreMap?: FileLike | null;
  features?: FileLike | null;
  /** The organized point cloud: its 3-D features join the image's; its holes are masked out. */
  pointCloud?: FileLike | null;
  groundTruth?: FileLike | null;
  externalId?: string | null;
  options?: readonly OptionPair[] | null;
}

const MAX_EXTERNAL_ID = 200;

/**
 * What a refused station is told to wait, on average, before it tries again (HTTP Retry-After, with
 * jitter: see retryAfterWithJitter).
 */
export const QUEUE_RETRY_AFTER_SECONDS = 5;

/**
 * A Retry-After in whole seconds drawn uniformly from [ceil(base / 2), base + floor(base / 2)] (base 5:
 * 3 to 7 s; mean base). Clients refused together (a full queue refuses every station at once) would all
 * come back together after a fixed delay, and be refused or delayed together again: spread, they return
 * a few at a time.
 */
export function retryAfterWithJitter(baseSeconds: number, random: () => number = Math.random): number {
  const low = Math.ceil(baseSeconds / 2);
  const high = baseSeconds + Math.floor(baseSeconds / 2);
  return Math.max(1, low + Math.min(high - low, Math.floor(random() * (high - low + 1))));
}

/**
 * Backpressure: refuses new work while MAX_QUEUE_DEPTH inspections are QUEUED or RUNNING (counted on the
 * shared database, so across every server), before anything is decoded. Concurrent submissions may each
 * pass the check: the limit can be exceeded by at most the number of submissions in flight at once. The
 * refusal is the typed QueueFullError, and the HTTP answer 429 with Retry-After (ctx.admission).
 */
async function checkQueueDepth(ctx: ServiceContext): Promise<void> {
  const limit = ctx.config.maxQueueDepth;
  const depth = await ctx.db.inspection.count({ where: { status: { in: ['QUEUED', 'RUNNING'] } } });
  if (depth >= limit) {
    if (ctx.admission) ctx.admission.retryAfterSeconds = retryAfterWithJitter(QUEUE_RETRY_AFTER_SECONDS);
    throw new TttError('QUEUE_FULL', `the processing queue is full (${depth} inspections queued or running, limit ${limit}): nothing was stored; retry later`);
  }
}

/**
 * Stores and queues a new inspection, or finds the existing one of a retried externalId; `load` reads what
 * the caller returns, before the processor can pick the new inspection up (so it is returned QUEUED).
 */
export async function submitInspection<T>(ctx: ServiceContext, input: SubmitInput, load: (id: string) => Promise<T>): Promise<T> {
  const { db, config } = ctx;
  const productId = localId('Product', input.productId);
  const product = await db.product.findFirst({
    where: { AND: [{ id: productId }, productScope(ctx.auth)] },
    select: { id: true, options: true, optionLimits: true, scorer: true },
  });
  if (!product) throw notFound('Product', input.productId);

  const externalId = input.externalId ?? null;
  if (externalId !== null) {
    if (externalId.length === 0 || externalId.length > MAX_EXTERNAL_ID) {
      throw new TttError('INVALID_INPUT', `externalId must have 1 to ${MAX_EXTERNAL_ID} characters`);
    }
    const existing = await db.inspection.findUnique({ where: { productId_externalId: { productId, externalId } }, select: { id: true } });
    if (existing) return load(existing.id);
  }
  await checkQueueDepth(ctx);

  const files = { image: input.image, scoreMap: input.scoreMap, features: input.features, pointCloud: input.pointCloud, groundTruth: input.groundTruth };
  for (const [field, file] of Object.entries(files)) if (file) checkUploadSize(file, field, config.maxUploadBytes);
  if (!input.scoreMap) {
    if (product.scorer !== 'BUILTIN') throw new TttError('INVALID_INPUT', 'scoreMap is required: the product has no built-in scorer (scorer EXTERNAL)');
    // One query: whether the bank exists, and how many nominal images came with point clouds.
    const scorer = await db.product.findFirst({
      where: { id: productId, NOT: { scorerBank: null } },
      select: { _count: { select: { nominalImages: { where: { NOT: { pointCloud: null } } } } } },
    });
    if (!scorer) {
      throw new TttError('INVALID_INPUT', 'scoreMap is required until the product\'s built-in scorer has a memory bank: add nominal images with addNominalSamples first');
    }
    if (scorer._count.nominalImages > 0 && !input.pointCloud) {
      throw new TttError('INVALID_INPUT', "pointCloud is required: the product's built-in scorer holds image and 3-D features (its nominal images came with point clouds); give the part's point cloud, or a scoreMap");
    }
  }

  const overrides = parseOptionPairs(input.options);
  const productOptions = resolveOptions(product.options as Record<string, unknown>);
  const options = resolveOptions(overrides, productOptions);
  checkOptionLimits(options, productOptions, product.optionLimits as Record<string, unknown>);

  const image: Upload = await readUpload(input.image);
  const scoreMap: Upload | null = input.scoreMap ? await readUpload(input.scoreMap) : null;
  const features: Upload | null = input.features ? await readUpload(input.features) : null;
  const pointCloud: Upload | null = input.pointCloud ? await readUpload(input.pointCloud) : null;
  const groundTruth: Upload | null = input.groundTruth ? await readUpload(input.groundTruth) : null;
  // Decoded and validated in a worker thread (io/offloadTasks.ts): the pixel loops stay off the event loop.
  const asFile = (u: Upload | null) => (u ? { name: u.name, bytes: u.bytes } : null);
  const device = await ctx.processor.deviceLimits();
  const shape = await offload().run('checkSubmission', [
    { image: asFile(image)!, scoreMap: asFile(scoreMap), features: asFile(features), pointCloud: asFile(pointCloud), groundTruth: asFile(groundTruth) },
    options,
    config.maxImagePixels,
    device,
  ]);
  // Whether the run fits the processing device (buffer sizes and dispatches for these sizes and options):
  // what cannot run is refused here, typed, instead of failing in the job.
  await planRun(device, shape, options);
  const decodedImage = shape.image;

  const blobs = [
    { kind: 'IMAGE' as const, upload: image },
    { kind: 'SCORE_MAP' as const, upload: scoreMap },
    { kind: 'FEATURES' as const, upload: features },
    { kind: 'POINT_CLOUD' as const, upload: pointCloud },
    { kind: 'GROUND_TRUTH' as const, upload: groundTruth },
  ].flatMap(({ kind, upload }) => (upload ? [{ kind, name: upload.name, data: upload.bytes }] : []));
  let id: string;
  try {
    id = await db.$transaction(
      async (tx) => {
        const row = await tx.inspection.create({
          data: {
            productId,
            externalId,
            options: overrides as object,
            width: decodedImage.width,
            height: decodedImage.height,
            channels: decodedImage.channels,
            scoreSource: scoreMap ? 'UPLOADED' : 'BUILTIN',
          },
          select: { id: true },
        });
        await step(ctx.faults, 'submit:inspection');
        for (const blob of blobs) {
          await tx.inspectionBlob.create({ data: { inspectionId: row.id, ...blob }, select: { kind: true } });
          await step(ctx.faults, `submit:blob:${blob.kind}`);
        }
        return row.id;
      },
      { timeout: 60_000 },
    );
  } catch (e) {
    // A concurrent retry with the same externalId won the insert: return its inspection.
    if (externalId !== null && isUniqueViolation(e)) {
      const existing = await db.inspection.findUnique({ where: { productId_externalId: { productId, externalId } }, select: { id: true } });
      if (existing) return load(existing.id);
    }
    throw e;
  }
  // Committed: the inspection is complete and QUEUED. Should anything below fail, the retry of its
  // externalId returns it, and the next start re-queues it (recoverUnfinished).
  await step(ctx.faults, 'submit:committed');
  // Loaded before it is queued (so it is returned QUEUED), and queued even when loading fails.
  try {
    return await load(id);
  } finally {
    await ctx.processor.enqueue(id);
    ctx.events.publish({ id, productId, status: 'QUEUED' });
  }
}

/**
 * Runs a finished (SUCCEEDED or FAILED) inspection again on its stored inputs, with new options if given;
 * a map the built-in scorer computed is dropped with the results and computed again with the current bank.
 */
export async function reprocessInspection<T>(
  ctx: ServiceContext,
  globalIdValue: string,
  options: readonly OptionPair[] | null | undefined,
  load: (id: string) => Promise<T>,
): Promise<T> {
  const { db } = ctx;
  const id = localId('Inspection', globalIdValue);
  const current = await db.inspection.findFirst({
    where: { id, ...inspectionScope(ctx.auth) },
    select: { status: true, productId: true, scoreSource: true, product: { select: { options: true, optionLimits: true } } },
  });
  if (!current) throw notFound('Inspection', globalIdValue);
  if (current.status === 'QUEUED' || current.status === 'RUNNING') {
    throw new TttError('INVALID_INPUT', `the inspection is ${current.status}: only a SUCCEEDED or FAILED inspection can be reprocessed`);
  }
  await checkQueueDepth(ctx);
  const overrides = options ? parseOptionPairs(options) : undefined;
  if (overrides) {
    const productOptions = resolveOptions(current.product.options as Record<string, unknown>);
    const options = resolveOptions(overrides, productOptions);
    checkOptionLimits(options, productOptions, current.product.optionLimits as Record<string, unknown>);
    await checkStoredRunFits(ctx, id, options);
  }
  await db.$transaction(async (tx) => {
    const reset = await tx.inspection.updateMany({
      where: { id, status: { in: ['SUCCEEDED', 'FAILED'] } },
      data: {
        status: 'QUEUED',
        // The previous job no longer owns it: a redelivery of that job skips it; enqueue creates a new one.
        jobId: null,
        leaseId: null,
        ...(overrides ? { options: overrides as object } : {}),
        startedAt: null,
        finishedAt: null,
        errorCode: null,
        errorMessage: null,
        verdict: null,
        imageScore: null,
        defectFraction: null,
        regionCount: null,
        anomalousLabels: null,
        nominalLabels: null,
        classifierLoss: null,
        classifierEpochs: null,
        gateThreshold: null,
        emptyReason: null,
        stageMs: Prisma.DbNull,
        totalMs: null,
        precision: null,
        recall: null,
        f1: null,
        iou: null,
      },
    });
    if (reset.count === 0) throw new TttError('INVALID_INPUT', 'the inspection changed meanwhile: only a SUCCEEDED or FAILED inspection can be reprocessed');
    await tx.region.deleteMany({ where: { inspectionId: id } });
    const results: BlobKind[] = current.scoreSource === 'BUILTIN' ? ['MASK', 'SCORE_MAP'] : ['MASK'];
    await tx.inspectionBlob.deleteMany({ where: { inspectionId: id, kind: { in: results } } });
  });
  try {
    return await load(id);
  } finally {
    await ctx.processor.enqueue(id);
    ctx.events.publish({ id, productId: current.productId, status: 'QUEUED' });
  }
}

/**
 * The submission's device check for new options on an inspection's stored inputs: decoded and checked in
 * the worker thread as at submission (the job decodes them the same way), planned here.
 */
async function checkStoredRunFits(ctx: ServiceContext, id: string, options: TttOptions): Promise<void> {
  const blobs = await ctx.db.inspectionBlob.findMany({ where: { inspectionId: id, kind: { in: ['IMAGE', 'SCORE_MAP', 'FEATURES', 'POINT_CLOUD'] } }, select: { kind: true, name: true, data: true } });
  const file = (kind: BlobKind) => {
    const b = blobs.find((x) => x.kind === kind);
    return b ? { name: b.name, bytes: b.data } : null;
  };
  const image = file('IMAGE');
  if (!image) throw new TttError('INVALID_INPUT', 'the inspection has no stored image');
  const device = await ctx.processor.deviceLimits();
  const shape = await offload().run('checkSubmission', [
    { image, scoreMap: file('SCORE_MAP'), features: file('FEATURES'), pointCloud: file('POINT_CLOUD'), groundTruth: null },
    options,
    ctx.config.maxImagePixels,
    device,
  ]);
  await planRun(device, shape, options);
}

export async function deleteInspection(ctx: ServiceContext, globalIdValue: string): Promise<string> {
  const id = localId('Inspection', globalIdValue);
  const row = await ctx.db.inspection.findFirst({ where: { id, ...inspectionScope(ctx.auth) }, select: { productId: true } });
  const deleted = row ? await ctx.db.inspection.deleteMany({ where: { id } }) : { count: 0 };
  if (!row || deleted.count === 0) throw notFound('Inspection', globalIdValue);
  ctx.events.publish({ id, productId: row.productId, status: 'DELETED' });
  return id;
}
