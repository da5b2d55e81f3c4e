// The process's Prometheus metrics (prom-client): one registry that processing bumps (inspections, stage
// durations, retries, device losses, bank builds) and the HTTP edge bumps (requests by operation), and
// that /metrics renders after reading the queue's depth and oldest age from the database.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PrismaClient } from '../db.ts';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

/** Seconds: from a millisecond of a GPU stage up to the five-minute job timeout. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export const httpRequests = new Counter({
  name: 'ttt_http_requests_total',
  help: 'HTTP requests answered, by route, GraphQL operation name and status code',
  labelNames: ['route', 'operation', 'status'] as const,
  registers: [registry],
});

export const httpRequestDuration = new Histogram({
  name: 'ttt_http_request_duration_seconds',
  help: 'Time to answer an HTTP request (to the first byte of a subscription stream), by route and GraphQL operation name',
  labelNames: ['route', 'operation'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});

export const inspectionsFinished = new Counter({
  name: 'ttt_inspections_total',
  help: 'Inspections processed to a final status (SUCCEEDED, FAILED), by verdict (none when failed)',
  labelNames: ['status', 'verdict'] as const,
  registers: [registry],
});

export const stageDuration = new Histogram({
  name: 'ttt_inspection_stage_duration_seconds',
  help: "Processing time of each pipeline stage of a succeeded inspection (the inspection's stageMs)",
  labelNames: ['stage'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});

export const inspectionDuration = new Histogram({
  name: 'ttt_inspection_duration_seconds',
  help: 'Processing time of a succeeded inspection, from its claim to its stored results (totalMs)',
  buckets: DURATION_BUCKETS,
  registers: [registry],
});

export const inspectionRetries = new Counter({
  name: 'ttt_inspection_retries_total',
  help: 'Attempts that failed transiently and put their inspection back in the queue for a retry',
  registers: [registry],
});

export const deviceLosses = new Counter({
  name: 'ttt_gpu_device_losses_total',
  help: 'GPU devices found lost and replaced by a new one',
  registers: [registry],
});

export const bankBuilds = new Counter({
  name: 'ttt_scorer_bank_builds_total',
  help: "Built-in scorer memory-bank builds: stored, or superseded by another process's additions (rebuilt)",
  labelNames: ['result'] as const,
  registers: [registry],
});

const queueDepth = new Gauge({
  name: 'ttt_queue_depth',
  help: 'Inspections waiting (QUEUED) or in progress (RUNNING), read from the database on each scrape',
  labelNames: ['status'] as const,
  registers: [registry],
});

const oldestQueuedAge = new Gauge({
  name: 'ttt_queue_oldest_age_seconds',
  help: 'How long the oldest QUEUED inspection has waited since it was submitted or re-queued (0 when none), read on each scrape',
  registers: [registry],
});

// The known series start at 0, so that rate() and increase() see their first event.
for (const verdict of ['NOMINAL', 'DEFECTIVE']) inspectionsFinished.inc({ status: 'SUCCEEDED', verdict }, 0);
inspectionsFinished.inc({ status: 'FAILED', verdict: 'none' }, 0);
for (const result of ['stored', 'superseded']) bankBuilds.inc({ result }, 0);

/** Counts an inspection that reached its final status, and (succeeded) its stage and total durations. */
export function recordInspection(outcome: { status: 'SUCCEEDED'; verdict: string; stageMs: Record<string, number>; totalMs: number } | { status: 'FAILED' }): void {
  if (outcome.status === 'FAILED') {
    inspectionsFinished.inc({ status: 'FAILED', verdict: 'none' });
    return;
  }
  inspectionsFinished.inc({ status: 'SUCCEEDED', verdict: outcome.verdict });
  for (const [stage, ms] of Object.entries(outcome.stageMs)) stageDuration.observe({ stage }, ms / 1000);
  inspectionDuration.observe(outcome.totalMs / 1000);
}

/**
 * The metrics in Prometheus's text format, with the queue gauges read from `db` now. The oldest age counts
 * from the row's last change (updatedAt: when it was submitted, re-queued for a retry or a reprocess).
 * Throws when the database does not answer: the scrape fails (Prometheus's `up` is 0) rather than report
 * stale gauges.
 */
export async function renderMetrics(db: PrismaClient): Promise<{ contentType: string; body: string }> {
  const [counts, oldest] = await Promise.all([
    db.inspection.groupBy({ by: ['status'], where: { status: { in: ['QUEUED', 'RUNNING'] } }, _count: { _all: true } }),
    db.inspection.aggregate({ where: { status: 'QUEUED' }, _min: { updatedAt: true } }),
  ]);
  for (const status of ['QUEUED', 'RUNNING'] as const) queueDepth.set({ status }, counts.find((c) => c.status === status)?._count._all ?? 0);
  const since = oldest._min.updatedAt;
  oldestQueuedAge.set(since ? Math.max(0, (Date.now() - since.getTime()) / 1000) : 0);
  return { contentType: registry.contentType, body: await registry.metrics() };
}
