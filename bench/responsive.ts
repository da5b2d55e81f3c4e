// Responsiveness under load: the mix of issue 16. One server on a fresh PostgreSQL database (created next
// to DATABASE_URL's, dropped afterwards) processing with its embedded worker (--workers 0) or with W
// worker processes (EMBEDDED_WORKER=false); S stations on loopback submit 256x256 samples (image PNG +
// score map .npy) back to back without waiting for completion (a refused submission, 429 or QueueFullError,
// waits its Retry-After and tries again); one dashboard polls `inspections(first: 50)` with ten fields and
// `inspectionStats` in turn. Reports submissions/s accepted, completions/s during the load and after it
// (the drain), p50/p99 of submit and dashboard latency, refusals and the peak queue depth.
// Usage: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test npx tsx bench/responsive.ts [--workers 0] [--seconds 45] [--stations 20] [--size 256] [--max-queue-depth 100000]

import { parseArgs } from 'node:util';
import pg from 'pg';
import { percentile as pct, samples, sleep, startServiceUnderLoad } from './serviceUnderLoad.ts';

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '45' },
    stations: { type: 'string', default: '20' },
    size: { type: 'string', default: '256' },
    'max-queue-depth': { type: 'string', default: '100000' },
    drain: { type: 'string', default: '120' },
  },
});
const BASE = process.env.DATABASE_URL;
if (!BASE) throw new Error('bench/responsive.ts needs DATABASE_URL (a PostgreSQL server; a fresh database is created next to it)');
const WORKERS = Number(args.workers);
const SECONDS = Number(args.seconds);
const STATIONS = Number(args.stations);
const SIZE = Number(args.size);

const HISTORY = `query { inspections(first: 50) { edges { node { id externalId status verdict imageScore defectFraction regionCount createdAt finishedAt totalMs } } } }`;
const STATS = `query($from: DateTime!, $to: DateTime!) { inspectionStats(from: $from, to: $to, bucket: HOUR) { totals { total succeeded failed defective } } }`;

const files = await samples(8, SIZE);
const service = await startServiceUnderLoad({ base: BASE, name: 'ttt_resp', workers: WORKERS, embeddedWorker: WORKERS === 0, maxQueueDepth: Number(args['max-queue-depth']) });
const { url, gql } = service;

// Warm-up: one inspection through the whole pipeline (compilation, first device use) before the clock starts.
{
  const first = await submit(0);
  if (!first.id) throw new Error('warm-up submission refused');
  while ((await gql(JSON.stringify({ query: 'query($id: ID!) { inspection(id: $id) { status } }', variables: { id: first.id } }), true)).data.inspection.status !== 'SUCCEEDED') await sleep(200);
}

async function submit(k: number): Promise<{ id?: string; retryAfter?: number; ms: number }> {
  const t = performance.now();
  const res = await service.submit(files[k % files.length]);
  const body = (await res.json()) as any;
  const ms = performance.now() - t;
  const r = body.data?.submitInspection;
  if (r?.inspection?.id) return { id: r.inspection.id, ms };
  if (res.status === 429 || r?.code === 'QUEUE_FULL') return { retryAfter: Number(res.headers.get('retry-after') ?? 1), ms };
  throw new Error(`submit failed (${res.status}): ${JSON.stringify(body)}`);
}

const db = new pg.Client({ connectionString: url });
await db.connect();
const finished = async () => (await db.query(`SELECT count(*)::int AS n FROM "Inspection" WHERE status IN ('SUCCEEDED', 'FAILED')`)).rows[0].n as number;
const depthNow = async () => (await db.query(`SELECT count(*)::int AS n FROM "Inspection" WHERE status IN ('QUEUED', 'RUNNING')`)).rows[0].n as number;
const finished0 = await finished();
let peakDepth = 0;
const sampler = setInterval(() => {
  depthNow().then((d) => (peakDepth = Math.max(peakDepth, d)), () => {});
}, 1000);

const submitMs: number[] = [];
const dashboardMs: number[] = [];
let accepted = 0;
let refused = 0;
let k = 1;
const t0 = performance.now();
const deadline = t0 + SECONDS * 1000;
const station = async () => {
  while (performance.now() < deadline) {
    const r = await submit(k++);
    submitMs.push(r.ms);
    if (r.id) accepted++;
    else {
      refused++;
      await sleep(r.retryAfter! * 1000);
    }
  }
};
const dashboard = async () => {
  const from = new Date(Date.now() - 86_400_000).toISOString();
  for (let q = 0; performance.now() < deadline; q++) {
    const body = q % 2 === 0 ? { query: HISTORY } : { query: STATS, variables: { from, to: new Date(Date.now() + 3_600_000).toISOString() } };
    const t = performance.now();
    const r = await gql(JSON.stringify(body), true);
    dashboardMs.push(performance.now() - t);
    if (r.errors) throw new Error(`dashboard query failed: ${JSON.stringify(r.errors)}`);
    await sleep(250);
  }
};
await Promise.all([...Array.from({ length: STATIONS }, station), dashboard()]);
const loadSeconds = (performance.now() - t0) / 1000;
const finishedDuringLoad = (await finished()) - finished0;
const depthAtEnd = await depthNow();
// The drain: how fast the backlog empties once the stations stop.
const tDrain = performance.now();
while ((await depthNow()) > 0 && performance.now() - tDrain < Number(args.drain) * 1000) await sleep(500);
const drainSeconds = (performance.now() - tDrain) / 1000;
const finishedTotal = (await finished()) - finished0;
clearInterval(sampler);
const { rows } = await db.query(`SELECT status::text, count(*)::int AS n FROM "Inspection" GROUP BY status ORDER BY status`);
await db.end();
await service.stop();

const result = {
  workers: WORKERS,
  stations: STATIONS,
  seconds: Math.round(loadSeconds * 10) / 10,
  accepted,
  refused,
  submissionsPerSecond: Math.round((accepted / loadSeconds) * 100) / 100,
  completionsPerSecondDuringLoad: Math.round((finishedDuringLoad / loadSeconds) * 100) / 100,
  completionsPerSecondDrain: Math.round(((finishedTotal - finishedDuringLoad) / Math.max(drainSeconds, 1e-3)) * 100) / 100,
  submitP50: pct(submitMs, 50),
  submitP99: pct(submitMs, 99),
  dashboardP50: pct(dashboardMs, 50),
  dashboardP99: pct(dashboardMs, 99),
  dashboardQueries: dashboardMs.length,
  peakQueueDepth: peakDepth,
  queueDepthAtEnd: depthAtEnd,
  drainSeconds: Math.round(drainSeconds),
  statuses: Object.fromEntries(rows.map((r) => [r.status, r.n])),
};
console.log(JSON.stringify(result));
console.log(
  `| ${WORKERS} | ${STATIONS} | ${result.submissionsPerSecond} | ${result.completionsPerSecondDuringLoad} | ${result.submitP50} | ${result.submitP99} | ${result.dashboardP50} | ${result.dashboardP99} | ${refused} | ${peakDepth} |`,
);
