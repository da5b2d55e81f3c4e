// `ttt keys` in a child process against an on-disk PGlite database (DATA_DIR): the first ADMIN key is made
// here; keys are printed once and stored hashed; revocation by prefix; a database in use is left alone.

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase } from '../../src/db.ts';
import { hashKey } from '../../src/service/keys.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const MAIN = join(ROOT, 'src/cli/main.ts');

let dir: string;

function ttt(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TSX, [MAIN, 'keys', ...args], { cwd: ROOT, env: { ...process.env, DATABASE_URL: '', DATA_DIR: dir } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ttt-keys-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

it('creates the first admin key on a fresh database, lists it, scopes station keys to products and revokes by prefix', async () => {
  const admin = await ttt('create', '--role', 'admin', '--name', 'ops');
  expect(admin.code, admin.stderr).toBe(0);
  const secret = admin.stdout.trim();
  expect(secret).toMatch(/^ttt_[A-Za-z0-9_-]{43}$/);
  expect(admin.stderr).toMatch(/shown only now/);
  expect(admin.stderr).not.toContain(secret);

  const listed = await ttt('list');
  expect(listed.stdout).toMatch(new RegExp(`${secret.slice(0, 12)}\\tADMIN\\tevery product\\t.*\\tnever used\\tactive\\tops`));
  expect(listed.stdout).not.toContain(secret);

  // A product to scope a station key to, made directly in the database.
  const db = await openDatabase({ dataDir: dir });
  let productId: string;
  try {
    productId = (await db.prisma.product.create({ data: { name: 'bracket' }, select: { id: true } })).id;
    const stored = await db.prisma.apiKey.findFirstOrThrow({ select: { hash: true, prefix: true } });
    expect(stored).toEqual({ hash: hashKey(secret), prefix: secret.slice(0, 12) });
  } finally {
    await db.close();
  }
  const station = await ttt('create', '--role', 'station', '--product', 'bracket', '--product', productId);
  expect(station.code, station.stderr).toBe(0);
  expect(station.stderr).toMatch(/STATION\tbracket\t/);
  expect((await ttt('create', '--role', 'admin', '--product', 'bracket')).stderr).toMatch(/an ADMIN key cannot be limited to products .*\[INVALID_INPUT\]/);
  expect((await ttt('create', '--role', 'viewer', '--product', 'nope')).code).toBe(2);

  const revoked = await ttt('revoke', secret.slice(0, 9));
  expect(revoked.code, revoked.stderr).toBe(0);
  expect(revoked.stdout).toMatch(/ADMIN\tevery product\t.*\tREVOKED /);
  const json = JSON.parse((await ttt('list', '--json')).stdout) as { role: string; revokedAt: string | null; productIds: string[] | null }[];
  expect(json.map((k) => [k.role, k.revokedAt !== null, k.productIds])).toEqual([
    ['ADMIN', true, null],
    ['STATION', false, [productId]],
  ]);
  expect((await ttt('revoke', 'nonsense')).code).toBe(2);
});

it('refuses a PGlite database that another process has open', async () => {
  const db = await openDatabase({ dataDir: dir });
  try {
    const r = await ttt('list');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`in use by process ${process.pid}`));
  } finally {
    await db.close();
  }
  expect((await ttt('list')).code).toBe(0);
});
