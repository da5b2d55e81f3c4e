// Applies prisma/migrations/*/migration.sql in order, each in its own transaction, and records them in
// Prisma's `_prisma_migrations` table exactly as `prisma migrate deploy` does (same columns, checksum =
// sha256 of the file), so either tool can take over. Offline: no schema-engine binary is involved.
// Run directly (`npm run migrate`) it migrates the database of the environment (DATABASE_URL or DATA_DIR).

import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { databaseOptionsFromEnv, openDatabase, type Database, type SqlSession } from './db.ts';

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '../prisma/migrations');

/** The advisory lock key `prisma migrate` itself takes, so the two never run at the same time. */
const PRISMA_MIGRATE_LOCK = 72707369;

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: string[];
  /** Applied migrations whose file changed since (reported, not re-run: as `migrate deploy`). */
  modified: string[];
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  if (!existsSync(dir)) throw new Error(`migrations folder ${dir} does not exist`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const bytes = readFileSync(join(dir, name, 'migration.sql'));
      return { name, sql: bytes.toString('utf8'), checksum: createHash('sha256').update(bytes).digest('hex') };
    });
}

interface Row extends Record<string, unknown> {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
}

async function migrateSession(session: SqlSession, migrations: Migration[]): Promise<MigrationReport> {
  const report: MigrationReport = { applied: [], alreadyApplied: [], modified: [] };
  await session.exec(CREATE_TABLE);
  for (const m of migrations) {
    await session.exec('BEGIN');
    try {
      const rows = await session.query<Row>(
        'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE migration_name = $1 AND rolled_back_at IS NULL',
        [m.name],
      );
      const done = rows.find((r) => r.finished_at !== null);
      if (done) {
        if (done.checksum !== m.checksum) report.modified.push(m.name);
        report.alreadyApplied.push(m.name);
        await session.exec('COMMIT');
        continue;
      }
      if (rows.length > 0) {
        throw new Error(
          `migration ${m.name} failed earlier (a row in _prisma_migrations has no finished_at): fix the database, then mark it rolled back (prisma migrate resolve --rolled-back ${m.name})`,
        );
      }
      const id = randomUUID();
      await session.query(
        'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)',
        [id, m.checksum, m.name],
      );
      await session.exec(m.sql);
      await session.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [id]);
      await session.exec('COMMIT');
      report.applied.push(m.name);
    } catch (e) {
      await session.exec('ROLLBACK');
      throw e instanceof Error ? new Error(`migration ${m.name}: ${e.message}`, { cause: e }) : e;
    }
  }
  return report;
}

/** Applies the pending migrations; safe when several processes start at once on one server. */
export async function migrate(db: Database, migrations: Migration[] = readMigrations()): Promise<MigrationReport> {
  return db.withSession(async (session) => {
    if (!session.shared) return migrateSession(session, migrations);
    await session.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
    try {
      return await migrateSession(session, migrations);
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_LOCK]);
    }
  });
}

async function main(): Promise<void> {
  const db = await openDatabase(databaseOptionsFromEnv());
  try {
    const r = await migrate(db);
    for (const name of r.applied) console.log(`migrate: applied ${name}`);
    for (const name of r.modified) console.warn(`migrate: ${name} was applied but its file has changed since`);
    console.log(`migrate: ${db.location} is up to date (${r.applied.length} applied, ${r.alreadyApplied.length} already applied)`);
  } finally {
    await db.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    console.error(`migrate: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
