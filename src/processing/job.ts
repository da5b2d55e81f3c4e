// One inspection job: claim it (QUEUED -> RUNNING, under a fresh lease), decode its stored inputs, score the
// image with the product's built-in scorer when no map was uploaded, segment on the GPU, store mask,
// regions, verdict, figures and the computed map (-> SUCCEEDED), or the error (-> FAILED, inputs kept for a
// reprocess). Results are written only while the attempt still holds its lease, replacing whatever an
// earlier attempt left, so a job delivered twice (a worker killed mid-run) completes the inspection once.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { calibrationFromJson, type CalibrationJson } from '../core/calibration.ts';
import { INPUT_ERROR_CODES, TttError, type ErrorCode } from '../core/errors.ts';
import type { Gpu, GpuArray } from '../core/gpu.ts';
import { confusion, pixelMetrics, type PixelMetrics } from '../core/metrics.ts';
import { resolveOptions } from '../core/options.ts';
import { segment } from '../core/pipeline.ts';
import type { FeatureTensor, ImageTensor, PointCloud, ScoreMap, SegmentationResult, StagePlacement } from '../core/types.ts';
import type { PrismaClient } from '../db.ts';
import type { Prisma } from '../generated/prisma/client.ts';
import type { BlobKind } from '../generated/prisma/enums.ts';
import { decodeImage, decodeMask, encodeMaskPng } from '../io/image.ts';
import { encodeNpy } from '../io/npy.ts';
import { decodeFeatures, decodeScoreMap } from '../io/scoremap.ts';
import { decodePointCloud } from '../io/pointcloud.ts';
import type { InspectionEvents } from '../service/events.ts';
import type { Logger } from '../service/log.ts';
import { inspectionRetries, recordInspection } from '../service/metrics.ts';
import type { ScorerCache, StoredBank } from './scorers.ts';

/** What one job may use: the decode limit of the submission, and a time limit. */
export interface JobLimits {
  /**
   * MAX_IMAGE_PIXELS: the stored inputs are decoded under the same limit as the submission checked them
   * against, so that an accepted inspection never fails on a different one.
   */
  maxImagePixels: number;
  /**
   * Wall-clock limit of one attempt in milliseconds, from its claim (GPU wait included): checked between
   * the pipeline's stages; past it the job FAILs with TIMEOUT and gives the device to the next job.
   */
  timeoutMs: number;
}

export interface JobContext {
  db: PrismaClient;
  limits: JobLimits;
  events: InspectionEvents;
  logger: Logger;
  /** Runs `fn` with exclusive use of the process's GPU device. */
  withGpu<T>(fn: (gpu: Gpu) => Promise<T>): Promise<T>;
  /** The loaded banks of BUILTIN products (used inside withGpu). */
  scorers: ScorerCache;
  /** Names the process in the attempt log (host:pid). */
  worker?: string;
}

/** A delivery of a durable queue's job (src/processing/queue.ts); absent for the in-process processor. */
export interface JobDelivery {
  /**
   * The queue's job id: only the job that owns the inspection (Inspection.jobId) may run it. Absent for the
   * in-process processor, which claims a QUEUED inspection as a first attempt does.
   */
  jobId?: string;
  /** Whether the job is retried if this attempt fails; on the last attempt a failure is final. */
  retriesLeft: boolean;
}

/** The computed map is stored as float32 .npy, like an uploaded one, so that scoreMapUrl serves it. */
export const COMPUTED_MAP_NAME = 'score-map.npy';

/** RETRY: a transient failure; the inspection is QUEUED again and the queue must redeliver the job. */
export type JobOutcome = 'SUCCEEDED' | 'FAILED' | 'SKIPPED' | 'RETRY';

/**
 * Failures that the same inputs reproduce every time (the typed input errors): retrying cannot help, so
 * they are final at once. Device losses, unexpected errors and crashes are retried by a durable queue.
 */
const DETERMINISTIC = new Set<ErrorCode>([...INPUT_ERROR_CODES, 'TIMEOUT']);

export function isDeterministicFailure(e: unknown): boolean {
  return e instanceof TttError && DETERMINISTIC.has(e.code);
}

type StoredBlob = { kind: BlobKind; name: string; data: Uint8Array };

export interface StoredInputs {
  image: ImageTensor;
  scoreMap: ScoreMap | null;
  features?: FeatureTensor;
  pointCloud: PointCloud | null;
  truth: Uint8Array | null;
}

/**
 * Decodes an inspection's stored inputs under the submission's limits (MAX_IMAGE_PIXELS for every raster
 * and array, checked from the headers before any pixel is decoded).
 */
export async function decodeStoredInputs(blobs: readonly StoredBlob[], limits: Pick<JobLimits, 'maxImagePixels'>): Promise<StoredInputs> {
  const blob = (kind: BlobKind) => blobs.find((b) => b.kind === kind);
  const maxPixels = limits.maxImagePixels;
  const imageBlob = blob('IMAGE');
  if (!imageBlob) throw new TttError('INVALID_INPUT', 'the inspection has no stored image');
  const image = await decodeImage(imageBlob.data, imageBlob.name, { maxPixels });
  const mapBlob = blob('SCORE_MAP');
  const scoreMap = mapBlob ? await decodeScoreMap(mapBlob.data, mapBlob.name, { maxPixels }) : null;
  const featuresBlob = blob('FEATURES');
  const features = featuresBlob ? await decodeFeatures(featuresBlob.data, featuresBlob.name) : undefined;
  const cloudBlob = blob('POINT_CLOUD');
  const pointCloud = cloudBlob ? decodePointCloud(cloudBlob.data, cloudBlob.name, { maxPixels }) : null;
  const truthBlob = blob('GROUND_TRUTH');
  const truth = truthBlob ? await decodeMask(truthBlob.data, truthBlob.name, image, maxPixels) : null;
  return { image, scoreMap, features, pointCloud, truth };
}

/** The inspection was deleted, re-queued or claimed by a redelivery while the job ran: results are dropped. */
class Superseded extends Error {}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

async function readBank(db: PrismaClient, productId: string): Promise<StoredBank> {
  const p = await db.product.findUnique({ where: { id: productId }, select: { scorerBank: true, updatedAt: true } });
  if (!p?.scorerBank) throw new TttError('INVALID_INPUT', 'no score map was uploaded and the product has no built-in scorer bank to compute one');
  return { bytes: p.scorerBank, version: p.updatedAt.getTime() };
}

/**
 * Takes the inspection under a new lease and logs the attempt. In-process: a QUEUED inspection. From a
 * queue: an inspection its job owns, QUEUED or still RUNNING (the job is redelivered after its previous
 * attempt died or timed out: that attempt is marked ABANDONED and loses its lease).
 */
async function claim(ctx: JobContext, id: string, startedAt: Date, delivery?: JobDelivery): Promise<string | null> {
  const leaseId = randomUUID();
  const worker = ctx.worker ?? `${hostname()}:${process.pid}`;
  return ctx.db.$transaction(async (tx) => {
    const where = delivery?.jobId ? { id, jobId: delivery.jobId, status: { in: ['QUEUED' as const, 'RUNNING' as const] } } : { id, status: 'QUEUED' as const };
    const [claimed] = await tx.inspection.updateManyAndReturn({
      where,
      data: { status: 'RUNNING', leaseId, attempts: { increment: 1 }, startedAt, finishedAt: null, errorCode: null, errorMessage: null },
      select: { attempts: true },
    });
    if (!claimed) return null;
    const { attempts } = claimed;
    await tx.inspectionAttempt.updateMany({ where: { inspectionId: id, outcome: null }, data: { outcome: 'ABANDONED', finishedAt: startedAt } });
    await tx.inspectionAttempt.create({ data: { inspectionId: id, attempt: attempts, leaseId, jobId: delivery?.jobId ?? null, worker, startedAt } });
    return leaseId;
  });
}

export async function runInspection(ctx: JobContext, id: string, delivery?: JobDelivery): Promise<JobOutcome> {
  const { db, events, logger } = ctx;
  const t0 = performance.now();
  const startedAt = new Date();
  const leaseId = await claim(ctx, id, startedAt, delivery);
  if (!leaseId) return 'SKIPPED';
  const endAttempt = (tx: Pick<PrismaClient, 'inspectionAttempt'>, outcome: string, error?: { code: string; message: string }) =>
    tx.inspectionAttempt.updateMany({
      where: { inspectionId: id, leaseId },
      data: { outcome, finishedAt: new Date(), errorCode: error?.code ?? null, errorMessage: error?.message ?? null },
    });
  const row = await db.inspection.findUnique({
    where: { id },
    select: {
      productId: true,
      options: true,
      scoreSource: true,
      product: { select: { options: true, calibration: true, updatedAt: true } },
      blobs: { where: { kind: { in: ['IMAGE', 'SCORE_MAP', 'FEATURES', 'POINT_CLOUD', 'GROUND_TRUTH'] } }, select: { kind: true, name: true, data: true } },
    },
  });
  if (!row) return 'SKIPPED'; // deleted right after the claim
  events.publish({ id, productId: row.productId, status: 'RUNNING' });
  const timeLimit = ctx.limits.timeoutMs;
  /** The attempt's time limit, checked between stages: the stage in flight finishes, no further one starts. */
  const checkDeadline = (after: string) => {
    if (performance.now() - t0 > timeLimit) {
      throw new TttError('TIMEOUT', `the inspection exceeded the job time limit of ${timeLimit / 1000} s (JOB_TIMEOUT_SECONDS); it was stopped after ${after}`);
    }
  };
  try {
    const stageMs: Record<string, number> = {};
    const placement: Record<string, StagePlacement> = { decode: 'host', encode: 'host' };
    let t = performance.now();
    if (!row.blobs.some((b) => b.kind === 'SCORE_MAP') && row.scoreSource !== 'BUILTIN') throw new TttError('INVALID_INPUT', 'the inspection has no stored score map');
    const { image, scoreMap: uploadedMap, features, pointCloud, truth } = await decodeStoredInputs(row.blobs, ctx.limits);
    const options = resolveOptions(row.options as Record<string, unknown>, resolveOptions(row.product.options as Record<string, unknown>));
    const calibration = row.product.calibration ? calibrationFromJson(row.product.calibration as unknown as CalibrationJson) : null;
    stageMs.decode = round(performance.now() - t);
    checkDeadline('decoding');

    const { result, computedMap } = await ctx.withGpu(async (gpu) => {
      checkDeadline('waiting for the GPU'); // the wait for the device counts
      let computedMap: ScoreMap | null = null;
      // The computed map stays on the device for segment (read back once, for storing; not uploaded again).
      let onDevice: GpuArray | null = null;
      try {
        if (!uploadedMap) {
          const ts = performance.now();
          const scorer = await ctx.scorers.get(gpu, row.productId, row.product.updatedAt.getTime(), () => readBank(db, row.productId));
          const scored = await scorer.score(image, pointCloud, image, true);
          computedMap = scored.anomalyMap;
          onDevice = scored.device ?? null;
          stageMs.score = round(performance.now() - ts);
          placement.score = 'gpu';
          checkDeadline('the score stage');
        }
        const scoreMap = uploadedMap ?? computedMap!;
        const input = { image, scoreMap, scoreMapDevice: onDevice, features, calibration, pointCloud };
        const result: SegmentationResult = await segment(gpu, input, options, { checkpoint: (stage) => checkDeadline(`the ${stage} stage`) });
        return { result, computedMap };
      } finally {
        gpu.release(onDevice);
      }
    });
    for (const [stage, ms] of Object.entries(result.timings)) stageMs[stage] = round(ms);
    Object.assign(placement, result.placement);

    t = performance.now();
    const maskPng = await encodeMaskPng(result.predMask, result.width, result.height);
    const metrics: PixelMetrics | null = truth ? pixelMetrics(confusion(result.predMask, truth)) : null;
    stageMs.encode = round(performance.now() - t);

    const finishedAt = new Date();
    const totalMs = round(performance.now() - t0);
    await db.$transaction(async (tx) => {
      const done = await tx.inspection.updateMany({
        where: { id, status: 'RUNNING', leaseId },
        data: {
          status: 'SUCCEEDED',
          finishedAt,
          verdict: result.predLabel ? 'DEFECTIVE' : 'NOMINAL',
          imageScore: result.predScore,
          defectFraction: result.defectFraction,
          regionCount: result.regions.length,
          anomalousLabels: result.pseudoLabels?.anomalous ?? null,
          nominalLabels: result.pseudoLabels?.nominal ?? null,
          classifierLoss: result.classifier?.loss ?? null,
          classifierEpochs: result.classifier?.epochs ?? null,
          gateThreshold: result.gate?.threshold ?? null,
          emptyReason: result.emptyReason,
          stageMs: { ...stageMs, placement },
          totalMs,
          precision: metrics?.precision ?? null,
          recall: metrics?.recall ?? null,
          f1: metrics?.f1 ?? null,
          iou: metrics?.iou ?? null,
        },
      });
      if (done.count === 0) throw new Superseded();
      // Idempotent: whatever an earlier attempt of this inspection stored is replaced, never added to.
      await tx.region.deleteMany({ where: { inspectionId: id } });
      const produced: BlobKind[] = computedMap ? ['MASK', 'SCORE_MAP'] : ['MASK'];
      await tx.inspectionBlob.deleteMany({ where: { inspectionId: id, kind: { in: produced } } });
      await endAttempt(tx, 'SUCCEEDED');
      await tx.region.createMany({
        data: result.regions.map((r) => ({
          inspectionId: id,
          index: r.id,
          area: r.area,
          bboxX: r.bbox.x,
          bboxY: r.bbox.y,
          bboxWidth: r.bbox.width,
          bboxHeight: r.bbox.height,
          centroidX: r.centroid.x,
          centroidY: r.centroid.y,
          meanScore: r.meanScore,
          maxScore: r.maxScore,
        })),
      });
      await tx.inspectionBlob.create({ data: { inspectionId: id, kind: 'MASK', name: 'mask.png', data: new Uint8Array(maskPng) } });
      if (computedMap) {
        const npy = encodeNpy(computedMap.data, [computedMap.height, computedMap.width]);
        await tx.inspectionBlob.create({ data: { inspectionId: id, kind: 'SCORE_MAP', name: COMPUTED_MAP_NAME, data: new Uint8Array(npy) } });
      }
    });
    recordInspection({ status: 'SUCCEEDED', verdict: result.predLabel ? 'DEFECTIVE' : 'NOMINAL', stageMs, totalMs });
    events.publish({ id, productId: row.productId, status: 'SUCCEEDED' });
    logger.log('info', 'inspection', {
      inspection: id,
      product: row.productId,
      status: 'SUCCEEDED',
      verdict: result.predLabel ? 'DEFECTIVE' : 'NOMINAL',
      imageScore: result.predScore,
      defectFraction: result.defectFraction,
      regions: result.regions.length,
      ms: round(performance.now() - t0),
      stageMs,
    });
    return 'SUCCEEDED';
  } catch (e) {
    if (e instanceof Superseded) {
      await endAttempt(db, 'SUPERSEDED');
      logger.log('info', 'inspection', { inspection: id, status: 'SUPERSEDED', ms: round(performance.now() - t0) });
      return 'SKIPPED';
    }
    const expected = e instanceof TttError && e.code !== 'INTERNAL';
    const code = e instanceof TttError ? e.code : 'INTERNAL';
    // Unexpected failures are masked in the stored message, as in API responses; the log has the details.
    const message = expected ? (e as TttError).message : `unexpected processing error (logged by the server for inspection ${id})`;
    const ms = round(performance.now() - t0);
    /** Ends this attempt with `outcome` if the inspection is still under this lease; false when it is not. */
    const settle = (data: Prisma.InspectionUpdateManyMutationInput, outcome: 'RETRY' | 'FAILED') =>
      db.$transaction(async (tx) => {
        const r = await tx.inspection.updateMany({ where: { id, status: 'RUNNING', leaseId }, data: { ...data, errorCode: code, errorMessage: message, totalMs: ms } });
        if (r.count > 0) await endAttempt(tx, outcome, { code, message });
        return r.count > 0;
      });
    if (delivery?.retriesLeft && !isDeterministicFailure(e)) {
      // Transient: back to QUEUED (the lease released) for the queue's next delivery of the same job.
      const requeued = await settle({ status: 'QUEUED', leaseId: null, startedAt: null }, 'RETRY');
      logger.log('warn', 'inspection', { inspection: id, product: row.productId, status: 'RETRY', code, ms, error: e });
      if (!requeued) return 'SKIPPED';
      inspectionRetries.inc();
      events.publish({ id, productId: row.productId, status: 'QUEUED' });
      return 'RETRY';
    }
    const failed = await settle({ status: 'FAILED', finishedAt: new Date() }, 'FAILED');
    logger.log(expected ? 'warn' : 'error', 'inspection', { inspection: id, product: row.productId, status: 'FAILED', code, ms, error: e });
    if (!failed) return 'SKIPPED';
    recordInspection({ status: 'FAILED' });
    events.publish({ id, productId: row.productId, status: 'FAILED' });
    return 'FAILED';
  }
}
