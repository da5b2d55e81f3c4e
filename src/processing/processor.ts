// Where queued inspections get processed. The service only talks to `InspectionProcessor`; this module's
// in-process implementation runs jobs in the server process with bounded concurrency on the process's
// one GPU device (a durable, multi-process queue can implement the same interface).

import type { Gpu } from '../core/gpu.ts';
import { createNodeGpu, nodeGpu } from '../gpu/node.ts';
import type { PrismaClient } from '../db.ts';
import type { InspectionEvents } from '../server/events.ts';
import type { Logger } from '../server/log.ts';
import { runInspection } from './job.ts';
import { createScorerCache } from './scorers.ts';

export interface InspectionProcessor {
  /** Schedules an inspection (QUEUED in the database) for processing. */
  enqueue(id: string): void;
  /** Resolves once every scheduled inspection has been processed. */
  drain(): Promise<void>;
  /** Stops taking work and waits for the jobs in progress. */
  close(): Promise<void>;
  /**
   * Runs `fn` with exclusive use of the device the jobs run on: the service builds the built-in scorer's
   * memory banks there, between jobs' GPU stages.
   */
  withGpu<T>(fn: (gpu: Gpu) => Promise<T>): Promise<T>;
}

export interface InProcessOptions {
  db: PrismaClient;
  events: InspectionEvents;
  logger: Logger;
  /** Jobs in progress at once (decoding, storing); the GPU stage is serialized. */
  concurrency?: number;
  /**
   * Provides the device. Called again after a device loss, so that the next job gets a fresh device;
   * by default the process's shared device first, new ones after a loss.
   */
  acquireGpu?: () => Promise<Gpu>;
}

function defaultAcquire(): () => Promise<Gpu> {
  let first = true;
  return async () => {
    if (first) {
      first = false;
      return (await nodeGpu()).gpu;
    }
    return (await createNodeGpu()).gpu;
  };
}

export function createInProcessProcessor(options: InProcessOptions): InspectionProcessor {
  const { db, events, logger } = options;
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const acquire = options.acquireGpu ?? defaultAcquire();
  const queue: string[] = [];
  const queued = new Set<string>();
  let running = 0;
  let closed = false;
  let idleWaiters: (() => void)[] = [];
  let device: Promise<Gpu> | null = null;
  const scorers = createScorerCache();
  // One segmentation at a time: the Gpu wrapper records into a single command encoder.
  let gpuTail: Promise<unknown> = Promise.resolve();

  const gpu = async (): Promise<Gpu> => {
    if (device) {
      const current = await device.catch(() => null);
      if (current && !current.lost) return current;
      if (current) logger.log('warn', 'gpu device lost; acquiring a new one', { reason: current.lost });
    }
    device = acquire();
    return device;
  };

  const withGpu = <T>(fn: (g: Gpu) => Promise<T>): Promise<T> => {
    const run = gpuTail.then(async () => fn(await gpu()));
    gpuTail = run.catch(() => undefined);
    return run;
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
      runInspection({ db, events, logger, withGpu, scorers }, id)
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
      await this.drain();
      // After the device's last user, without acquiring a device just for this.
      await gpuTail.then(() => scorers.clear());
    },
    withGpu,
  };
}

/** Re-queues what a previous run of the process left unfinished (QUEUED, or RUNNING when it stopped). */
export async function recoverUnfinished(db: PrismaClient, processor: InspectionProcessor): Promise<number> {
  await db.inspection.updateMany({ where: { status: 'RUNNING' }, data: { status: 'QUEUED', startedAt: null } });
  const rows = await db.inspection.findMany({ where: { status: 'QUEUED' }, select: { id: true }, orderBy: { createdAt: 'asc' } });
  for (const r of rows) processor.enqueue(r.id);
  return rows.length;
}
