// Migrations applied by our own code: the migrated database matches schema.prisma (tables, columns,
// types, nullability, enums, keys, indexes, foreign keys), runs are recorded as `prisma migrate deploy`
// records them, re-runs are no-ops, concurrent starts apply once, and a failing migration leaves nothing.

import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db.ts';
import { getDatamodel } from '../../src/generated/pothos-types.ts';
import { migrate, MIGRATIONS_DIR, readMigrations } from '../../src/migrate.ts';
import * as enums from '../../src/generated/prisma/enums.ts';
import { BACKENDS, openTestDatabase, type TestDatabase } from './helpers.ts';

const SCHEMA = readFileSync(join(MIGRATIONS_DIR, '../schema.prisma'), 'utf8');

/** Each model's field lines and block attributes, from schema.prisma (for what the DMMF omits: native types, indexes, onDelete). */
function schemaBlocks(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of SCHEMA.matchAll(/^model (\w+) \{\n([\s\S]*?)\n\}/gm)) out.set(m[1], m[2].split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('//')));
  return out;
}

const PG_TYPE: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  Float: 'double precision',
  Boolean: 'boolean',
  DateTime: 'timestamp without time zone',
  Json: 'jsonb',
  Bytes: 'bytea',
};

async function sql<R extends Record<string, unknown>>(t: TestDatabase, text: string): Promise<R[]> {
  return t.db.withSession((s) => s.query<R>(text));
}

describe.each(BACKENDS)('migrations on %s', (backend) => {
  const opened: TestDatabase[] = [];
  afterAll(async () => {
    for (const t of opened) await t.close();
  });
  const open = async (migrated = false) => {
    const t = await openTestDatabase(backend, migrated);
    opened.push(t);
    return t;
  };

  it('applies every migration once, recorded as prisma migrate deploy records them', async () => {
    const t = await open();
    const files = readMigrations();
    expect(files.length).toBeGreaterThan(0);
    const first = await migrate(t.db);
    expect(first).toEqual({ applied: files.map((f) => f.name), alreadyApplied: [], modified: [] });
    const again = await migrate(t.db);
    expect(again).toEqual({ applied: [], alreadyApplied: files.map((f) => f.name), modified: [] });
    const rows = await sql<{ migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null; applied_steps_count: number; logs: string | null }>(
      t,
      'SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count, logs FROM "_prisma_migrations" ORDER BY migration_name',
    );
    expect(rows.map((r) => r.migration_name)).toEqual(files.map((f) => f.name));
    for (const [k, r] of rows.entries()) {
      const bytes = readFileSync(join(MIGRATIONS_DIR, files[k].name, 'migration.sql'));
      expect(r.checksum).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(r.finished_at).not.toBeNull();
      expect(r.rolled_back_at).toBeNull();
      expect(r.applied_steps_count).toBe(1);
      expect(r.logs).toBeNull();
    }
    // The table has exactly Prisma's columns.
    const cols = await sql<{ column_name: string; data_type: string; is_nullable: string }>(
      t,
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    expect(cols.map((c) => `${c.column_name} ${c.data_type} ${c.is_nullable}`)).toEqual([
      'id character varying NO',
      'checksum character varying NO',
      'finished_at timestamp with time zone YES',
      'migration_name character varying NO',
      'logs text YES',
      'rolled_back_at timestamp with time zone YES',
      'started_at timestamp with time zone NO',
      'applied_steps_count integer NO',
    ]);
  });

  it('gives the database that schema.prisma describes', async () => {
    const t = await open(true);
    const dmmf = getDatamodel().datamodel.models;
    const blocks = schemaBlocks();
    const columns = await sql<{ table_name: string; column_name: string; data_type: string; udt_name: string; is_nullable: string; column_default: string | null; datetime_precision: number | null }>(
      t,
      `SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, datetime_precision FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`,
    );
    expect(new Set(columns.map((c) => c.table_name))).toEqual(new Set(Object.keys(dmmf)));
    for (const [model, def] of Object.entries(dmmf)) {
      const scalars = def.fields.filter((f) => f.kind !== 'object');
      const cols = columns.filter((c) => c.table_name === model);
      expect(cols.map((c) => c.column_name).sort(), model).toEqual(scalars.map((f) => f.name).sort());
      for (const f of scalars) {
        const c = cols.find((x) => x.column_name === f.name)!;
        const line = blocks.get(model)!.find((l) => l.split(/\s+/)[0] === f.name)!;
        const where = `${model}.${f.name}`;
        if (f.kind === 'enum') expect([c.data_type, c.udt_name], where).toEqual(['USER-DEFINED', f.type]);
        else expect(c.data_type, where).toBe(line.includes('@db.Uuid') ? 'uuid' : PG_TYPE[f.type]);
        if (f.type === 'DateTime') expect(c.datetime_precision, where).toBe(3);
        expect(c.is_nullable, where).toBe(f.isRequired ? 'NO' : 'YES');
        // Database defaults exist exactly where the schema gives one that the database computes.
        const dbDefault = /@default\((?!uuid)/.test(line);
        expect(c.column_default !== null, where).toBe(dbDefault);
      }
    }

    const enumRows = await sql<{ typname: string; labels: string[] }>(
      t,
      `SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`,
    );
    const expectedEnums = Object.fromEntries(Object.entries(enums).map(([name, values]) => [name, Object.values(values as Record<string, string>)]));
    expect(Object.fromEntries(enumRows.map((r) => [r.typname, r.labels]))).toEqual(expectedEnums);

    // Indexes: primary keys, uniques and @@index lines, with Prisma's names and column order.
    const expectedIndexes = new Map<string, { unique: boolean; columns: readonly string[] }>();
    for (const [model, def] of Object.entries(dmmf)) {
      const id = def.primaryKey?.fields ?? def.fields.filter((f) => f.isId).map((f) => f.name);
      expectedIndexes.set(`${model}_pkey`, { unique: true, columns: id });
      for (const f of def.fields.filter((x) => x.isUnique)) expectedIndexes.set(`${model}_${f.name}_key`, { unique: true, columns: [f.name] });
      for (const u of def.uniqueIndexes) expectedIndexes.set(`${model}_${u.fields.join('_')}_key`, { unique: true, columns: u.fields });
      for (const l of blocks.get(model)!) {
        const m = /^@@index\(\[([^\]]+)\]/.exec(l);
        if (m) {
          const cols = m[1].split(',').map((x) => x.trim());
          expectedIndexes.set(`${model}_${cols.join('_')}_idx`, { unique: false, columns: cols });
        }
      }
    }
    const indexes = await sql<{ indexname: string; unique: boolean; cols: string[] }>(
      t,
      `SELECT i.relname AS indexname, ix.indisunique AS unique,
              array(SELECT a.attname::text FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(num, ord)
                    JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.num ORDER BY k.ord) AS cols
       FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class r ON r.oid = ix.indrelid
       JOIN pg_namespace n ON n.oid = r.relnamespace
       WHERE n.nspname = 'public' AND r.relname <> '_prisma_migrations'`,
    );
    expect(new Set(indexes.map((i) => i.indexname))).toEqual(new Set(expectedIndexes.keys()));
    for (const i of indexes) expect({ unique: i.unique, columns: i.cols }, i.indexname).toEqual(expectedIndexes.get(i.indexname));

    // Foreign keys: one per relation field, on the related model's id, deleting with the parent.
    const fks = await sql<{ conname: string; on_delete: string; cols: string[]; ref: string }>(
      t,
      `SELECT c.conname, c.confdeltype::text AS on_delete, c.confrelid::regclass::text AS ref,
              array(SELECT a.attname::text FROM unnest(c.conkey) k JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k) AS cols
       FROM pg_constraint c WHERE c.contype = 'f'`,
    );
    const expectedFks = Object.entries(dmmf).flatMap(([model, def]) =>
      def.fields
        .filter((f) => f.relationFromFields && f.relationFromFields.length > 0)
        .map((f) => ({ conname: `${model}_${f.relationFromFields!.join('_')}_fkey`, cols: [...f.relationFromFields!], ref: `"${f.type}"`, cascade: blocks.get(model)!.find((l) => l.startsWith(`${f.name} `))!.includes('onDelete: Cascade') })),
    );
    expect(fks.map((f) => f.conname).sort()).toEqual(expectedFks.map((f) => f.conname).sort());
    for (const e of expectedFks) {
      const f = fks.find((x) => x.conname === e.conname)!;
      expect(f.cols, e.conname).toEqual(e.cols);
      expect(f.ref, e.conname).toBe(e.ref);
      expect(f.on_delete, e.conname).toBe(e.cascade ? 'c' : 'r');
    }
  });

  it('rolls a failing migration back entirely and reports changed files', async () => {
    const t = await open();
    const dir = mkdtempSync(join(tmpdir(), 'ttt-migrations-'));
    const write = (name: string, text: string) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'migration.sql'), text);
    };
    write('001_a', 'CREATE TABLE "A" ("id" INTEGER PRIMARY KEY);');
    write('002_b', 'CREATE TABLE "B" ("id" INTEGER PRIMARY KEY);\nCREATE TABLE "C" ("id" NOT A TYPE);');
    await expect(migrate(t.db, readMigrations(dir))).rejects.toThrow(/migration 002_b/);
    const tables = await sql<{ table_name: string }>(t, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`);
    expect(tables.map((r) => r.table_name)).toEqual(['A', '_prisma_migrations']);
    const rows = await sql<{ migration_name: string }>(t, 'SELECT migration_name FROM "_prisma_migrations"');
    expect(rows.map((r) => r.migration_name)).toEqual(['001_a']);

    writeFileSync(join(dir, '001_a', 'migration.sql'), 'CREATE TABLE "A" ("id" BIGINT PRIMARY KEY);');
    writeFileSync(join(dir, '002_b', 'migration.sql'), 'CREATE TABLE "B" ("id" INTEGER PRIMARY KEY);');
    expect(await migrate(t.db, readMigrations(dir))).toEqual({ applied: ['002_b'], alreadyApplied: ['001_a'], modified: ['001_a'] });
  });

  if (backend === 'postgres') {
    it('applies each migration once when several processes start at the same time', async () => {
      const t = await open();
      const others = await Promise.all([0, 1, 2].map(() => openDatabase({ url: t.url! })));
      try {
        const reports = await Promise.all([t.db, ...others].map((db) => migrate(db)));
        const applied = reports.flatMap((r) => r.applied);
        expect(applied).toEqual(readMigrations().map((m) => m.name));
        const rows = await sql<{ n: number }>(t, 'SELECT count(*)::int AS n FROM "_prisma_migrations"');
        expect(rows[0].n).toBe(readMigrations().length);
      } finally {
        await Promise.all(others.map((db) => db.close()));
      }
    });
  }
});
