// Readiness (GET /readyz): whether this process can do its work now. The database answers and has every
// migration of prisma/migrations applied, a WebGPU adapter was obtained, and (PostgreSQL) the job queue
// answers. Each check is limited in time, so a database that hangs reads as not ready instead of hanging.

import type { PrismaClient } from '../db.ts';
import { readMigrations } from '../migrate.ts';

/** A check that has not answered within this many milliseconds fails. */
export const READINESS_TIMEOUT_MS = 2000;

export type CheckName = 'database' | 'migrations' | 'gpu' | 'queue';

export interface Readiness {
  ready: boolean;
  /** "ok", or why the check failed; the queue only on PostgreSQL. */
  checks: Partial<Record<CheckName, string>>;
}

export interface ReadinessProbe {
  db: PrismaClient;
  /** Resolves once the process has a WebGPU adapter (obtaining one on the first call); throws why not. */
  gpu: () => Promise<unknown>;
  /** The durable queue's check (PostgreSQL); absent in-process. */
  queue?: () => Promise<void>;
}

function withinTimeout<T>(work: () => Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    work(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${READINESS_TIMEOUT_MS} ms`)), READINESS_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

const reason = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n').find((l) => l.trim() !== '')?.trim() ?? 'failed';

/** Migrations of prisma/migrations that the database has not finished applying. */
async function missingMigrations(db: PrismaClient, expected: readonly string[]): Promise<string[]> {
  const rows = await db.$queryRawUnsafe<{ migration_name: string }[]>(
    'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
  );
  const applied = new Set(rows.map((r) => r.migration_name));
  return expected.filter((name) => !applied.has(name));
}

export function createReadinessCheck(probe: ReadinessProbe): () => Promise<Readiness> {
  const expected = readMigrations().map((m) => m.name);
  return async () => {
    const checks: Readiness['checks'] = {};
    const run = async (name: CheckName, what: string, work: () => Promise<string>) => {
      try {
        checks[name] = await withinTimeout(work, what);
      } catch (e) {
        checks[name] = reason(e);
      }
    };
    await Promise.all([
      (async () => {
        await run('database', 'the database', async () => (await probe.db.$queryRawUnsafe('SELECT 1'), 'ok'));
        if (checks.database !== 'ok') {
          checks.migrations = 'not checked: the database does not answer';
          return;
        }
        await run('migrations', 'the database', async () => {
          const missing = await missingMigrations(probe.db, expected);
          return missing.length === 0 ? 'ok' : `not applied: ${missing.join(', ')}`;
        });
      })(),
      run('gpu', 'the WebGPU adapter request', async () => (await probe.gpu(), 'ok')),
      ...(probe.queue ? [run('queue', 'the job queue', async () => (await probe.queue!(), 'ok'))] : []),
    ]);
    return { ready: Object.values(checks).every((c) => c === 'ok'), checks };
  };
}
