// Chooses the processor of a process from its database: the in-process one on PGlite (a single process
// owns the data), the durable PostgreSQL queue otherwise, with cross-process events; shared by the
// server (`npm start`) and the worker (`npm run worker`).

import type { Database } from '../db.ts';
import type { ServiceConfig } from '../service/config.ts';
import { createInspectionEvents, createSharedInspectionEvents, type InspectionEvents } from '../service/events.ts';
import type { Logger } from '../service/log.ts';
import { createInProcessProcessor, recoverUnfinished, type InspectionProcessor } from './processor.ts';
import { createQueueProcessor, type QueueProcessor } from './queue.ts';
import type { JobLimits } from './job.ts';

/**
 * The limits of every job, from the service's settings: the submission's MAX_IMAGE_PIXELS, and
 * JOB_TIMEOUT_SECONDS as the time limit of one attempt (on PostgreSQL also the queue's visibility
 * timeout, which redelivers a job whose worker died or is too slow; see QueueProcessorOptions.limits).
 */
export function jobLimits(config: Pick<ServiceConfig, 'maxImagePixels' | 'queue'>): JobLimits {
  return { maxImagePixels: config.maxImagePixels, timeoutMs: config.queue.jobTimeoutSeconds * 1000 };
}

export interface Processing {
  processor: InspectionProcessor;
  events: InspectionEvents;
  /** What start-up re-queued (PGlite) or repaired (PostgreSQL). */
  requeued: number;
  /** Stops processing; see InspectionProcessor.close for `released`. */
  close(): Promise<{ released: number }>;
}

export async function startProcessing(db: Database, config: ServiceConfig, logger: Logger, options: { work: boolean; url?: string }): Promise<Processing> {
  if (db.kind === 'pglite') {
    const events = createInspectionEvents();
    const processor = createInProcessProcessor({
      db: db.prisma,
      events,
      logger,
      limits: jobLimits(config),
      concurrency: config.concurrency,
      retryLimit: config.queue.retryLimit,
      retryDelayMs: config.queue.retryDelaySeconds * 1000,
      scorerCache: config.scorerCache,
    });
    return { processor, events, requeued: await recoverUnfinished(db.prisma, processor), close: () => processor.close() };
  }
  let queue: QueueProcessor | null = null;
  const events = await createSharedInspectionEvents(options.url!, {
    // Another process queued a job: fetch it now rather than at the next poll.
    onEvent: (e) => e.status === 'QUEUED' && queue?.wake(),
    onError: (error) => logger.log('warn', 'event channel error', { error }),
  });
  queue = await createQueueProcessor({
    db: db.prisma,
    url: options.url!,
    events,
    logger,
    settings: config.queue,
    limits: jobLimits(config),
    work: options.work,
    concurrency: config.concurrency,
    scorerCache: config.scorerCache,
  });
  const processor = queue;
  return {
    processor,
    events,
    requeued: 0,
    async close() {
      const closed = await processor.close();
      await events.close();
      return closed;
    },
  };
}

/**
 * On SIGINT or SIGTERM: `before` (the server stops accepting requests), stop processing (finish or
 * release the running jobs), close the database, exit 0. `name` prefixes the log lines ("worker stopping").
 */
export function stopOnSignals(options: { processing: Processing; db: Database; logger: Logger; name?: string; before?: () => void }): void {
  const { processing, db, logger } = options;
  const prefix = options.name ? `${options.name} ` : '';
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log('info', `${prefix}stopping`, { signal });
    options.before?.();
    const { released } = await processing.close();
    // A released job's handler may still hold a connection, which the pool's end would wait for: exiting closes it.
    if (released === 0) await db.close();
    logger.log('info', `${prefix}stopped`, { signal, released });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
