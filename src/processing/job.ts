// One inspection job: claim it (QUEUED -> RUNNING), decode its stored inputs, score the image with the
// product's built-in scorer when no map was uploaded, segment on the GPU, store mask, regions, verdict,
// figures and the computed map (-> SUCCEEDED), or the error (-> FAILED, inputs kept for a reprocess).
// Writes are conditional on the status, so a job never resurrects a deleted or re-queued row.

import { calibrationFromJson, type CalibrationJson } from '../core/calibration.ts';
import { TttError } from '../core/errors.ts';
import type { Gpu } from '../core/gpu.ts';
import { confusion, pixelMetrics, type PixelMetrics } from '../core/metrics.ts';
import { resolveOptions } from '../core/options.ts';
import { segment } from '../core/pipeline.ts';
import type { FeatureTensor, ScoreMap, SegmentationResult } from '../core/types.ts';
import type { PrismaClient } from '../db.ts';
import type { BlobKind } from '../generated/prisma/enums.ts';
import { decodeImage, decodeMask, encodeMaskPng } from '../io/image.ts';
import { encodeNpy } from '../io/npy.ts';
import { decodeFeatures, decodeScoreMap } from '../io/scoremap.ts';
import { decodePointCloud } from '../io/pointcloud.ts';
import type { InspectionEvents } from '../server/events.ts';
import type { Logger } from '../server/log.ts';
import type { ScorerCache, StoredBank } from './scorers.ts';

export interface JobContext {
  db: PrismaClient;
  events: InspectionEvents;
  logger: Logger;
  /** Runs `fn` with exclusive use of the process's GPU device. */
  withGpu<T>(fn: (gpu: Gpu) => Promise<T>): Promise<T>;
  /** The loaded banks of BUILTIN products (used inside withGpu). */
  scorers: ScorerCache;
}

/** The computed map is stored as float32 .npy, like an uploaded one, so that scoreMapUrl serves it. */
export const COMPUTED_MAP_NAME = 'score-map.npy';

export type JobOutcome = 'SUCCEEDED' | 'FAILED' | 'SKIPPED';

/** The inspection was deleted or re-queued while the job ran: its results are dropped. */
class Superseded extends Error {}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

async function readBank(db: PrismaClient, productId: string): Promise<StoredBank> {
  const p = await db.product.findUnique({ where: { id: productId }, select: { scorerBank: true, updatedAt: true } });
  if (!p?.scorerBank) throw new TttError('INVALID_INPUT', 'no score map was uploaded and the product has no built-in scorer bank to compute one');
  return { bytes: p.scorerBank, version: p.updatedAt.getTime() };
}

export async function runInspection(ctx: JobContext, id: string): Promise<JobOutcome> {
  const { db, events, logger } = ctx;
  const t0 = performance.now();
  const startedAt = new Date();
  const claimed = await db.inspection.updateMany({
    where: { id, status: 'QUEUED' },
    data: { status: 'RUNNING', startedAt, finishedAt: null, errorCode: null, errorMessage: null },
  });
  if (claimed.count === 0) return 'SKIPPED';
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
  try {
    const blob = (kind: BlobKind) => row.blobs.find((b) => b.kind === kind);
    const stageMs: Record<string, number> = {};
    let t = performance.now();
    const imageBlob = blob('IMAGE');
    const mapBlob = blob('SCORE_MAP');
    if (!imageBlob) throw new TttError('INVALID_INPUT', 'the inspection has no stored image');
    if (!mapBlob && row.scoreSource !== 'BUILTIN') throw new TttError('INVALID_INPUT', 'the inspection has no stored score map');
    const image = await decodeImage(imageBlob.data, imageBlob.name);
    const uploadedMap: ScoreMap | null = mapBlob ? await decodeScoreMap(mapBlob.data, mapBlob.name) : null;
    const featuresBlob = blob('FEATURES');
    const features: FeatureTensor | undefined = featuresBlob ? await decodeFeatures(featuresBlob.data, featuresBlob.name) : undefined;
    const cloudBlob = blob('POINT_CLOUD');
    const pointCloud = cloudBlob ? decodePointCloud(cloudBlob.data, cloudBlob.name) : null;
    const truthBlob = blob('GROUND_TRUTH');
    const truth = truthBlob ? await decodeMask(truthBlob.data, truthBlob.name, image) : null;
    const options = resolveOptions(row.options as Record<string, unknown>, resolveOptions(row.product.options as Record<string, unknown>));
    const calibration = row.product.calibration ? calibrationFromJson(row.product.calibration as unknown as CalibrationJson) : null;
    stageMs.decode = round(performance.now() - t);

    const { result, computedMap } = await ctx.withGpu(async (gpu) => {
      let computedMap: ScoreMap | null = null;
      if (!uploadedMap) {
        const ts = performance.now();
        const scorer = await ctx.scorers.get(gpu, row.productId, row.product.updatedAt.getTime(), () => readBank(db, row.productId));
        computedMap = (await scorer.score(image, pointCloud)).anomalyMap;
        stageMs.score = round(performance.now() - ts);
      }
      const scoreMap = uploadedMap ?? computedMap!;
      const result: SegmentationResult = await segment(gpu, { image, scoreMap, features, calibration, pointCloud }, options);
      return { result, computedMap };
    });
    for (const [stage, ms] of Object.entries(result.timings)) stageMs[stage] = round(ms);

    t = performance.now();
    const maskPng = await encodeMaskPng(result.predMask, result.width, result.height);
    const metrics: PixelMetrics | null = truth ? pixelMetrics(confusion(result.predMask, truth)) : null;
    stageMs.encode = round(performance.now() - t);

    const finishedAt = new Date();
    await db.$transaction(async (tx) => {
      const done = await tx.inspection.updateMany({
        where: { id, status: 'RUNNING', startedAt },
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
          stageMs,
          totalMs: round(performance.now() - t0),
          precision: metrics?.precision ?? null,
          recall: metrics?.recall ?? null,
          f1: metrics?.f1 ?? null,
          iou: metrics?.iou ?? null,
        },
      });
      if (done.count === 0) throw new Superseded();
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
      logger.log('info', 'inspection', { inspection: id, status: 'SUPERSEDED', ms: round(performance.now() - t0) });
      return 'SKIPPED';
    }
    const expected = e instanceof TttError && e.code !== 'INTERNAL';
    const code = e instanceof TttError ? e.code : 'INTERNAL';
    // Unexpected failures are masked in the stored message, as in API responses; the log has the details.
    const message = expected ? (e as TttError).message : `unexpected processing error (logged by the server for inspection ${id})`;
    const failed = await db.inspection.updateMany({
      where: { id, status: 'RUNNING', startedAt },
      data: { status: 'FAILED', finishedAt: new Date(), errorCode: code, errorMessage: message, totalMs: round(performance.now() - t0) },
    });
    logger.log(expected ? 'warn' : 'error', 'inspection', {
      inspection: id,
      product: row.productId,
      status: 'FAILED',
      code,
      ms: round(performance.now() - t0),
      error: e,
    });
    if (failed.count === 0) return 'SKIPPED';
    events.publish({ id, productId: row.productId, status: 'FAILED' });
    return 'FAILED';
  }
}
