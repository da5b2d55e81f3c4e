// Where queued inspections get processed. The service only talks to `InspectionProcessor`; this module's
// in-process implementation runs jobs in the server process with bounded concurrency on the process's
// one GPU device (the PGlite default); queue.ts implements it with a durable PostgreSQL job queue.

import { TttError } from '../core/errors.ts';
import { deviceLimits, WEBGPU_DEFAULT_LIMITS, type DeviceLimits } from '../core/plan.ts';
import type { Gpu } from '../core/gpu.ts';
import { createNodeGpu, nodeGpu } from '../gpu/node.ts';
import type { PrismaClient } from '../db.ts';
import type { InspectionEvents } from '../service/events.ts';
import type { Logger } from '../service/log.ts';
import { deviceLosses } from '../service/metrics.ts';
import type { ScorerCacheBounds } from '../service/config.ts';
import { runInspection, type JobLimits } from './job.ts';
import { createScorerCache } from './scorers.ts';
import type { InspectionProcessor } from '../service/processor.ts';

export type { InspectionProcessor };

export interface InProcessOptions {
  db: PrismaClient;
  events: InspectionEvents;
  logger: Logger;
  /** The decode and time limits of every job (jobLimits(config)). */
  limits: JobLimits;
  /** Jobs in progress at once (decoding, storing); the GPU stage is serialized. */
  concurrency?: number;
  /**
   * Provides the device. Called again after a device loss, so that the next job gets a fresh device;
   * by default the process's shared device first, new ones after a loss.
   */
  acquireGpu?: () => Promise<Gpu>;
  /**
   * Retries of a job after a transient failure (a lost device, a database error; not bad input), as the
   * durable queue's JOB_RETRY_LIMIT; default 0.
   */
  retryLimit?: number;
  /** Delay before the first retry, doubled for each further one (JOB_RETRY_DELAY_SECONDS); default 1 s. */
  retryDelayMs?: number;
  /** Bounds of the loaded built-in scorers (SCORER_CACHE_BANKS, SCORER_CACHE_MB); default DEFAULT_SCORER_CACHE. */
  scorerCache?: ScorerCacheBounds;
}

export function defaultAcquire(): () => Promise<Gpu> {
  let first = true;
  return async () => {
    if (first) {
      first = false;
      return (await nodeGpu()).gpu;
    }
    return (await createNodeGpu()).gpu;
  };
}

/** The process's GPU device, used by one job (or bank build) at a time, replaced after a device loss. */
export interface GpuLane {
  withGpu<T>(fn: (gpu: Gpu) => Promise<T>): Promise<T>;
  /** Resolves once the work queued on the device so far has finished. */
  idle(): Promise<void>;
  /**
   * The device's limits (read without the lane, nor acquiring its device: a submission never waits for
   * the GPU); WebGPU's defaults when the process has no adapter.
   */
  limits(): Promise<DeviceLimits>;
}

/**
 * A device destroyed mid-run fails the work in progress with whatever its operation reports (a rejected
 * mapAsync, a validation error) before `device.lost` resolves: name it DEVICE_LOST when the device is lost.
 */
async function asDeviceLoss(g: Gpu, e: unknown): Promise<unknown> {
  if (e instanceof TttError && e.code === 'DEVICE_LOST') return e;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const reason = await Promise.race([
    g.device.lost.then((info) => `${info.reason}: ${info.message}`),
    new Promise<null>((r) => (timer = setTimeout(() => r(null), 100))),
  ]);
  clearTimeout(timer);
  return reason === null ? e : new TttError('DEVICE_LOST', `the GPU device was lost (${reason})`);
}

/**
 * The limits of the devices the process creates: its shared device's (every device of the process comes
 * from the same adapter, with the same requested limits).
 */
export async function nodeDeviceLimits(): Promise<DeviceLimits> {
  return deviceLimits((await nodeGpu()).gpu.device);
}

export function createGpuLane(acquire: () => Promise<Gpu>, logger: Logger, readLimits: () => Promise<DeviceLimits> = nodeDeviceLimits): GpuLane {
  let device: Promise<Gpu> | null = null;
  // One segmentation at a time: the Gpu wrapper records into a single command encoder.
  let tail: Promise<unknown> = Promise.resolve();
  /** The device's limits, read once (a replacement device comes from the same adapter). */
  let limits: DeviceLimits | null = null;
  const gpu = async (): Promise<Gpu> => {
    if (device) {
      const current = await device.catch(() => null);
      if (current && !current.lost) return current;
      if (current) {
        deviceLosses.inc();
        logger.log('warn', 'gpu device lost; acquiring a new one', { reason: current.lost });
      }
    }
    device = acquire();
    return device;
  };
  return {
    withGpu<T>(fn: (g: Gpu) => Promise<T>): Promise<T> {
      const run = tail.then(async () => {
        const g = await gpu();
        // Each use is a job of its own on the device: its GPU errors are its own, and a failure at any
        // point leaves nothing recorded, pending or reported for the next one (Gpu.abortJob).
        g.beginJob();
        try {
          const result = await fn(g);
          await g.endJob();
          return result;
        } catch (e) {
          await g.abortJob();
          throw await asDeviceLoss(g, e);
        }
      });
      tail = run.catch(() => undefined);
      return run;
    },
    idle: () => tail.then(() => undefined),
    limits: async () => {
      if (limits) return limits;
      try {
        limits = await readLimits();
      } catch (e) {
        logger.log('warn', 'no GPU device for the submission check: WebGPU default limits assumed', { error: e });
        limits = WEBGPU_DEFAULT_LIMITS;
      }
      return limits;
    },
  };
}

export function createInProcessProcessor(options: InProcessOptions): InspectionProcessor {
  const { db, events, logger } = options;
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const queue: string[] = [];
  const queued = new Set<string>();
  let running = 0;
  let closed = false;
  let idleWaiters: (() => void)[] = [];
  const scorers = createScorerCache(options.scorerCache);
  const { withGpu, idle, limits } = createGpuLane(options.acquireGpu ?? defaultAcquire(), logger);
  const retryLimit = Math.max(0, options.retryLimit ?? 0);
  const retryDelayMs = Math.max(0, options.retryDelayMs ?? 1000);
  /** Wakes the jobs waiting to retry when the processor closes. */
  const waking = new Set<() => void>();
  const backOff = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        waking.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      waking.add(wake);
    });

  /**
   * Attempts until the job succeeds, fails for good or runs out of retries; a retry waits with the job's
   * slot held. A job still waiting when the processor closes stays QUEUED for the next start's recovery.
   */
  const run = async (id: string): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const outcome = await runInspection({ db, events, logger, withGpu, scorers, limits: options.limits }, id, { retriesLeft: attempt < retryLimit });
      if (outcome !== 'RETRY' || closed) return;
      await backOff(retryDelayMs * 2 ** attempt);
      if (closed) return;
    }
  };

  const settleIfIdle = () => {
    if (running === 0 && queue.length === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  };

  const pump = () => {
    while (running < concurrency && queue.length > 0) {
      const id = queue.shift()!;
      queued.delete(id);
      running++;
      run(id)
        .catch((e: unknown) => logger.log('error', 'inspection job crashed', { inspection: id, error: e }))
        .finally(() => {
          running--;
          pump();
          settleIfIdle();
        });
    }
  };

  return {
    enqueue(id) {
      if (closed) throw new Error('the processor is closed');
      if (queued.has(id)) return;
      queued.add(id);
      queue.push(id);
      pump();
    },
    drain() {
      if (running === 0 && queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    async close() {
      closed = true;
      queue.length = 0;
      queued.clear();
      for (const wake of [...waking]) wake();
      await this.drain();
      // After the device's last user, without acquiring a device just for this.
      await idle();
      scorers.clear();
      return { released: 0 };
    },
    withGpu,
    deviceLimits: limits,
  };
}

/** Re-queues what a previous run of the process left unfinished (QUEUED, or RUNNING when it stopped). */
export async function recoverUnfinished(db: PrismaClient, processor: InspectionProcessor): Promise<number> {
  await db.inspection.updateMany({ where: { status: 'RUNNING' }, data: { status: 'QUEUED', startedAt: null } });
  const rows = await db.inspection.findMany({ where: { status: 'QUEUED' }, select: { id: true }, orderBy: { createdAt: 'asc' } });
  for (const r of rows) processor.enqueue(r.id);
  return rows.length;
}
