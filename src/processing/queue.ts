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
import type { QueueSettings } from '../server/config.ts';
import type { InspectionEvents } from '../server/events.ts';
import type { Logger } from '../server/log.ts';
import { runInspection, type JobContext } from './job.ts';
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
  /** Whether this process takes jobs (a worker, the server's embedded worker) or only queues them. */
  work: boolean;
  /** Jobs in progress at once in this process (decoding, storing); the GPU stage is serialized. */
  concurrency?: number;
  /** Provides the device; called again after a device loss (see processor.ts). */
  acquireGpu?: () => Promise<Gpu>;
  /** How long close() lets the running jobs finish before releasing them to other workers. */
  shutdownTimeoutSeconds?: number;
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

  const scorers = createScorerCache();
  const lane = createGpuLane(options.acquireGpu ?? defaultAcquire(), logger);
  const ctx: JobContext = { db, events, logger, withGpu: lane.withGpu, scorers, worker };
  const workerIds: string[] = [];
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

  if (options.work) {
    for (let i = 0; i < concurrency; i++) {
      let loopId = '';
      loopId = await boss.work<JobData>(INSPECTION_QUEUE, { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: 0.5 }, async ([job]) => {
        try {
          const outcome = await runInspection(ctx, job.data.inspectionId, { jobId: job.id, retriesLeft: job.retryCount < job.retryLimit });
          // pg-boss retries a job whose handler throws, after the back-off delay.
          if (outcome === 'RETRY') throw new Error(`inspection ${job.data.inspectionId}: transient failure (attempt ${job.retryCount + 1} of ${job.retryLimit + 1})`);
          return { outcome };
        } finally {
          // Fetch the next job now rather than after the polling interval.
          boss.notifyWorker(loopId);
        }
      });
      workerIds.push(loopId);
    }
    await boss.work<JobData>(DEAD_LETTER_QUEUE, { batchSize: 1, pollingIntervalSeconds: 5 }, async ([job]) => {
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
      if (closed) return;
      closed = true;
      clearInterval(repairTimer);
      // Stops fetching, waits for the running jobs, and fails (= releases for redelivery) what is still
      // running after the timeout.
      await boss.stop({ graceful: true, wait: true, timeout: (options.shutdownTimeoutSeconds ?? 30) * 1000 });
      await lane.idle();
      scorers.clear();
    },
    withGpu: lane.withGpu,
  };
}
