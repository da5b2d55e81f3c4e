// The durable processor (PostgreSQL): every queued inspection is a job of a pg-boss queue in the service's
// own database, taken by any number of worker processes (`npm run worker`, or the server's embedded
// worker), each with one GPU device. At-least-once delivery: a job whose worker dies is failed after the
// visibility timeout and delivered again; job.ts makes the results idempotent (one lease per attempt).

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import PgBoss from 'pg-boss';
import type { Gpu } from '../core/gpu.ts';
import type { PrismaClient } from '../db.ts';
import type { QueueSettings, ScorerCacheBounds } from '../service/config.ts';
import type { InspectionEvents } from '../service/events.ts';
import type { Logger } from '../service/log.ts';
import { recordInspection } from '../service/metrics.ts';
import { runInspection, type JobContext, type JobLimits } from './job.ts';
import { createGpuLane, defaultAcquire, type InspectionProcessor } from './processor.ts';
import { createScorerCache } from './scorers.ts';

export const INSPECTION_QUEUE = 'inspection';
/** Jobs whose every delivery failed without the inspection being finished (the workers died): -> FAILED. */
export const DEAD_LETTER_QUEUE = 'inspection-dead';

interface JobData {
  inspectionId: string;
  jobId: string;
}

/** An enqueue that did not reach the queue (the process died in between) is repaired after this long. */
const REPAIR_AFTER_MS = 30_000;

export interface QueueProcessorOptions {
  db: PrismaClient;
  /** The PostgreSQL connection string (pg-boss keeps its tables in the `pgboss` schema there). */
  url: string;
  events: InspectionEvents;
  logger: Logger;
  settings: QueueSettings;
  /**
   * The decode and time limits of every job (jobLimits(config)). An attempt's own time limit is extended
   * by the expiry check's interval: by then the queue has failed its job (the visibility timeout) and
   * delivers it again, and the attempt stops at its next stage, giving the device to the next job.
   */
  limits: JobLimits;
  /** Whether this process takes jobs (a worker, the server's embedded worker) or only queues them. */
  work: boolean;
  /** Jobs in progress at once in this process (decoding, storing); the GPU stage is serialized. */
  concurrency?: number;
  /** Provides the device; called again after a device loss (see processor.ts). */
  acquireGpu?: () => Promise<Gpu>;
  /** Bounds of the loaded built-in scorers (SCORER_CACHE_BANKS, SCORER_CACHE_MB); default DEFAULT_SCORER_CACHE. */
  scorerCache?: ScorerCacheBounds;
}

export interface QueueProcessor extends InspectionProcessor {
  /** Fetches at once instead of at the next poll (another process queued a job). */
  wake(): void;
  /** Queues the inspections whose enqueue was lost (QUEUED or RUNNING without a job); returns how many. */
  repair(): Promise<number>;
}

/** How often expired jobs are looked for: a dead worker's job is redelivered within timeout + this. */
export function maintenanceSeconds(settings: QueueSettings): number {
  return Math.max(1, Math.min(60, Math.ceil(settings.jobTimeoutSeconds / 4)));
}

/** pg-boss's SQL on a Prisma interactive transaction, so that the job is stored with the inspection's jobId. */
function onTransaction(tx: Pick<PrismaClient, '$queryRawUnsafe'>): PgBoss.Db {
  return {
    executeSql: async (text, values) => ({ rows: await tx.$queryRawUnsafe<unknown[]>(text, ...values.map((v) => (v === undefined ? null : v))) }),
  };
}

/** Serializes queue creation between processes starting together (concurrent create_queue deadlocks). */
const CREATE_QUEUES_LOCK = 7_141_772;

async function createQueues(boss: PgBoss, url: string): Promise<void> {
  if ((await boss.getQueue(INSPECTION_QUEUE)) && (await boss.getQueue(DEAD_LETTER_QUEUE))) return;
  const lock = new pg.Client({ connectionString: url });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [CREATE_QUEUES_LOCK]);
    if (!(await boss.getQueue(DEAD_LETTER_QUEUE))) await boss.createQueue(DEAD_LETTER_QUEUE, { name: DEAD_LETTER_QUEUE });
    if (!(await boss.getQueue(INSPECTION_QUEUE))) await boss.createQueue(INSPECTION_QUEUE, { name: INSPECTION_QUEUE, deadLetter: DEAD_LETTER_QUEUE });
  } finally {
    await lock.end();
  }
}

export async function createQueueProcessor(options: QueueProcessorOptions): Promise<QueueProcessor> {
  const { db, events, logger, settings } = options;
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const worker = `${hostname()}:${process.pid}`;
  const boss = new PgBoss({
    connectionString: options.url,
    application_name: 'ttt-inspect queue',
    max: concurrency + 2,
    schedule: false,
    maintenanceIntervalSeconds: maintenanceSeconds(settings),
  });
  boss.on('error', (error) => logger.log('warn', 'queue error', { error }));
  await boss.start();
  await createQueues(boss, options.url);
  const jobOptions: PgBoss.SendOptions = {
    retryLimit: settings.retryLimit,
    retryDelay: settings.retryDelaySeconds,
    retryBackoff: true,
    expireInSeconds: settings.jobTimeoutSeconds,
  };

  const scorers = createScorerCache(options.scorerCache);
  const lane = createGpuLane(options.acquireGpu ?? defaultAcquire(), logger);
  const limits = { ...options.limits, timeoutMs: options.limits.timeoutMs + maintenanceSeconds(settings) * 1000 };
  const ctx: JobContext = { db, events, logger, withGpu: lane.withGpu, scorers, worker, limits };
  const workerIds: string[] = [];
  /** The inspection jobs whose handler is running in this process: job id -> inspection id. */
  const running = new Map<string, string>();
  let closed = false;

  const wake = () => {
    for (const id of workerIds) boss.notifyWorker(id);
  };

  const enqueue = async (id: string): Promise<void> => {
    if (closed) throw new Error('the processor is closed');
    const jobId = randomUUID();
    const sent = await db.$transaction(async (tx) => {
      // The job id is recorded with the job, atomically: an inspection has at most one live job.
      const owned = await tx.inspection.updateMany({ where: { id, jobId: null, status: { in: ['QUEUED', 'RUNNING'] } }, data: { jobId } });
      if (owned.count === 0) return false;
      await boss.send(INSPECTION_QUEUE, { inspectionId: id, jobId } satisfies JobData, { ...jobOptions, id: jobId, db: onTransaction(tx) });
      return true;
    });
    if (sent) wake();
  };

  const repair = async (): Promise<number> => {
    const lost = await db.inspection.findMany({
      where: { jobId: null, status: { in: ['QUEUED', 'RUNNING'] }, updatedAt: { lt: new Date(Date.now() - REPAIR_AFTER_MS) } },
      select: { id: true },
      orderBy: { createdAt: 'asc' },
      take: 1000,
    });
    for (const { id } of lost) await enqueue(id);
    if (lost.length > 0) logger.log('warn', 'queued inspections whose enqueue was lost', { count: lost.length });
    return lost.length;
  };

  /**
   * Gives up this process's leases of jobs still running at shutdown: the inspection goes back to QUEUED
   * (attempt RELEASED), so the redelivery claims it as a fresh one and whatever the abandoned handler
   * might still write is refused by the lease check.
   */
  const release = async (jobs: [jobId: string, inspectionId: string][]): Promise<void> => {
    const finishedAt = new Date();
    const giveUpLease = (jobId: string, inspectionId: string) =>
      db.$transaction(async (tx) => {
        const attempt = await tx.inspectionAttempt.findFirst({ where: { inspectionId, jobId, worker, outcome: null }, select: { leaseId: true } });
        if (!attempt) return null; // not claimed yet, or already finished
        const [released] = await tx.inspection.updateManyAndReturn({
          where: { id: inspectionId, status: 'RUNNING', leaseId: attempt.leaseId },
          data: { status: 'QUEUED', leaseId: null, startedAt: null },
          select: { productId: true },
        });
        if (!released) return null;
        await tx.inspectionAttempt.updateMany({ where: { inspectionId, leaseId: attempt.leaseId }, data: { outcome: 'RELEASED', finishedAt } });
        return released.productId;
      });
    for (const [jobId, inspectionId] of jobs) {
      const productId = await giveUpLease(jobId, inspectionId).catch((error: unknown) => {
        // The job is redelivered all the same: its next claim takes the lease over.
        logger.log('warn', 'could not give up the lease of a released job', { inspection: inspectionId, error });
        return null;
      });
      logger.log('warn', 'inspection', { inspection: inspectionId, status: 'RELEASED', reason: `still running ${settings.shutdownTimeoutSeconds} s after the shutdown began` });
      if (productId) events.publish({ id: inspectionId, productId, status: 'QUEUED' });
    }
  };

  if (options.work) {
    for (let i = 0; i < concurrency; i++) {
      let loopId = '';
      loopId = await boss.work<JobData>(INSPECTION_QUEUE, { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: 0.5 }, async ([job]) => {
        running.set(job.id, job.data.inspectionId);
        try {
          const outcome = await runInspection(ctx, job.data.inspectionId, { jobId: job.id, retriesLeft: job.retryCount < job.retryLimit });
          // pg-boss retries a job whose handler throws, after the back-off delay.
          if (outcome === 'RETRY') throw new Error(`inspection ${job.data.inspectionId}: transient failure (attempt ${job.retryCount + 1} of ${job.retryLimit + 1})`);
          return { outcome };
        } finally {
          running.delete(job.id);
          // Fetch the next job now rather than after the polling interval.
          boss.notifyWorker(loopId);
        }
      });
      workerIds.push(loopId);
    }
    // Dead letters come from expired jobs, which the maintenance finds (or from jobs released on their last
    // delivery): polled as often as the maintenance runs, at most every 5 s.
    const deadLetterPolling = Math.min(5, maintenanceSeconds(settings));
    await boss.work<JobData>(DEAD_LETTER_QUEUE, { batchSize: 1, pollingIntervalSeconds: deadLetterPolling }, async ([job]) => {
      const { inspectionId, jobId } = job.data;
      const finishedAt = new Date();
      const failed = await db.$transaction(async (tx) => {
        const row = await tx.inspection.findFirst({ where: { id: inspectionId, jobId, status: { in: ['QUEUED', 'RUNNING'] } }, select: { productId: true, attempts: true } });
        if (!row) return null;
        const message = `processing did not complete in ${row.attempts} attempts: the worker stopped or exceeded JOB_TIMEOUT_SECONDS (${settings.jobTimeoutSeconds} s) each time`;
        const r = await tx.inspection.updateMany({
          where: { id: inspectionId, jobId, status: { in: ['QUEUED', 'RUNNING'] } },
          data: { status: 'FAILED', leaseId: null, finishedAt, errorCode: 'INTERNAL', errorMessage: message },
        });
        if (r.count === 0) return null;
        await tx.inspectionAttempt.updateMany({ where: { inspectionId, outcome: null }, data: { outcome: 'ABANDONED', finishedAt } });
        return { productId: row.productId, message };
      });
      if (!failed) return;
      recordInspection({ status: 'FAILED' });
      logger.log('error', 'inspection', { inspection: inspectionId, product: failed.productId, status: 'FAILED', code: 'INTERNAL', error: failed.message });
      events.publish({ id: inspectionId, productId: failed.productId, status: 'FAILED' });
    });
  }

  await repair();
  const repairTimer = setInterval(() => void repair().catch((error: unknown) => logger.log('warn', 'queue repair failed', { error })), REPAIR_AFTER_MS);
  repairTimer.unref();

  return {
    enqueue,
    wake,
    repair,
    async drain() {
      // Every inspection finished, and pg-boss has recorded the end of every job (it completes a job
      // after its handler returned, so an inspection can be SUCCEEDED while its job is still active).
      const busy = async () =>
        (await db.inspection.count({ where: { status: { in: ['QUEUED', 'RUNNING'] } } })) > 0 ||
        (await db.$queryRawUnsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'active'`, INSPECTION_QUEUE))[0].n > 0;
      while (await busy()) await new Promise((r) => setTimeout(r, 100));
    },
    async close() {
      if (closed) return { released: 0 };
      closed = true;
      clearInterval(repairTimer);
      // Stops fetching and waits for the running jobs; after the timeout pg-boss fails what is still active,
      // so that the queue redelivers it (after the retry delay; it counts as one of the job's retries).
      await boss.stop({ graceful: true, wait: true, timeout: settings.shutdownTimeoutSeconds * 1000 });
      const left = [...running];
      if (left.length > 0) await release(left);
      // A released job may still be in the GPU stage: waiting for it would defeat the timeout.
      else await lane.idle();
      scorers.clear();
      return { released: left.length };
    },
    withGpu: lane.withGpu,
    async ready() {
      // Through pg-boss's own connections, not the service's.
      if (closed) throw new Error('the job queue is closed');
      if (!(await boss.getQueue(INSPECTION_QUEUE))) throw new Error(`the job queue ${INSPECTION_QUEUE} does not exist`);
    },
    deviceLimits: lane.limits,
  };
}
