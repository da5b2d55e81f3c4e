// Dashboard statistics: inspection counts, defect rate and mean defect area per hour or day (UTC). One
// query over the hourly rollup ("InspectionHourStats", kept current by a trigger), so its cost grows with
// the number of hours asked for, not with the number of inspections; empty buckets are filled in.

import { TttError } from '../core/errors.ts';
import { Prisma } from '../generated/prisma/client.ts';
import type { PrismaClient } from '../db.ts';

export type StatsBucket = 'HOUR' | 'DAY';

/** Inspection counts of a bucket, by status and by verdict. */
interface Counts {
  total: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  defective: number;
  nominal: number;
}

export interface BucketStats extends Counts {
  start: Date;
  /** defective / succeeded, null without succeeded inspections. */
  defectRate: number | null;
  /** Mean defect area fraction of the succeeded inspections, null without any. */
  meanDefectFraction: number | null;
}

export interface InspectionStats {
  bucket: StatsBucket;
  from: Date;
  to: Date;
  buckets: BucketStats[];
  totals: Omit<BucketStats, 'start'>;
}

const BUCKET_MS: Record<StatsBucket, number> = { HOUR: 3_600_000, DAY: 86_400_000 };
export const MAX_BUCKETS = 10_000;

interface Row extends Counts {
  start: Date;
  defect_sum: number | null;
}

function finish(c: Omit<Row, 'start'>): Omit<BucketStats, 'start'> {
  return {
    total: c.total,
    queued: c.queued,
    running: c.running,
    succeeded: c.succeeded,
    failed: c.failed,
    defective: c.defective,
    nominal: c.nominal,
    defectRate: c.succeeded > 0 ? c.defective / c.succeeded : null,
    meanDefectFraction: c.succeeded > 0 && c.defect_sum !== null ? c.defect_sum / c.succeeded : null,
  };
}

const truncate = (t: number, bucket: StatsBucket) => Math.floor(t / BUCKET_MS[bucket]) * BUCKET_MS[bucket];

/**
 * Statistics of the inspections created in the whole buckets that overlap [from, to), of the given
 * products or (null) of all (buckets are never cut: a dashboard shows whole hours and days).
 */
export async function inspectionStats(db: PrismaClient, args: { productIds: readonly string[] | null; from: Date; to: Date; bucket: StatsBucket }): Promise<InspectionStats> {
  const { productIds, from, to, bucket } = args;
  if (!(to.getTime() > from.getTime())) throw new TttError('INVALID_INPUT', `"to" (${to.toISOString()}) must be after "from" (${from.toISOString()})`);
  const start = truncate(from.getTime(), bucket);
  const count = Math.ceil((to.getTime() - start) / BUCKET_MS[bucket]);
  if (count > MAX_BUCKETS) throw new TttError('INVALID_INPUT', `the range spans ${count} ${bucket.toLowerCase()} buckets, more than ${MAX_BUCKETS}`);
  const end = new Date(start + count * BUCKET_MS[bucket]);
  const unit = bucket === 'HOUR' ? 'hour' : 'day';
  const product =
    productIds === null ? Prisma.empty : productIds.length === 0 ? Prisma.sql`AND false` : Prisma.sql`AND "productId" IN (${Prisma.join(productIds.map((id) => Prisma.sql`${id}::uuid`))})`;
  const rows = await db.$queryRaw<Row[]>`
    SELECT date_trunc(${unit}, "hour") AS start,
           sum("total")::int AS total, sum("queued")::int AS queued, sum("running")::int AS running,
           sum("succeeded")::int AS succeeded, sum("failed")::int AS failed,
           sum("defective")::int AS defective, sum("nominal")::int AS nominal,
           sum("defectSum")::float8 AS defect_sum
    FROM "InspectionHourStats"
    WHERE "hour" >= ${new Date(start)}::timestamp AND "hour" < ${end}::timestamp ${product}
    GROUP BY 1
    ORDER BY 1`;
  const byStart = new Map(rows.map((r) => [new Date(r.start).getTime(), r]));
  const zero = { total: 0, queued: 0, running: 0, succeeded: 0, failed: 0, defective: 0, nominal: 0, defect_sum: null };
  const buckets: BucketStats[] = [];
  const sum: Omit<Row, 'start'> = { ...zero, defect_sum: 0 };
  for (let t = start; t < end.getTime(); t += BUCKET_MS[bucket]) {
    const r = byStart.get(t) ?? { ...zero, start: new Date(t) };
    buckets.push({ start: new Date(t), ...finish(r) });
    for (const k of ['total', 'queued', 'running', 'succeeded', 'failed', 'defective', 'nominal'] as const) sum[k] += r[k];
    sum.defect_sum! += r.defect_sum ?? 0;
  }
  return { bucket, from, to, buckets, totals: finish(sum) };
}
