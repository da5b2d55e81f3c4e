// The one Prisma client factory: embedded PGlite (data under DATA_DIR) when DATABASE_URL is unset, the
// PostgreSQL server at DATABASE_URL otherwise. It also hands migrate.ts a raw SQL session on the same
// database, for what Prisma's query API cannot run (multi-statement scripts, advisory locks).

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { lockDataDir } from './dataLock.ts';
import { PrismaClient } from './generated/prisma/client.ts';

export type { PrismaClient } from './generated/prisma/client.ts';

const BYTEA_OID = 17;

/**
 * bytea in PGlite's text protocol is hex ('\\x' + two digits per byte). PGlite's own serializer and the
 * Prisma adapter's parser build it one byte at a time in JavaScript (a string and a parseInt per byte:
 * ~100 ms for the 300 KB of an inspection's image and map under load); Node's Buffer does the same
 * conversion natively. Same bytes either way (test/service/db.test.ts).
 */
export function serializeBytea(value: unknown): string {
  if (!(value instanceof Uint8Array)) throw new TypeError('Invalid input for bytea type');
  return '\\x' + Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
}

export function parseBytea(text: string): Uint8Array {
  const b = Buffer.from(text.slice(2), 'hex');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

type QueryFn = PGlite['query'];
type Queryable = { query: QueryFn };

/**
 * The PGlite client as the Prisma adapter sees it, with bytea columns parsed by `parseBytea`: the adapter
 * passes its own per-query parsers (which win over the instance's), so its queries, and those of the
 * transactions it opens, get the bytea parser replaced.
 */
function withNativeBytea(lite: PGlite): PGlite {
  const query = (target: Queryable): QueryFn =>
    ((sql: string, params?: unknown[], options?: Parameters<QueryFn>[2]) =>
      target.query(sql, params, { ...options, parsers: { ...options?.parsers, [BYTEA_OID]: parseBytea } })) as QueryFn;
  const wrap = <T extends object>(target: T, extra: (p: PropertyKey) => unknown): T =>
    new Proxy(target, {
      get(t, p) {
        const own = extra(p);
        if (own !== undefined) return own;
        const v = Reflect.get(t, p, t);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
  return wrap(lite, (p) => {
    if (p === 'query') return query(lite);
    if (p === 'transaction') {
      return <T>(fn: (tx: Parameters<Parameters<PGlite['transaction']>[0]>[0]) => Promise<T>) =>
        lite.transaction((tx) => fn(wrap(tx, (q) => (q === 'query' ? query(tx as Queryable) : undefined))));
    }
    return undefined;
  });
}

/** A raw SQL connection: `exec` runs a script of statements, `query` one parameterized statement. */
export interface SqlSession {
  exec(script: string): Promise<void>;
  query<R extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Whether other processes may share the database (then migrations take an advisory lock). */
  readonly shared: boolean;
}

export interface Database {
  readonly prisma: PrismaClient;
  readonly kind: 'pglite' | 'postgres';
  /** Where the data lives, for logs (without credentials). */
  readonly location: string;
  /** Runs `fn` on a dedicated raw connection. */
  withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** A PostgreSQL connection string; when absent, embedded PGlite is used. */
  url?: string;
  /** PGlite's data lives in `<dataDir>/pglite`; `memory://` keeps it in memory. */
  dataDir?: string;
  /** Called with the SQL text of every statement Prisma sends (query counting in tests and the bench). */
  onQuery?: (sql: string) => void;
  /** Errors of idle PostgreSQL connections (e.g. the server restarted); by default written to stderr. */
  onConnectionError?: (error: Error) => void;
}

export function databaseOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): DatabaseOptions {
  return { url: env.DATABASE_URL || undefined, dataDir: env.DATA_DIR || './data' };
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgresql://(unparsable url)';
  }
}

function withQueryLog(prisma: PrismaClient, onQuery?: (sql: string) => void): PrismaClient {
  if (onQuery) (prisma as PrismaClient<'query'>).$on('query', (e) => onQuery(e.query));
  return prisma;
}

export async function openDatabase(options: DatabaseOptions = databaseOptionsFromEnv()): Promise<Database> {
  const log = options.onQuery ? [{ emit: 'event' as const, level: 'query' as const }] : [];
  if (options.url) {
    const url = options.url;
    const pool = new pg.Pool({ connectionString: url, max: Number(process.env.DATABASE_POOL_SIZE) || 10 });
    // Without a listener, an idle connection that the server closes would crash the process; the pool
    // replaces it on the next checkout.
    pool.on('error', options.onConnectionError ?? ((e) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg: 'database connection lost', error: e.message })}\n`)));
    const prisma = withQueryLog(new PrismaClient({ adapter: new PrismaPg(pool), log }), options.onQuery);
    return {
      prisma,
      kind: 'postgres',
      location: redact(url),
      async withSession(fn) {
        const client = await pool.connect();
        try {
          return await fn({
            shared: true,
            exec: async (script) => void (await client.query(script)),
            query: async (sql, params) => (await client.query(sql, params)).rows,
          });
        } finally {
          client.release();
        }
      },
      async close() {
        await prisma.$disconnect();
        if (!pool.ended) await pool.end();
      },
    };
  }

  const base = options.dataDir ?? './data';
  const memory = base.startsWith('memory://');
  const dir = memory ? base : resolve(join(base, 'pglite'));
  // PGlite creates its own directory but not the parents.
  if (!memory) mkdirSync(dir, { recursive: true });
  const unlock = memory ? () => undefined : lockDataDir(dir);
  const lite = new PGlite(dir, { serializers: { [BYTEA_OID]: serializeBytea } });
  try {
    await lite.waitReady;
  } catch (e) {
    unlock();
    throw e;
  }
  const prisma = withQueryLog(new PrismaClient({ adapter: new PrismaPGlite(withNativeBytea(lite)), log }), options.onQuery);
  return {
    prisma,
    kind: 'pglite',
    location: memory ? 'PGlite in memory' : `PGlite at ${dir}`,
    // PGlite is a single connection owned by this process; callers run sessions before serving requests.
    withSession: (fn) =>
      fn({
        shared: false,
        exec: async (script) => void (await lite.exec(script)),
        query: async (sql, params) => (await lite.query(sql, params)).rows as never,
      }),
    async close() {
      await prisma.$disconnect();
      if (!lite.closed) await lite.close();
      unlock();
    },
  };
}
