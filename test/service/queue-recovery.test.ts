// Recovery paths of the PostgreSQL queue across processes: a worker's graceful shutdown (SIGTERM) that
// finishes its running job, and one that releases it past SHUTDOWN_TIMEOUT_SECONDS so that another worker
// completes it; a lost send repaired; a job whose worker dies on every attempt dead-lettered to FAILED.
// The server (API + queue producer, no embedded worker) runs in this process; the workers are separate
// processes (`src/worker/main.ts`).
//
// To hold a job "running" for as long as a case needs, without a fault hook in the product: the test
// takes an ACCESS EXCLUSIVE lock on the InspectionBlob table. A worker then claims the job (the
// inspection RUNNING under its lease, an attempt logged) and blocks reading the inputs, exactly where a
// slow database would stall it, until the test rolls the lock back. The lock is taken after the inputs
// were stored (a submission writes blobs), and before any worker can read them: either the workers are
// started after it, or the job is sent after it (stored by an app whose processor never sends, as when
// the server died between storing and sending, then sent by the queue processor's own enqueue).

import { decodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueProcessor } from '../../src/processing/queue.ts';
import { defaultConfig } from '../../src/service/config.ts';
import { createApp } from '../../src/server/yoga.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { startProcess, until, type Proc } from '../helpers/processes.ts';
import { POSTGRES_URL, SUBMIT, client, createProduct, sampleFiles, startService, subscribe, type Client, type TestService } from './helpers.ts';

const FILTERBANK = [{ key: 'features.extractor', value: 'filterbank' }];
const localId = (globalId: string) => decodeGlobalID(globalId).id;
// Short, for the dead-letter case (each delivery waits this long to expire), with room for a first job
// on a fresh worker (device creation, shader compilation: about 1 s here) so that no other job expires.
const JOB_TIMEOUT_SECONDS = 4;
const WAIT = 30_000;

interface Worker {
  proc: Proc;
  /** The worker's own pid (tsx runs the script in a child process). */
  pid: number;
  text(): string;
}

describe.skipIf(!POSTGRES_URL)('worker shutdown, lost sends and dead letters on PostgreSQL', () => {
  let s: TestService;
  let queue: QueueProcessor;
  /** The same API, but its processor never sends the job: the server "died" between storing and sending. */
  let unsent: Client;
  let productId: string;
  let env: Record<string, string>;
  const workers: Worker[] = [];

  const startWorker = (extra: Record<string, string> = {}) => {
    const proc = startProcess('src/worker/main.ts', { ...env, ...extra });
    const text = () => proc.output.join('');
    return until('a worker ready', async () => {
      if (proc.child.exitCode !== null) throw new Error(`the worker exited: ${text().slice(-2000)}`);
      const m = /"worker ready".*"pid":(\d+)/.exec(text());
      if (!m) return null;
      const w: Worker = { proc, pid: Number(m[1]), text };
      workers.push(w);
      return w;
    }, WAIT, 100);
  };

  /** Blocks every read of the inspections' inputs until released (see the header). */
  const holdInputs = async () => {
    const c = new pg.Client({ connectionString: s.database.url! });
    c.on('error', () => undefined); // the database is dropped under it if a case fails while holding it
    await c.connect();
    await c.query('BEGIN');
    await c.query('LOCK TABLE "InspectionBlob" IN ACCESS EXCLUSIVE MODE');
    return {
      async release() {
        await c.query('ROLLBACK');
        await c.end();
      },
    };
  };

  const submit = async (via: Client, seed: number) => {
    const r = await via.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 48, height: 48, seed })));
    expect(r.data!.submitInspection.inspection.status).toBe('QUEUED');
    return r.data!.submitInspection.inspection.id as string;
  };

  const pidOf = (worker: string) => Number(worker.split(':').pop());
  const attemptsOf = async (inspectionId: string) =>
    (await s.prisma.inspectionAttempt.findMany({ where: { inspectionId }, orderBy: { attempt: 'asc' }, select: { outcome: true, worker: true } })).map((a) => ({
      outcome: a.outcome,
      pid: pidOf(a.worker),
    }));
  /** The worker that claimed attempt `attempt` of one of `ids`. */
  const claimed = (ids: string[], attempt = 1) =>
    until('a worker inside the job', () => s.prisma.inspectionAttempt.findFirst({ where: { inspectionId: { in: ids }, attempt }, select: { inspectionId: true, worker: true } }), WAIT, 10).then(
      (a) => ({ inspectionId: a.inspectionId, pid: pidOf(a.worker) }),
    );
  const jobsOf = (inspectionId: string, queueName = 'inspection') =>
    s.prisma.$queryRawUnsafe<{ state: string; retry_count: number }[]>(
      `SELECT state::text, retry_count FROM pgboss.job WHERE name = $1 AND data->>'inspectionId' = $2 ORDER BY created_on`,
      queueName,
      inspectionId,
    );
  /** The jobs once none is pending or active (pg-boss records a job's end after its handler returned). */
  const settledJobsOf = (inspectionId: string, queueName = 'inspection') =>
    until('the jobs settled', async () => {
      const jobs = await jobsOf(inspectionId, queueName);
      return jobs.length > 0 && jobs.every((j) => j.state === 'completed' || j.state === 'failed') && jobs;
    }, WAIT, 50);
  const statusOf = async (id: string) => (await s.prisma.inspection.findUniqueOrThrow({ where: { id }, select: { status: true } })).status;
  const finished = (id: string) => until('the inspection finished', async () => ['SUCCEEDED', 'FAILED'].includes(await statusOf(id)), WAIT, 100);
  const expectOneSetOfRegions = async (id: string) => {
    const row = await s.prisma.inspection.findUniqueOrThrow({ where: { id }, select: { regionCount: true, _count: { select: { regions: true } } } });
    expect(row._count.regions).toBe(row.regionCount);
  };

  beforeAll(async () => {
    s = await startService('postgres', {
      queue: { work: false, settings: { jobTimeoutSeconds: JOB_TIMEOUT_SECONDS, retryLimit: 1, retryDelaySeconds: 1 } },
    });
    queue = s.processor as QueueProcessor;
    const app = createApp({ db: s.prisma, processor: { ...queue, enqueue: () => undefined }, events: s.app.events, config: defaultConfig(), logger: s.logger });
    unsent = client(app, s.adminKey);
    productId = await createProduct(s, 'gasket', FILTERBANK);
    // The settings of every process sharing the queue (those of the jobs are the sender's, this process's).
    env = {
      DATABASE_URL: s.database.url!,
      PROCESSING_CONCURRENCY: '1',
      JOB_TIMEOUT_SECONDS: String(JOB_TIMEOUT_SECONDS),
      JOB_RETRY_LIMIT: '1',
      JOB_RETRY_DELAY_SECONDS: '1',
      LOG_LEVEL: 'info',
    };
  });

  afterAll(async () => {
    for (const w of workers) {
      if (w.proc.child.exitCode !== null) continue;
      try {
        process.kill(w.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      w.proc.child.kill('SIGKILL');
    }
    await Promise.all(workers.map((w) => w.proc.exited));
    await s?.close();
  });

  // Left QUEUED by the first case for the second.
  let leftover = '';

  it('SIGTERM: the worker takes no further job, finishes the running one and exits 0', async () => {
    const ids = [localId(await submit(s, 1)), localId(await submit(s, 2))];
    const hold = await holdInputs();
    const w = await startWorker();
    const running = await claimed(ids);
    expect(running.pid).toBe(w.pid);
    process.kill(w.pid, 'SIGTERM');
    await until('the worker stopping', async () => w.text().includes('"worker stopping"'), WAIT, 10);
    await hold.release();
    expect(await w.proc.exited).toBe(0);

    // Finished by that worker, after the signal, once.
    expect(await statusOf(running.inspectionId)).toBe('SUCCEEDED');
    expect(await attemptsOf(running.inspectionId)).toEqual([{ outcome: 'SUCCEEDED', pid: w.pid }]);
    await expectOneSetOfRegions(running.inspectionId);
    expect(await jobsOf(running.inspectionId)).toEqual([{ state: 'completed', retry_count: 0 }]);
    const lines = w.text().split('\n');
    const stopping = lines.findIndex((l) => l.includes('"worker stopping"'));
    const done = lines.findIndex((l) => l.includes(`"inspection":"${running.inspectionId}"`) && l.includes('"status":"SUCCEEDED"'));
    expect(stopping).toBeGreaterThanOrEqual(0);
    expect(done).toBeGreaterThan(stopping);
    expect(w.text()).toMatch(/"worker stopped".*"released":0/);

    // The other job was not taken: still queued, never attempted.
    leftover = ids.find((id) => id !== running.inspectionId)!;
    expect(await statusOf(leftover)).toBe('QUEUED');
    expect(await attemptsOf(leftover)).toEqual([]);
    expect(await jobsOf(leftover)).toEqual([{ state: 'created', retry_count: 0 }]);
  });

  it('SIGTERM past SHUTDOWN_TIMEOUT_SECONDS: the running job is released, redelivered and completed by another worker', async () => {
    const hold = await holdInputs();
    // Four workers, whichever takes the job is stopped; the others stay for the next cases (the dead-letter
    // case needs three). All are ready before any job runs, so that no job competes with a start-up.
    const started = await Promise.all([1, 2, 3, 4].map(() => startWorker({ SHUTDOWN_TIMEOUT_SECONDS: '1' })));
    const running = await claimed([leftover]);
    const victim = started.find((w) => w.pid === running.pid)!;
    expect(victim).toBeDefined();
    const t = Date.now();
    process.kill(victim.pid, 'SIGTERM');
    // It exits while its job is still blocked: it does not wait for the job beyond the timeout.
    expect(await victim.proc.exited).toBe(0);
    const waited = Date.now() - t;
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(waited).toBeLessThan(15_000);
    expect(victim.text()).toMatch(new RegExp(`"inspection":"${leftover}","status":"RELEASED"`));
    expect(victim.text()).toMatch(/"worker stopped".*"released":1/);
    expect((await attemptsOf(leftover))[0]).toEqual({ outcome: 'RELEASED', pid: victim.pid });
    await hold.release();

    await finished(leftover);
    expect(await statusOf(leftover)).toBe('SUCCEEDED');
    const [released, completed] = await attemptsOf(leftover);
    expect(released).toEqual({ outcome: 'RELEASED', pid: victim.pid });
    expect(completed.outcome).toBe('SUCCEEDED');
    expect(completed.pid).not.toBe(victim.pid);
    expect(await attemptsOf(leftover)).toHaveLength(2);
    await expectOneSetOfRegions(leftover);
    // The release counted as one delivery of the job (pg-boss failed it back to the queue).
    expect(await settledJobsOf(leftover)).toEqual([{ state: 'completed', retry_count: 1 }]);
  });

  it('repair() re-sends the job of an inspection stored QUEUED without one (the send was lost), and it completes', async () => {
    const id = localId(await submit(unsent, 3));
    expect(await s.prisma.inspection.findUniqueOrThrow({ where: { id }, select: { status: true, jobId: true } })).toEqual({ status: 'QUEUED', jobId: null });
    expect(await jobsOf(id)).toEqual([]);
    // A send may still be under way for a while: only inspections left so for 30 s are repaired.
    expect(await queue.repair()).toBe(0);
    await s.prisma.$executeRawUnsafe(`UPDATE "Inspection" SET "updatedAt" = now() - interval '1 minute' WHERE id = $1::uuid`, id);
    expect(await queue.repair()).toBe(1);
    expect(await queue.repair()).toBe(0);
    await finished(id);
    expect(await statusOf(id)).toBe('SUCCEEDED');
    expect((await attemptsOf(id)).map((a) => a.outcome)).toEqual(['SUCCEEDED']);
    await expectOneSetOfRegions(id);
    expect(await settledJobsOf(id)).toEqual([{ state: 'completed', retry_count: 0 }]);
  });

  it('a job whose worker dies on every attempt ends FAILED after 1 + JOB_RETRY_LIMIT attempts, announced to subscribers', async () => {
    const alive = workers.filter((w) => w.proc.child.exitCode === null);
    expect(alive).toHaveLength(3);
    const gid = await submit(unsent, 4);
    const id = localId(gid);
    const sub = await subscribe(s, `subscription($id: ID!) { inspectionUpdated(id: $id) { status errorCode errorMessage } }`, { id: gid });
    expect((await sub.next()).data.inspectionUpdated.status).toBe('QUEUED');
    const hold = await holdInputs();
    await queue.enqueue(id);
    const killed: number[] = [];
    for (const attempt of [1, 2]) {
      const running = await claimed([id], attempt);
      const victim = alive.find((w) => w.pid === running.pid)!;
      process.kill(victim.pid, 'SIGKILL');
      await victim.proc.exited;
      killed.push(victim.pid);
    }
    await hold.release();

    // The third worker takes the dead letter and marks the inspection FAILED; the server's subscriber hears it.
    const message = `processing did not complete in 2 attempts: the worker stopped or exceeded JOB_TIMEOUT_SECONDS (${JOB_TIMEOUT_SECONDS} s) each time`;
    expect((await sub.next()).data.inspectionUpdated).toEqual({ status: 'FAILED', errorCode: 'INTERNAL', errorMessage: message });
    sub.close();
    expect(await s.prisma.inspection.findUniqueOrThrow({ where: { id }, select: { status: true, errorCode: true, errorMessage: true, leaseId: true } })).toEqual({
      status: 'FAILED',
      errorCode: 'INTERNAL',
      errorMessage: message,
      leaseId: null,
    });
    expect(await attemptsOf(id)).toEqual(killed.map((pid) => ({ outcome: 'ABANDONED', pid })));
    expect(await jobsOf(id)).toEqual([{ state: 'failed', retry_count: 1 }]);
    expect(await settledJobsOf(id, 'inspection-dead')).toEqual([{ state: 'completed', retry_count: 0 }]);
  });
});
