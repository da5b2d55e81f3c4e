// Crash recovery across processes, on the PostgreSQL server: one server (no embedded worker) and two
// worker processes (`src/worker/main.ts`) share a database; a worker is SIGKILLed while it runs a job; the
// job is redelivered after the visibility timeout and every inspection ends SUCCEEDED exactly once (one
// SUCCEEDED attempt each, regions not duplicated); SIGTERM then stops the others with exit code 0. A
// subscription on the server (SSE over HTTP) sees every completion, which the workers announce by NOTIFY.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/service/keys.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { freePort, startProcess as start, until, type Proc } from '../helpers/processes.ts';
import { CREATE_PRODUCT, POSTGRES_URL, SUBMIT, eventStream, openTestDatabase, sampleFiles, type TestDatabase } from './helpers.ts';

describe.skipIf(!POSTGRES_URL)('two workers and a server on PostgreSQL', () => {
  let database: TestDatabase;
  const procs: Proc[] = [];
  let url: string;
  const N = 6;

  beforeAll(async () => {
    database = await openTestDatabase('postgres');
    const port = await freePort();
    url = `http://127.0.0.1:${port}/graphql`;
    const env = {
      DATABASE_URL: database.url!,
      PORT: String(port),
      EMBEDDED_WORKER: 'false',
      PROCESSING_CONCURRENCY: '1',
      JOB_TIMEOUT_SECONDS: '8',
      JOB_RETRY_DELAY_SECONDS: '1',
      LOG_LEVEL: 'info',
    };
    procs.push(start('src/server/main.ts', env), start('src/worker/main.ts', env), start('src/worker/main.ts', env));
    await until('the server and two workers', async () => procs[0].output.join('').includes('"listening"') && procs.slice(1).every((p) => p.output.join('').includes('"worker ready"')), 45_000, 100).catch((e: Error) => {
      throw new Error(`${e.message}; their output:\n${procs.map((p) => p.output.join('').slice(-2000)).join('\n---\n')}`);
    });
  });

  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await database?.close();
  });

  it('completes every inspection exactly once after a worker is killed mid-job', async () => {
    const { secret } = await createApiKey(database.db.prisma, { role: 'ADMIN', name: 'e2e' });
    const gql = async (body: BodyInit, headers: Record<string, string> = {}) =>
      (await (await fetch(url, { method: 'POST', body, headers: { authorization: `Bearer ${secret}`, ...headers } })).json()) as any;
    // Long enough a training (about a second on the host path: 10,000 epochs, no early stop) that the worker
    // is still inside the job when the test kills it; faster jobs finished between the look and the kill.
    const slow = [
      { key: 'features.extractor', value: 'filterbank' },
      { key: 'classifier.epochs', value: '10000' },
      { key: 'classifier.patience', value: '10000' },
      { key: 'classifier.tolerance', value: '0' },
    ];
    const product = await gql(JSON.stringify({ query: CREATE_PRODUCT, variables: { input: { name: 'e2e', options: slow } } }), {
      'content-type': 'application/json',
    });
    const productId = product.data.createProduct.product.id;
    const abort = new AbortController();
    const stream = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription($p: ID!) { inspectionCompleted(productId: $p) { id status regionCount } }', variables: { p: productId } }),
      signal: abort.signal,
    });
    expect(stream.status).toBe(200);
    const completions = eventStream(stream, abort);
    const globalIds: string[] = [];
    const ids: string[] = [];
    for (let k = 0; k < N; k++) {
      const files = await sampleFiles(syntheticSample({ width: 64, height: 64, seed: 100 + k }));
      const form = new FormData();
      form.set('operations', JSON.stringify({ query: SUBMIT, variables: { input: { productId, image: null, scoreMap: null } } }));
      form.set('map', JSON.stringify({ 0: ['variables.input.image'], 1: ['variables.input.scoreMap'] }));
      form.set('0', files['input.image']);
      form.set('1', files['input.scoreMap']);
      const r = await gql(form);
      expect(r.data.submitInspection.inspection.status).toBe('QUEUED');
      globalIds.push(r.data.submitInspection.inspection.id);
      ids.push(decodeGlobalID(r.data.submitInspection.inspection.id).id);
    }
    const db = database.db.prisma;

    // Kill whichever worker is first seen inside a job (an attempt started and not finished).
    // The pid the worker logs (tsx runs the script in a child process of its own).
    const workers = new Map(procs.slice(1).map((p) => [Number(/"worker ready".*"pid":(\d+)/.exec(p.output.join(''))![1]), p]));
    const running = await until('a worker inside a job', () => db.inspectionAttempt.findFirst({ where: { outcome: null }, select: { inspectionId: true, worker: true } }), 30_000, 5).catch(async (e: Error) => {
      const statuses = await db.inspection.groupBy({ by: ['status'], _count: true });
      throw new Error(`${e.message}: ${JSON.stringify(statuses)}; output:\n${procs.map((p) => p.output.join('').slice(-3000)).join('\n---\n')}`);
    });
    const victimPid = Number(running.worker.split(':').pop());
    const victim = workers.get(victimPid)!;
    expect(victim).toBeDefined();
    process.kill(victimPid, 'SIGKILL');
    await victim.exited;

    await until('every inspection finished', async () => (await db.inspection.count({ where: { id: { in: ids }, status: { in: ['SUCCEEDED', 'FAILED'] } } })) === N, 60_000, 200);
    const rows = await db.inspection.findMany({ where: { id: { in: ids } }, select: { id: true, status: true, regionCount: true, _count: { select: { regions: true } } } });
    for (const r of rows) {
      expect(r.status).toBe('SUCCEEDED');
      expect(r._count.regions).toBe(r.regionCount);
    }
    const attempts = await db.inspectionAttempt.findMany({ where: { inspectionId: { in: ids } }, select: { inspectionId: true, outcome: true, worker: true } });
    for (const id of ids) expect(attempts.filter((a) => a.inspectionId === id && a.outcome === 'SUCCEEDED')).toHaveLength(1);
    // The interrupted job: abandoned by the killed worker, then completed by the other one.
    const interrupted = attempts.filter((a) => a.inspectionId === running.inspectionId);
    expect(interrupted.map((a) => [a.outcome, Number(a.worker.split(':').pop()) === victimPid])).toEqual([
      ['ABANDONED', true],
      ['SUCCEEDED', false],
    ]);
    const jobs = await db.$queryRawUnsafe<{ state: string; n: number }[]>(
      `SELECT state::text, count(*)::int AS n FROM pgboss.job WHERE name = 'inspection' GROUP BY state`,
    );
    expect(jobs).toEqual([{ state: 'completed', n: N }]);

    // The server's subscriber saw each inspection complete, once, with the stored result.
    const seen = [];
    for (let k = 0; k < N; k++) seen.push((await completions.next()).data.inspectionCompleted);
    completions.close();
    expect(seen.map((e) => e.id).sort()).toEqual([...globalIds].sort());
    for (const e of seen) expect(e).toMatchObject({ status: 'SUCCEEDED', regionCount: rows.find((r) => r.id === decodeGlobalID(e.id).id)!.regionCount });

    // Graceful shutdown of the survivors.
    for (const p of procs.filter((p) => p !== victim)) p.child.kill('SIGTERM');
    expect(await Promise.all(procs.filter((p) => p !== victim).map((p) => p.exited))).toEqual([0, 0]);
  });
});
