// Load figures of the durable queue: one server (EMBEDDED_WORKER=false) and W worker processes on a fresh
// PostgreSQL database (created next to DATABASE_URL's, dropped afterwards); S simulated stations on
// loopback each submit a 256x256 sample (image PNG + score map .npy) through GraphQL multipart, wait for
// its completion, and submit the next, for the given duration (closed loop: the workers stay saturated
// while the backlog stays bounded). Reports sustained inspections/s, p50/p99 submit -> completion latency
// (seen by the station), the queue depth (QUEUED + RUNNING) sampled every second, and submitted vs
// completed (every submission must complete SUCCEEDED).
// Usage: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test npx tsx bench/load.ts [--workers 1,2] [--seconds 60] [--stations 4] [--size 256]

import { parseArgs } from 'node:util';
import pg from 'pg';
import { percentile, samples, sleep, startServiceUnderLoad, type Sample } from './serviceUnderLoad.ts';

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2' },
    seconds: { type: 'string', default: '60' },
    stations: { type: 'string', default: '4' },
    size: { type: 'string', default: '256' },
  },
});
const BASE = process.env.DATABASE_URL;
if (!BASE) throw new Error('bench/load.ts needs DATABASE_URL (a PostgreSQL server; a fresh database is created next to it)');
const SECONDS = Number(args.seconds);
const STATIONS = Number(args.stations);
const SIZE = Number(args.size);

const STATUS = 'query($id: ID!) { inspection(id: $id) { status } }';

async function run(workers: number, files: Sample[]) {
  const service = await startServiceUnderLoad({ base: BASE!, name: 'ttt_load', workers, embeddedWorker: false, maxQueueDepth: 100000 });
  const { url, gql } = service;
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const depth: { t: number; depth: number }[] = [];
  const t0 = performance.now();
  const sampler = setInterval(async () => {
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM "Inspection" WHERE status IN ('QUEUED', 'RUNNING')`);
    depth.push({ t: Math.round((performance.now() - t0) / 1000), depth: rows[0].n });
  }, 1000);

  const latencies: number[] = [];
  const completedAt: number[] = [];
  let submitted = 0;
  let failed = 0;
  let k = 0;
  const deadline = t0 + SECONDS * 1000;
  const station = async () => {
    while (performance.now() < deadline) {
      const f = files[k++ % files.length];
      const ts = performance.now();
      let res = await service.submit(f);
      // More stations than MAX_CONCURRENT_UPLOADS: a refused upload (429 BUSY) waits its Retry-After.
      while (res.status === 429) {
        await res.body?.cancel();
        await sleep(Number(res.headers.get('retry-after') ?? 1) * 1000);
        res = await service.submit(f);
      }
      const r = (await res.json()) as any;
      const id = r.data?.submitInspection?.inspection?.id;
      if (!id) throw new Error(`submit failed: ${JSON.stringify(r)}`);
      submitted++;
      for (;;) {
        await sleep(50);
        const s = (await gql(JSON.stringify({ query: STATUS, variables: { id } }), true)).data.inspection.status;
        if (s === 'SUCCEEDED' || s === 'FAILED') {
          if (s === 'FAILED') failed++;
          const tc = performance.now();
          latencies.push(tc - ts);
          completedAt.push(tc - t0);
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: STATIONS }, station));
  const wall = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  const { rows } = await db.query(`SELECT status::text, count(*)::int AS n FROM "Inspection" GROUP BY status ORDER BY status`);
  const attempts = await db.query(`SELECT count(*)::int AS n FROM "InspectionAttempt"`);
  await db.end();
  const codes = await service.stop();

  // Sustained rate: completions after the first 10 % of the run (start-up: pipeline compilation, first device use).
  const warm = SECONDS * 100;
  const steady = completedAt.filter((t) => t >= warm);
  const rate = steady.length / ((Math.max(...completedAt) - warm) / 1000);
  return {
    workers,
    stations: STATIONS,
    wallSeconds: Math.round(wall * 10) / 10,
    submitted,
    completed: latencies.length,
    failed,
    statuses: Object.fromEntries(rows.map((r) => [r.status, r.n])),
    attempts: attempts.rows[0].n,
    inspectionsPerSecond: Math.round(rate * 100) / 100,
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
    queueDepth: depth,
    exitCodes: codes,
  };
}

const files = await samples(8, SIZE);
console.log(`load: ${SIZE}x${SIZE} samples (image PNG + score map), ${STATIONS} stations, ${SECONDS} s per run, default product options`);
for (const w of args.workers!.split(',').map(Number)) {
  const r = await run(w, files);
  const depthLine = r.queueDepth.filter((_, i) => i % 5 === 0).map((d) => `${d.t}s:${d.depth}`).join(' ');
  console.log(JSON.stringify({ ...r, queueDepth: undefined }));
  console.log(`queue depth (every 5 s): ${depthLine}`);
  console.log(`| ${r.workers} | ${r.inspectionsPerSecond} | ${r.p50ms} | ${r.p99ms} | ${Math.max(...r.queueDepth.map((d) => d.depth))} | ${r.submitted} | ${r.completed} (${r.failed} failed) |`);
}
