// The dashboard queries: the inspections connection (filters, ordering, cursor pagination) and
// inspectionStats buckets, on seeded rows with known values; and a constant number of SQL statements
// per request whatever the page size (no N+1).

import { encodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startService, type TestService } from './helpers.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2025, 2, 10); // 2025-03-10T00:00Z

interface Seeded {
  id: string;
  productId: string;
  createdAt: Date;
  status: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  verdict: 'NOMINAL' | 'DEFECTIVE' | null;
  imageScore: number | null;
  defectFraction: number | null;
  regions: number;
}

/** 60 inspections of product A over 3 days (every 72 minutes) and 10 of product B, with known fields. */
async function seed(s: TestService): Promise<{ a: string; b: string; rows: Seeded[] }> {
  const a = (await s.prisma.product.create({ data: { name: 'A' } })).id;
  const b = (await s.prisma.product.create({ data: { name: 'B' } })).id;
  const rows: Seeded[] = [];
  for (let k = 0; k < 70; k++) {
    const productId = k < 60 ? a : b;
    const status = k % 10 === 9 ? 'FAILED' : k % 10 === 8 ? 'QUEUED' : 'SUCCEEDED';
    const defective = status === 'SUCCEEDED' && k % 3 === 0;
    const id = `0195${k.toString(16).padStart(4, '0')}-0000-7000-8000-000000000000`;
    rows.push({
      id,
      productId,
      createdAt: new Date(T0 + (k % 60) * 72 * 60_000 + (k >= 60 ? 30_000 : 0)),
      status,
      verdict: status === 'SUCCEEDED' ? (defective ? 'DEFECTIVE' : 'NOMINAL') : null,
      imageScore: status === 'SUCCEEDED' ? ((k * 37) % 100) / 10 : null,
      defectFraction: status === 'SUCCEEDED' ? (defective ? ((k % 7) + 1) / 100 : 0) : null,
      regions: defective ? (k % 3) + 1 + (k % 2) : 0,
    });
  }
  await s.prisma.inspection.createMany({
    data: rows.map((r) => ({
      id: r.id,
      productId: r.productId,
      createdAt: r.createdAt,
      status: r.status,
      verdict: r.verdict,
      imageScore: r.imageScore,
      defectFraction: r.defectFraction,
      regionCount: r.status === 'SUCCEEDED' ? r.regions : null,
      width: 100,
      height: 80,
      channels: 1,
    })),
  });
  await s.prisma.region.createMany({
    data: rows.flatMap((r) =>
      Array.from({ length: r.regions }, (_, k) => ({
        inspectionId: r.id,
        index: k + 1,
        area: 10 * (k + 1),
        bboxX: k,
        bboxY: k,
        bboxWidth: 5,
        bboxHeight: 4,
        centroidX: k + 2,
        centroidY: k + 1.5,
        meanScore: 0.5,
        maxScore: 0.9,
      })),
    ),
  });
  return { a, b, rows };
}

const PAGE = `query($filter: InspectionFilter, $first: Int, $after: String, $last: Int, $before: String, $orderBy: InspectionOrder) {
  inspections(filter: $filter, first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) {
    totalCount
    edges { cursor node { id status verdict imageScore defectFraction createdAt maskUrl product { name } regions { index area bbox { x y width height } } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

/** What a dashboard asks for: one page of a product's inspections in a date range, with their regions. */
const DASHBOARD = `query($filter: InspectionFilter, $first: Int) {
  inspections(filter: $filter, first: $first) {
    edges { node { id status verdict imageScore defectFraction createdAt imageUrl maskUrl product { name } regions { area bbox { x y width height } meanScore maxScore } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const STATS = `query($p: ID, $from: DateTime!, $to: DateTime!, $bucket: StatsBucket!) {
  inspectionStats(productId: $p, from: $from, to: $to, bucket: $bucket) {
    bucket from to
    totals { total queued running succeeded failed defective nominal defectRate meanDefectFraction }
    buckets { start total queued succeeded failed defective nominal defectRate meanDefectFraction }
  }
}`;

describe.each(BACKENDS)('dashboard queries on %s', (backend) => {
  let s: TestService;
  let a: string;
  let b: string;
  let rows: Seeded[];
  const gid = (id: string) => encodeGlobalID('Inspection', id);

  beforeAll(async () => {
    s = await startService(backend);
    ({ a, b, rows } = await seed(s));
    a = encodeGlobalID('Product', a);
    b = encodeGlobalID('Product', b);
  });
  afterAll(async () => s?.close());

  it('filters by product, status, verdict and date range, newest first by default', async () => {
    const from = new Date(T0 + DAY).toISOString();
    const to = new Date(T0 + 2 * DAY).toISOString();
    const r = await s.gql(PAGE, { filter: { productId: a, from, to, status: 'SUCCEEDED', verdict: 'DEFECTIVE' }, first: 100 });
    const expected = rows
      .filter((x) => x.productId === rows[0].productId && x.createdAt >= new Date(from) && x.createdAt < new Date(to) && x.verdict === 'DEFECTIVE')
      .sort((p, q) => q.createdAt.getTime() - p.createdAt.getTime());
    expect(expected.length).toBeGreaterThan(3);
    const nodes = r.data!.inspections.edges.map((e: any) => e.node);
    expect(nodes.map((n: any) => n.id)).toEqual(expected.map((x) => gid(x.id)));
    for (const [n, x] of nodes.map((n: any, k: number) => [n, expected[k]] as const)) {
      expect(n.regions.map((g: any) => g.area)).toEqual(Array.from({ length: x.regions }, (_, k) => 10 * (k + 1)));
      expect(n.product.name).toBe('A');
      expect(n.maskUrl).toMatch(new RegExp(`/files/inspections/${x.id}/mask.png$`));
    }
    expect(r.data!.inspections.pageInfo.hasNextPage).toBe(false);
    const onlyB = await s.gql(PAGE, { filter: { productId: b }, first: 100 });
    expect(onlyB.data!.inspections.edges).toHaveLength(10);
    const failed = await s.gql(PAGE, { filter: { status: 'FAILED' }, first: 100 });
    expect(failed.data!.inspections.edges).toHaveLength(rows.filter((x) => x.status === 'FAILED').length);
  });

  it('pages through every ordering with cursors, without gaps or repeats', async () => {
    const orders: [Record<string, string> | undefined, (p: Seeded, q: Seeded) => number][] = [
      [undefined, (p, q) => q.createdAt.getTime() - p.createdAt.getTime() || q.id.localeCompare(p.id)],
      [{ field: 'CREATED_AT', direction: 'ASC' }, (p, q) => p.createdAt.getTime() - q.createdAt.getTime() || p.id.localeCompare(q.id)],
      [{ field: 'IMAGE_SCORE', direction: 'DESC' }, (p, q) => q.imageScore! - p.imageScore! || q.id.localeCompare(p.id)],
      [{ field: 'DEFECT_FRACTION', direction: 'ASC' }, (p, q) => p.defectFraction! - q.defectFraction! || p.id.localeCompare(q.id)],
    ];
    for (const [orderBy, compare] of orders) {
      const seen: string[] = [];
      let after: string | null = null;
      for (let page = 0; page < 20; page++) {
        const r: any = await s.gql(PAGE, { filter: { productId: a }, first: 7, after, orderBy });
        expect(r.errors).toBeUndefined();
        seen.push(...r.data.inspections.edges.map((e: any) => e.node.id));
        if (!r.data.inspections.pageInfo.hasNextPage) break;
        after = r.data.inspections.pageInfo.endCursor;
      }
      const field = orderBy?.field === 'IMAGE_SCORE' ? 'imageScore' : orderBy?.field === 'DEFECT_FRACTION' ? 'defectFraction' : 'createdAt';
      const expected = rows
        .filter((x) => x.productId === rows[0].productId && x[field] !== null)
        .sort(compare)
        .map((x) => gid(x.id));
      expect(expected.length).toBeGreaterThan(40);
      expect(seen, JSON.stringify(orderBy)).toEqual(expected);

      // Backwards from the end with last/before.
      const back: string[] = [];
      let before: string | null = null;
      for (let page = 0; page < 20; page++) {
        const r: any = await s.gql(PAGE, { filter: { productId: a }, last: 7, before, orderBy });
        expect(r.errors).toBeUndefined();
        expect(r.data.inspections.totalCount).toBe(expected.length);
        back.unshift(...r.data.inspections.edges.map((e: any) => e.node.id));
        if (!r.data.inspections.pageInfo.hasPreviousPage) break;
        before = r.data.inspections.pageInfo.startCursor;
      }
      expect(back, `backwards ${JSON.stringify(orderBy)}`).toEqual(expected);
    }
  });

  it('counts per day and per hour, with defect rate and mean defect area', async () => {
    const r = await s.gql(STATS, { p: a, from: new Date(T0).toISOString(), to: new Date(T0 + 3 * DAY).toISOString(), bucket: 'DAY' });
    const st = r.data!.inspectionStats;
    expect(st.buckets).toHaveLength(3);
    const mine = rows.filter((x) => x.productId === rows[0].productId);
    for (const [d, bucket] of st.buckets.entries()) {
      const inDay = mine.filter((x) => x.createdAt.getTime() >= T0 + d * DAY && x.createdAt.getTime() < T0 + (d + 1) * DAY);
      const ok = inDay.filter((x) => x.status === 'SUCCEEDED');
      const bad = ok.filter((x) => x.verdict === 'DEFECTIVE');
      expect(bucket.start).toBe(new Date(T0 + d * DAY).toISOString());
      expect(bucket).toMatchObject({
        total: inDay.length,
        queued: inDay.filter((x) => x.status === 'QUEUED').length,
        succeeded: ok.length,
        failed: inDay.filter((x) => x.status === 'FAILED').length,
        defective: bad.length,
        nominal: ok.length - bad.length,
      });
      expect(bucket.defectRate).toBeCloseTo(bad.length / ok.length, 12);
      expect(bucket.meanDefectFraction).toBeCloseTo(ok.reduce((acc, x) => acc + x.defectFraction!, 0) / ok.length, 12);
    }
    expect(st.totals.total).toBe(60);
    expect(st.totals.succeeded).toBe(mine.filter((x) => x.status === 'SUCCEEDED').length);

    // Hourly over 6 hours: 72-minute spacing puts 0 or 1 or 2 inspections in each hour; empty hours are listed too.
    const hourly = (await s.gql(STATS, { p: a, from: new Date(T0).toISOString(), to: new Date(T0 + 6 * 3_600_000).toISOString(), bucket: 'HOUR' })).data!.inspectionStats;
    const perHour = hourly.buckets.map((x: any) => x.total);
    const expectedPerHour = Array.from({ length: 6 }, (_, h) => mine.filter((x) => Math.floor((x.createdAt.getTime() - T0) / 3_600_000) === h).length);
    expect(perHour).toEqual(expectedPerHour);
    expect(hourly.buckets.find((x: any) => x.total === 0)).toMatchObject({ defectRate: null, meanDefectFraction: null });

    // Across products.
    const all = (await s.gql(STATS, { from: new Date(T0).toISOString(), to: new Date(T0 + 3 * DAY).toISOString(), bucket: 'DAY' })).data!.inspectionStats;
    expect(all.totals.total).toBe(70);
  });

  it('pages with SQL LIMIT, also after a cursor', async () => {
    for (const orderBy of [undefined, { field: 'IMAGE_SCORE', direction: 'DESC' }, { field: 'DEFECT_FRACTION', direction: 'ASC' }]) {
      const first = await s.gql(PAGE, { filter: { productId: a }, first: 5, orderBy });
      const before = s.database.queries.length;
      await s.gql(PAGE, { filter: { productId: a }, first: 5, after: first.data!.inspections.pageInfo.endCursor, orderBy });
      const page = s.database.queries.slice(before).filter((q) => q.startsWith('SELECT "public"."Inspection"."id"') && q.includes('ORDER BY'));
      expect(page).toHaveLength(1);
      expect(page[0]).toMatch(/ LIMIT \$\d+/);
    }
  });

  it('keeps the hourly rollup equal to the aggregate of the inspections through inserts, transitions and deletes', async () => {
    const aggregate = `SELECT "productId"::text AS p, "hour" AS h, "total", "queued", "running", "succeeded", "failed", "defective", "nominal", round("defectSum"::numeric, 9)::text AS d
                       FROM "InspectionHourStats" WHERE "total" <> 0 ORDER BY 1, 2`;
    const direct = `SELECT "productId"::text AS p, date_trunc('hour', "createdAt") AS h, count(*)::int AS total,
                           count(*) FILTER (WHERE status = 'QUEUED')::int AS queued, count(*) FILTER (WHERE status = 'RUNNING')::int AS running,
                           count(*) FILTER (WHERE status = 'SUCCEEDED')::int AS succeeded, count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
                           count(*) FILTER (WHERE status = 'SUCCEEDED' AND verdict = 'DEFECTIVE')::int AS defective,
                           count(*) FILTER (WHERE status = 'SUCCEEDED' AND verdict = 'NOMINAL')::int AS nominal,
                           round(coalesce(sum("defectFraction") FILTER (WHERE status = 'SUCCEEDED'), 0)::numeric, 9)::text AS d
                    FROM "Inspection" GROUP BY 1, 2 ORDER BY 1, 2`;
    const compare = async () => {
      const [x, y] = await s.database.db.withSession(async (q) => [await q.query(aggregate), await q.query(direct)]);
      expect(x).toEqual(y);
    };
    await compare();
    const p = rows[0].productId;
    await s.prisma.inspection.updateMany({ where: { productId: p, status: 'QUEUED' }, data: { status: 'RUNNING' } });
    await compare();
    await s.prisma.inspection.updateMany({ where: { productId: p, status: 'RUNNING' }, data: { status: 'SUCCEEDED', verdict: 'DEFECTIVE', defectFraction: 0.25 } });
    await s.prisma.inspection.updateMany({ where: { productId: p, status: 'FAILED' }, data: { status: 'QUEUED' } });
    await s.prisma.inspection.updateMany({ where: { productId: p, verdict: 'NOMINAL' }, data: { defectFraction: 0.001 } });
    await compare();
    await s.prisma.inspection.deleteMany({ where: { id: { in: rows.filter((_, k) => k % 4 === 0).map((r) => r.id) } } });
    await s.prisma.inspection.create({ data: { productId: p, width: 1, height: 1, channels: 1, createdAt: new Date(T0 + 5 * DAY + 123) } });
    await compare();
    const negative = await s.database.db.withSession((q) =>
      q.query(`SELECT 1 FROM "InspectionHourStats" WHERE LEAST("total", "queued", "running", "succeeded", "failed", "defective", "nominal") < 0`),
    );
    expect(negative).toEqual([]);
  });

  // Every inspection of a product and hour writes the same rollup row: a transaction must hold it only while
  // it commits, or concurrent submissions and workers queue behind one another (prisma/migrations/*_hour_stats_at_commit).
  it.runIf(backend === 'postgres')('holds the hour\'s rollup row only while a transaction commits: a concurrent insert of that hour does not wait', async () => {
    const hour = new Date(T0 + 9 * DAY);
    const insert = `INSERT INTO "Inspection" ("id", "productId", "width", "height", "channels", "createdAt", "updatedAt") VALUES (gen_random_uuid(), $1, 1, 1, 1, $2, now())`;
    const open = new pg.Client({ connectionString: s.database.url! });
    const other = new pg.Client({ connectionString: s.database.url! });
    await open.connect();
    await other.connect();
    try {
      await other.query(insert, [rows[0].productId, new Date(hour.getTime() + 1000)]);
      await open.query('BEGIN');
      await open.query(insert, [rows[0].productId, new Date(hour.getTime() + 2000)]);
      // With the rollup updated inside each statement, this insert waits for `open` to end: lock_timeout ends it with 55P03.
      await other.query(`SET lock_timeout = '3s'`);
      await other.query(insert, [rows[0].productId, new Date(hour.getTime() + 3000)]);
      const seen = async () => (await other.query(`SELECT "total" FROM "InspectionHourStats" WHERE "productId" = $1 AND "hour" = $2`, [rows[0].productId, hour])).rows[0].total;
      expect(await seen()).toBe(2);
      await open.query('COMMIT');
      expect(await seen()).toBe(3);
    } finally {
      await open.end();
      await other.end();
    }
    await s.prisma.inspection.deleteMany({ where: { createdAt: { gte: hour, lt: new Date(hour.getTime() + 3_600_000) } } });
    expect((await s.prisma.$queryRaw<{ total: number }[]>`SELECT "total" FROM "InspectionHourStats" WHERE "productId" = ${rows[0].productId}::uuid AND "hour" = ${hour}`)[0].total).toBe(0);
  });

  it('sends a constant number of SQL statements per dashboard request (first 5 and first 50)', async () => {
    const count = async (query: string, variables: Record<string, unknown>) => {
      await s.processor.drain();
      const before = s.database.queries.length;
      const r = await s.gql(query, variables);
      expect(r.errors).toBeUndefined();
      return s.database.queries.length - before;
    };
    // Every request looks its API key up in one statement.
    expect(await count('{ __typename }', {})).toBe(1);
    const filter = { productId: a, from: new Date(T0).toISOString(), to: new Date(T0 + 3 * DAY).toISOString() };
    const small = await count(DASHBOARD, { filter, first: 5 });
    const large = await count(DASHBOARD, { filter, first: 50 });
    expect(large).toBe(small);
    // The key, then the inspections, their regions, their products.
    expect(small).toBe(1 + 3);
    // Asking for totalCount adds its one COUNT.
    expect(await count(PAGE, { filter, first: 50 })).toBe(1 + 4);
    // The key, the product's existence, the rollup.
    expect(await count(STATS, { p: a, from: filter.from, to: filter.to, bucket: 'HOUR' })).toBe(1 + 2);
  });
});
