// Dashboard load: seeds inspections with regions into a fresh PostgreSQL database (server-side
// generate_series, seeded random), then times the two dashboard queries through yoga.fetch: one page of a
// product's inspections in a date range with their regions, and inspectionStats over 30 days.
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test npx tsx bench/dashboard.ts [--inspections 100000]
//     [--products 4] [--days 60] [--runs 100] [--warmup 20] [--keep]
//
// The database is created next to the one in the URL (ttt_bench_<time>) and dropped afterwards.

import { parseArgs } from 'node:util';
import pg from 'pg';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { openDatabase } from '../src/db.ts';
import { migrate } from '../src/migrate.ts';
import { createInProcessProcessor } from '../src/processing/processor.ts';
import { jobLimits } from '../src/processing/start.ts';
import { defaultConfig } from '../src/service/config.ts';
import { createInspectionEvents } from '../src/service/events.ts';
import { memoryLogger } from '../src/service/log.ts';
import { createApp } from '../src/server/yoga.ts';
import { createApiKey } from '../src/service/keys.ts';

const { values: flags } = parseArgs({
  options: {
    inspections: { type: 'string', default: '100000' },
    products: { type: 'string', default: '4' },
    days: { type: 'string', default: '60' },
    runs: { type: 'string', default: '100' },
    warmup: { type: 'string', default: '20' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(flags.inspections);
const P = Number(flags.products);
const DAYS = Number(flags.days);
const RUNS = Number(flags.runs);
const WARMUP = Number(flags.warmup);
const DAY_MS = 86_400_000;

const baseUrl = process.env.BENCH_DATABASE_URL || process.env.DATABASE_URL;
if (!baseUrl) {
  console.error('bench/dashboard: set DATABASE_URL (or BENCH_DATABASE_URL) to a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/test');
  process.exit(2);
}

const SEED_SQL = `
SELECT setseed(0.42);
INSERT INTO "Product" (id, name, options, "createdAt", "updatedAt")
  SELECT gen_random_uuid(), 'bench-' || g, '{}', now(), now() FROM generate_series(1, $P) g;
CREATE TEMP TABLE p AS SELECT row_number() OVER (ORDER BY name) - 1 AS k, id FROM "Product";
CREATE TEMP TABLE draw AS
  SELECT g, random() AS r_status, random() AS r_defect, random() AS r_score, random() AS r_area, random() AS r_time, (random() * 4)::int AS r_regions
  FROM generate_series(1, $N) g;
INSERT INTO "Inspection" (id, "productId", "externalId", status, options, width, height, channels, "createdAt", "updatedAt",
    "startedAt", "finishedAt", verdict, "imageScore", "defectFraction", "regionCount", "anomalousLabels", "nominalLabels",
    "classifierLoss", "classifierEpochs", "stageMs", "totalMs")
SELECT gen_random_uuid(), p.id, 'station-' || (d.g % 8) || '/' || d.g, s.status, '{}', 1024, 1024, 3, t.created, t.created,
    CASE WHEN s.status <> 'QUEUED' THEN t.created + interval '1 second' END,
    CASE WHEN s.status IN ('SUCCEEDED', 'FAILED') THEN t.created + interval '3 seconds' END,
    CASE WHEN s.status = 'SUCCEEDED' THEN (CASE WHEN d.r_defect < 0.08 THEN 'DEFECTIVE' ELSE 'NOMINAL' END)::"Verdict" END,
    CASE WHEN s.status = 'SUCCEEDED' THEN d.r_score * 3 END,
    CASE WHEN s.status = 'SUCCEEDED' THEN (CASE WHEN d.r_defect < 0.08 THEN 0.001 + d.r_area * 0.05 ELSE 0 END) END,
    CASE WHEN s.status = 'SUCCEEDED' THEN (CASE WHEN d.r_defect < 0.08 THEN 1 + d.r_regions ELSE 0 END) END,
    CASE WHEN s.status = 'SUCCEEDED' THEN 120 END, CASE WHEN s.status = 'SUCCEEDED' THEN 500 END,
    CASE WHEN s.status = 'SUCCEEDED' THEN 0.05 + d.r_score * 0.1 END, CASE WHEN s.status = 'SUCCEEDED' THEN 30 END,
    CASE WHEN s.status = 'SUCCEEDED' THEN '{"upload": 4.1, "stats": 2.0, "features": 31.5, "classifier": 60.2, "predict": 9.8}'::jsonb END,
    CASE WHEN s.status IN ('SUCCEEDED', 'FAILED') THEN 2000 END
FROM draw d
JOIN p ON p.k = d.g % $P
CROSS JOIN LATERAL (SELECT (CASE WHEN d.r_status < 0.97 THEN 'SUCCEEDED' WHEN d.r_status < 0.98 THEN 'FAILED'
                                 WHEN d.r_status < 0.99 THEN 'QUEUED' ELSE 'RUNNING' END)::"InspectionStatus" AS status) s
CROSS JOIN LATERAL (SELECT date_trunc('second', now() AT TIME ZONE 'UTC') - (d.r_time * $DAYS * interval '1 day') AS created) t;
INSERT INTO "Region" ("inspectionId", index, area, "bboxX", "bboxY", "bboxWidth", "bboxHeight", "centroidX", "centroidY", "meanScore", "maxScore")
SELECT i.id, k, 40 + k * 17, 100 * k, 80 * k, 12 + k, 9 + k, 100 * k + 6.5, 80 * k + 4.5, 0.6 + 0.01 * k, 0.9 + 0.01 * k
FROM "Inspection" i CROSS JOIN LATERAL generate_series(1, i."regionCount") k
WHERE i."regionCount" > 0;
ANALYZE;
`;

const LIST = `query($filter: InspectionFilter, $first: Int) {
  inspections(filter: $filter, first: $first) {
    edges { node { id status verdict imageScore defectFraction createdAt imageUrl maskUrl regions { area bbox { x y width height } meanScore maxScore } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const STATS = `query($p: ID, $from: DateTime!, $to: DateTime!, $bucket: StatsBucket!) {
  inspectionStats(productId: $p, from: $from, to: $to, bucket: $bucket) {
    totals { total succeeded defective defectRate meanDefectFraction }
    buckets { start total succeeded failed defective defectRate meanDefectFraction }
  }
}`;

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  return sorted[lo] + (sorted[Math.ceil(i)] - sorted[lo]) * (i - lo);
}

async function main(): Promise<void> {
  const name = `ttt_bench_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const server = (await admin.query('SHOW server_version')).rows[0].server_version;
  await admin.end();
  const url = new URL(baseUrl!);
  url.pathname = `/${name}`;
  const queries: string[] = [];
  const db = await openDatabase({ url: url.toString(), onQuery: (q) => void queries.push(q) });
  try {
    await migrate(db);
    let t = performance.now();
    await db.withSession((s) => s.exec(SEED_SQL.replaceAll('$N', String(N)).replaceAll('$P', String(P)).replaceAll('$DAYS', String(DAYS))));
    const seedMs = performance.now() - t;
    const counts = await db.withSession((s) =>
      s.query<{ inspections: number; regions: number }>(`SELECT (SELECT count(*)::int FROM "Inspection") AS inspections, (SELECT count(*)::int FROM "Region") AS regions`),
    );
    const product = await db.prisma.product.findFirstOrThrow({ orderBy: { name: 'asc' }, select: { id: true } });
    const productId = encodeGlobalID('Product', product.id);
    const to = new Date();
    const from = new Date(to.getTime() - 30 * DAY_MS);
    const inWindow = await db.prisma.inspection.count({ where: { productId: product.id, createdAt: { gte: from, lt: to } } });

    const logger = memoryLogger();
    const events = createInspectionEvents();
    // Timed runs exceed the per-key rate limit on purpose: the bench measures the queries, not the limiter.
    const config = defaultConfig({ rateLimitPerMinute: 1e9, rateLimitBurst: 1e9 });
    const processor = createInProcessProcessor({ db: db.prisma, events, logger, limits: jobLimits(config) });
    const { yoga } = createApp({ db: db.prisma, processor, events, config, logger });
    const { secret } = await createApiKey(db.prisma, { role: 'VIEWER', name: 'bench/dashboard.ts' });

    const cases: { label: string; query: string; variables: Record<string, unknown>; target: number }[] = [
      { label: 'inspections: product + 30-day range, first 50, with regions', query: LIST, variables: { filter: { productId, from, to }, first: 50 }, target: 20 },
      { label: 'inspectionStats: product, 30 days, DAY buckets', query: STATS, variables: { p: productId, from, to, bucket: 'DAY' }, target: 50 },
      { label: 'inspectionStats: product, 30 days, HOUR buckets', query: STATS, variables: { p: productId, from, to, bucket: 'HOUR' }, target: 50 },
    ];
    const rows: string[] = [];
    for (const c of cases) {
      const body = JSON.stringify({ query: c.query, variables: c.variables });
      const once = async () => {
        const start = performance.now();
        const res = await yoga.fetch('http://bench/graphql', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` }, body });
        const json = (await res.json()) as { errors?: unknown; data?: Record<string, any> };
        const ms = performance.now() - start;
        if (json.errors) throw new Error(`${c.label}: ${JSON.stringify(json.errors)}`);
        return { ms, json };
      };
      for (let k = 0; k < WARMUP; k++) await once();
      const times: number[] = [];
      const perRequest = new Set<number>();
      let sample: Record<string, any> | undefined;
      for (let k = 0; k < RUNS; k++) {
        const before = queries.length;
        const r = await once();
        perRequest.add(queries.length - before);
        times.push(r.ms);
        sample = r.json.data;
      }
      times.sort((a, b) => a - b);
      const size = sample?.inspections ? `${sample.inspections.edges.length} nodes, ${sample.inspections.edges.reduce((a: number, e: any) => a + e.node.regions.length, 0)} regions` : `${sample?.inspectionStats.buckets.length} buckets, ${sample?.inspectionStats.totals.total} inspections`;
      const median = quantile(times, 0.5);
      rows.push(
        `| ${c.label} | ${size} | ${median.toFixed(2)} | ${quantile(times, 0.95).toFixed(2)} | ${times[0].toFixed(2)} | ${[...perRequest].join(', ')} | ${c.target} | ${median <= c.target ? 'met' : 'MISSED'} |`,
      );
    }
    await processor.close();
    console.log(`PostgreSQL ${server}; ${counts[0].inspections} inspections over ${DAYS} days in ${P} product${P === 1 ? '' : 's'}, ${counts[0].regions} regions; seeded in ${(seedMs / 1000).toFixed(1)} s`);
    console.log(`queried product: ${inWindow} inspections in the 30-day window; ${WARMUP} warm-up runs, then ${RUNS} timed runs through yoga.fetch\n`);
    console.log('| request | result | median ms | p95 ms | min ms | SQL statements per request | target ms (median) | |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    await db.close();
    if (!flags.keep) {
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    } else console.log(`kept database ${name}`);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
