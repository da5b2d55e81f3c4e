// `ttt keys` in a child process against an on-disk PGlite database (DATA_DIR): the first ADMIN key is made
// here; keys are printed once and stored hashed; revocation by prefix; bad arguments are refused before
// the database is opened; a database in use is left alone.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { command } from '../../src/cli/keys.ts';
import { openDatabase } from '../../src/db.ts';
import { hashKey } from '../../src/service/keys.ts';
import { runCli } from '../helpers/processes.ts';


let dir: string;

const ttt = (...args: string[]) => runCli(['keys', ...args], { ...process.env, DATABASE_URL: '', DATA_DIR: dir });

/** `ttt keys` in this process (its console captured): no process start, PGlite and Prisma already loaded. */
async function here(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out.stdout += `${a.join(' ')}\n`));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (out.stderr += `${a.join(' ')}\n`));
  const env = { DATABASE_URL: process.env.DATABASE_URL, DATA_DIR: process.env.DATA_DIR };
  Object.assign(process.env, { DATABASE_URL: '', DATA_DIR: dir });
  try {
    await command.run(args);
    return out;
  } finally {
    log.mockRestore();
    error.mockRestore();
    for (const [k, v] of Object.entries(env)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ttt-keys-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

// A child process that opens the database costs about 2 s (5 s the first, which creates it): the command
// runs as a child for the first key on a fresh database, for the refusals (they run together while this
// process holds the database) and for one listing; the other calls run in this process.
it('creates the first admin key on a fresh database, scopes station keys to products, revokes by prefix, lists; refuses bad arguments before the database and a database in use', async () => {
  const admin = await ttt('create', '--role', 'admin', '--name', 'ops');
  expect(admin.code, admin.stderr).toBe(0);
  const secret = admin.stdout.trim();
  expect(secret).toMatch(/^ttt_[A-Za-z0-9_-]{43}$/);
  expect(admin.stderr).toMatch(new RegExp(`created [0-9a-f-]{36}\\t${secret.slice(0, 12)}\\tADMIN\\tevery product\\t.*\\tnever used\\tactive\\tops`));
  expect(admin.stderr).toMatch(/shown only now/);
  expect(admin.stderr).not.toContain(secret);

  // A product to scope a station key to, made directly in the database; meanwhile the database is in use.
  const db = await openDatabase({ dataDir: dir });
  let productId: string;
  try {
    productId = (await db.prisma.product.create({ data: { name: 'bracket' }, select: { id: true } })).id;
    const stored = await db.prisma.apiKey.findFirstOrThrow({ select: { hash: true, prefix: true } });
    expect(stored).toEqual({ hash: hashKey(secret), prefix: secret.slice(0, 12) });
    const [inUse, scopedAdmin, badRole, badRef] = await Promise.all([
      ttt('list'),
      ttt('create', '--role', 'admin', '--product', 'bracket'),
      ttt('create', '--role', 'owner'),
      ttt('revoke', 'nonsense'),
    ]);
    // One line that says why and what to do, no stack trace.
    expect(inUse.code).toBe(1);
    expect(inUse.stdout).toBe('');
    expect(inUse.stderr).toBe(
      `ttt: the PGlite database at ${join(dir, 'pglite')} is in use by process ${process.pid} (a running server?): PGlite allows one process at a time, so stop that process first, or let the server and this command share a PostgreSQL server through DATABASE_URL\n`,
    );
    // Refused from the arguments alone (exit 2), not from the locked database (exit 1).
    expect([scopedAdmin.code, badRole.code, badRef.code]).toEqual([2, 2, 2]);
    expect(scopedAdmin.stderr).toMatch(/an ADMIN key cannot be limited to products .*\[INVALID_INPUT\]/);
    expect(badRole.stderr).toMatch(/--role must be one of admin, station, viewer/);
    expect(badRef.stderr).toMatch(/expected a key id \(UUID\) or the key's first characters/);
  } finally {
    await db.close();
  }
  const station = await here('create', '--role', 'station', '--product', 'bracket', '--product', productId);
  expect(station.stderr).toMatch(/STATION\tbracket\t/);
  expect(station.stdout).toMatch(/^ttt_[A-Za-z0-9_-]{43}\n$/);
  await expect(here('create', '--role', 'viewer', '--product', 'nope')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/--product "nope": no product with that id or name/) });

  const revoked = await here('revoke', secret.slice(0, 9));
  expect(revoked.stdout).toMatch(/ADMIN\tevery product\t.*\tREVOKED /);
  const listed = await ttt('list');
  const lines = listed.stdout.trim().split('\n');
  expect(lines[0]).toBe('id\tprefix\trole\tproducts\tcreated\tlast used\tstate\tname');
  expect(lines.slice(1).map((l) => l.split('\t').slice(1, 4).concat(l.split('\t')[6].split(' ')[0]))).toEqual([
    [secret.slice(0, 12), 'ADMIN', 'every product', 'REVOKED'],
    [expect.stringMatching(/^ttt_/), 'STATION', 'bracket', 'active'],
  ]);
  expect(listed.stdout).not.toContain(secret);
  const json = JSON.parse((await here('list', '--json')).stdout) as { role: string; revokedAt: string | null; productIds: string[] | null }[];
  expect(json.map((k) => [k.role, k.revokedAt !== null, k.productIds])).toEqual([
    ['ADMIN', true, null],
    ['STATION', false, [productId]],
  ]);
});
