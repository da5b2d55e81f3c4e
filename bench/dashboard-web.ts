// The dashboard page's budgets: (1) compressed JavaScript the first view loads (the entry script and its
// modulepreloads in web/dist/index.html, gzip -9), at most 250 kB; (2) History's first useful render (from
// navigation to 50 rows in the table, the key already in the tab's session) in Debian's Chromium, with
// 100,000 inspections in a fresh PostgreSQL database (seeded by generate_series, dropped afterwards),
// at most 1 s. Build the page first (`npm run setup`).
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test npx tsx bench/dashboard-web.ts [--inspections 100000] [--runs 15]

import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { encodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { chromium } from 'playwright-core';
import { openDatabase } from '../src/db.ts';
import { migrate } from '../src/migrate.ts';
import { createInProcessProcessor } from '../src/processing/processor.ts';
import { jobLimits } from '../src/processing/start.ts';
import { defaultConfig } from '../src/service/config.ts';
import { DASHBOARD_DIR } from '../src/server/dashboard.ts';
import { createInspectionEvents } from '../src/service/events.ts';
import { createHttpServer } from '../src/server/http.ts';
import { memoryLogger } from '../src/service/log.ts';
import { createApp } from '../src/server/yoga.ts';
import { createApiKey } from '../src/service/keys.ts';
import { CHROMIUM, CHROMIUM_FLAGS } from '../test/helpers/browser.ts';

const { values: flags } = parseArgs({
  options: { inspections: { type: 'string', default: '100000' }, products: { type: 'string', default: '4' }, days: { type: 'string', default: '60' }, runs: { type: 'string', default: '15' } },
});
const N = Number(flags.inspections);
const P = Number(flags.products);
const DAYS = Number(flags.days);
const RUNS = Number(flags.runs);
const JS_BUDGET = 250_000;
const RENDER_BUDGET_MS = 1000;

const baseUrl = process.env.BENCH_DATABASE_URL || process.env.DATABASE_URL;
if (!baseUrl) {
  console.error('bench/dashboard-web: set DATABASE_URL (or BENCH_DATABASE_URL) to a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/test');
  process.exit(2);
}

// ---- (1) the first view's JavaScript ----

const html = readFileSync(join(DASHBOARD_DIR, 'index.html'), 'utf8');
const firstView = [...html.matchAll(/<script type="module"[^>]*src="([^"]+)"|<link rel="modulepreload"[^>]*href="([^"]+)"/g)].map((m) => m[1] ?? m[2]);
let raw = 0;
let gz = 0;
for (const path of firstView) {
  const bytes = readFileSync(join(DASHBOARD_DIR, path));
  raw += bytes.byteLength;
  gz += gzipSync(bytes, { level: 9 }).byteLength;
}
console.log(`first view JS: ${firstView.join(', ')}: ${(raw / 1000).toFixed(1)} kB, gzip ${(gz / 1000).toFixed(1)} kB (budget ${JS_BUDGET / 1000} kB): ${gz <= JS_BUDGET ? 'met' : 'NOT MET'}`);

// ---- (2) History's first useful render ----

const SEED_SQL = `
SELECT setseed(0.42);
INSERT INTO "Product" (id, name, options, "createdAt", "updatedAt")
  SELECT gen_random_uuid(), 'bench-' || g, '{}', now(), now() FROM generate_series(1, ${P}) g;
CREATE TEMP TABLE p AS SELECT row_number() OVER (ORDER BY name) - 1 AS k, id FROM "Product";
INSERT INTO "Inspection" (id, "productId", "externalId", status, options, width, height, channels, "createdAt", "updatedAt",
    "startedAt", "finishedAt", verdict, "imageScore", "defectFraction", "regionCount", "stageMs", "totalMs")
SELECT gen_random_uuid(), p.id, 'station-' || (g % 8) || '/' || g, 'SUCCEEDED', '{}', 1024, 1024, 3, t.created, t.created,
    t.created + interval '1 second', t.created + interval '3 seconds',
    (CASE WHEN r < 0.08 THEN 'DEFECTIVE' ELSE 'NOMINAL' END)::"Verdict", r * 3, CASE WHEN r < 0.08 THEN 0.001 + r * 0.5 ELSE 0 END,
    CASE WHEN r < 0.08 THEN 1 ELSE 0 END, '{"stats": 2.0}'::jsonb, 2000
FROM (SELECT g, random() AS r, random() AS r_time FROM generate_series(1, ${N}) g) d
JOIN p ON p.k = d.g % ${P}
CROSS JOIN LATERAL (SELECT date_trunc('second', now() AT TIME ZONE 'UTC') - (d.r_time * ${DAYS} * interval '1 day') AS created) t;
ANALYZE;
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const name = `ttt_bench_${Date.now().toString(36)}`;
const admin = new pg.Client({ connectionString: baseUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
await admin.end();
const url = new URL(baseUrl);
url.pathname = `/${name}`;
const db = await openDatabase({ url: url.toString() });
let failed = gz > JS_BUDGET;
try {
  await migrate(db);
  let t = performance.now();
  await db.withSession((s) => s.exec(SEED_SQL));
  console.log(`seeded ${await db.prisma.inspection.count()} inspections of ${P} products over ${DAYS} days in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const product = await db.prisma.product.findFirstOrThrow({ orderBy: { name: 'asc' }, select: { id: true } });
  const logger = memoryLogger();
  const events = createInspectionEvents();
  const config = defaultConfig({ rateLimitPerMinute: 1e9, rateLimitBurst: 1e9 });
  const processor = createInProcessProcessor({ db: db.prisma, events, logger, limits: jobLimits(config) });
  const app = createApp({ db: db.prisma, processor, events, config, logger });
  const server = createHttpServer(app, app.config);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { secret } = await createApiKey(db.prisma, { role: 'VIEWER', name: 'bench/dashboard-web.ts' });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  try {
    const cases = [
      { label: 'History, no filter, newest first', hash: '#/history' },
      { label: 'History, one product, DEFECTIVE, by image score', hash: `#/history?product=${encodeURIComponent(encodeGlobalID('Product', product.id))}&verdict=DEFECTIVE&sort=score&dir=desc` },
    ];
    for (const c of cases) {
      const times: number[] = [];
      const parts: { page: number; script: number; data: number }[] = [];
      // Each run in a new context: an empty cache and a new tab, the key put in its sessionStorage first.
      for (let run = 0; run < RUNS + 2; run++) {
        const context = await browser.newContext();
        await context.addInitScript((key) => {
          sessionStorage.setItem('ttt-inspect.key', key);
          sessionStorage.setItem('ttt-inspect.key.role', 'VIEWER');
          // The moment the 50th row is in the document, taken in the page (not when the bench's poll sees it).
          new MutationObserver((_, observer) => {
            if (!document.querySelector('[data-testid=history-table] tbody tr:nth-child(50)')) return;
            (window as unknown as { rendered: number }).rendered = performance.now();
            observer.disconnect();
          }).observe(document, { childList: true, subtree: true });
        }, secret);
        const page = await context.newPage();
        await page.goto(`${base}/${c.hash}`, { waitUntil: 'commit' });
        await page.waitForSelector('[data-testid=history-table] tbody tr:nth-child(50)', { timeout: 30_000 });
        const [ms, part] = await page.evaluate(() => {
          const now = (window as unknown as { rendered: number }).rendered;
          const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
          const resources = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
          const script = resources.find((r) => /\/assets\/index-.*\.js$/.test(r.name));
          const data = resources.filter((r) => r.name.endsWith('/graphql')).map((r) => r.responseEnd);
          return [now, { page: nav.responseEnd, script: script?.responseEnd ?? NaN, data: Math.max(...data) }] as const;
        });
        if (run >= 2) (times.push(ms), parts.push(part));
        await context.close();
      }
      const m = median(times);
      if (m > RENDER_BUDGET_MS) failed = true;
      console.log(`${c.label}: first useful render (50 rows) median ${m.toFixed(0)} ms, min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)} over ${RUNS} cold loads (budget ${RENDER_BUDGET_MS} ms): ${m <= RENDER_BUDGET_MS ? 'met' : 'NOT MET'}`);
      // Where the time goes (medians, ms from navigation start): the page received, its script received,
      // the last GraphQL answer received (the background key check included, which may end after the rows).
      console.log(`  page ${median(parts.map((p) => p.page)).toFixed(0)}, script ${median(parts.map((p) => p.script)).toFixed(0)}, last GraphQL answer ${median(parts.map((p) => p.data)).toFixed(0)}`);
    }
  } finally {
    await browser.close();
    server.closeAllConnections();
    server.close();
    await processor.close();
  }
} finally {
  await db.close();
  const c = new pg.Client({ connectionString: baseUrl });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.end();
}
process.exit(failed ? 1 : 0);
