// API keys: created with a role and an optional product scope, shown once, stored as the SHA-256 of the
// secret (the secret is 256 random bits, so a fast unsalted hash is enough: there is nothing to guess),
// looked up on every request, revoked by id or prefix. Shared by the server, the GraphQL admin mutations
// and `ttt keys`.

import { createHash, randomBytes } from 'node:crypto';
import { TttError } from '../core/errors.ts';
import type { PrismaClient } from '../db.ts';
import type { ApiKeyRole } from '../generated/prisma/enums.ts';
import type { Principal } from './auth.ts';
import { UUID } from './ids.ts';

export const KEY_PREFIX = 'ttt_';
/** "ttt_" + 43 base64url characters (32 bytes). */
const KEY_PATTERN = /^ttt_[A-Za-z0-9_-]{43}$/;
/** Characters of the secret kept in clear (in listings and logs): "ttt_" + 8. */
const SHOWN = 12;
/** lastUsedAt is written at most this often per key (it costs a write). */
const LAST_USED_RESOLUTION_MS = 60_000;
const MAX_NAME = 200;

export const ROLES: readonly ApiKeyRole[] = ['ADMIN', 'STATION', 'VIEWER'];

export interface ApiKeyInfo {
  id: string;
  name: string | null;
  prefix: string;
  role: ApiKeyRole;
  /** null: every product. */
  productIds: string[] | null;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export const hashKey = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');

const SELECT = {
  id: true,
  name: true,
  prefix: true,
  role: true,
  allProducts: true,
  createdAt: true,
  revokedAt: true,
  lastUsedAt: true,
  products: { select: { productId: true }, orderBy: { productId: 'asc' as const } },
};

type Row = { id: string; name: string | null; prefix: string; role: ApiKeyRole; allProducts: boolean; createdAt: Date; revokedAt: Date | null; lastUsedAt: Date | null; products: { productId: string }[] };

function info(r: Row): ApiKeyInfo {
  return {
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    role: r.role,
    productIds: r.allProducts ? null : r.products.map((p) => p.productId),
    createdAt: r.createdAt,
    revokedAt: r.revokedAt,
    lastUsedAt: r.lastUsedAt,
  };
}

export interface CreateKeyInput {
  role: ApiKeyRole;
  /** Product ids (UUIDs) the key is limited to; empty or absent: every product. */
  productIds?: readonly string[] | null;
  name?: string | null;
}

/**
 * What can be refused without the database: the role, an ADMIN key limited to products, the name's
 * length. Returns the trimmed name (null when empty).
 */
export function checkKeyInput(input: { role: ApiKeyRole; limited: boolean; name?: string | null }): string | null {
  if (!ROLES.includes(input.role)) throw new TttError('INVALID_INPUT', `role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(input.role)}`);
  if (input.role === 'ADMIN' && input.limited) {
    throw new TttError('INVALID_INPUT', 'an ADMIN key cannot be limited to products (it manages products and keys); give products to STATION or VIEWER keys');
  }
  const name = input.name?.trim() || null;
  if (name !== null && name.length > MAX_NAME) throw new TttError('INVALID_INPUT', `name must have at most ${MAX_NAME} characters`);
  return name;
}

/** Creates a key; the secret is returned here and never again. */
export async function createApiKey(db: PrismaClient, input: CreateKeyInput): Promise<{ key: ApiKeyInfo; secret: string }> {
  const productIds = [...new Set(input.productIds ?? [])];
  const name = checkKeyInput({ role: input.role, limited: productIds.length > 0, name: input.name });
  if (productIds.length > 0) {
    const found = await db.product.findMany({ where: { id: { in: productIds } }, select: { id: true } });
    const missing = productIds.filter((id) => !found.some((f) => f.id === id));
    if (missing.length > 0) throw new TttError('NOT_FOUND', `no product with id ${missing.join(', ')}`);
  }
  const secret = KEY_PREFIX + randomBytes(32).toString('base64url');
  const row = await db.apiKey.create({
    data: {
      name,
      prefix: secret.slice(0, SHOWN),
      hash: hashKey(secret),
      role: input.role,
      allProducts: productIds.length === 0,
      products: { create: productIds.map((productId) => ({ productId })) },
    },
    select: SELECT,
  });
  return { key: info(row), secret };
}

/** The key a revocation names: its id, or its secret's first characters (at least "ttt_" + 4). */
export function keyReference(idOrPrefix: string): { id: string } | { prefix: { startsWith: string } } {
  if (UUID.test(idOrPrefix)) return { id: idOrPrefix.toLowerCase() };
  if (idOrPrefix.startsWith(KEY_PREFIX) && idOrPrefix.length >= KEY_PREFIX.length + 4) return { prefix: { startsWith: idOrPrefix.slice(0, SHOWN) } };
  throw new TttError('INVALID_INPUT', `expected a key id (UUID) or the key's first characters ("ttt_" and at least 4 more), got ${JSON.stringify(idOrPrefix)}`);
}

/** Revokes the key with this id, or the one key whose secret starts with this prefix (at least "ttt_" + 4). */
export async function revokeApiKey(db: PrismaClient, idOrPrefix: string): Promise<ApiKeyInfo> {
  const where = keyReference(idOrPrefix);
  const matches = await db.apiKey.findMany({ where, select: { id: true }, take: 2 });
  if (matches.length === 0) throw new TttError('NOT_FOUND', `no API key ${idOrPrefix}`);
  if (matches.length > 1) throw new TttError('INVALID_INPUT', `${JSON.stringify(idOrPrefix)} matches several keys: give more characters or the id`);
  const id = matches[0].id;
  await db.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
  return info(await db.apiKey.findUniqueOrThrow({ where: { id }, select: SELECT }));
}

export async function listApiKeys(db: PrismaClient): Promise<ApiKeyInfo[]> {
  return (await db.apiKey.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: SELECT })).map(info);
}

export async function getApiKey(db: PrismaClient, id: string): Promise<ApiKeyInfo | null> {
  const row = await db.apiKey.findUnique({ where: { id }, select: SELECT });
  return row ? info(row) : null;
}

/** The principal of a presented secret, or null when it is malformed, unknown or revoked (one statement). */
export async function authenticate(db: PrismaClient, secret: string): Promise<Principal | null> {
  if (!KEY_PATTERN.test(secret)) return null;
  const rows = await db.$queryRaw<{ id: string; role: ApiKeyRole; all_products: boolean; last_used_at: Date | null; products: string | null }[]>`
    SELECT k."id"::text AS id, k."role"::text AS role, k."allProducts" AS all_products, k."lastUsedAt" AS last_used_at,
           (SELECT string_agg(p."productId"::text, ',' ORDER BY p."productId") FROM "ApiKeyProduct" p WHERE p."keyId" = k."id") AS products
    FROM "ApiKey" k
    WHERE k."hash" = ${hashKey(secret)} AND k."revokedAt" IS NULL`;
  const row = rows[0];
  if (!row) return null;
  const now = Date.now();
  const lastUsed = row.last_used_at === null ? null : new Date(row.last_used_at).getTime();
  if (lastUsed === null || now - lastUsed >= LAST_USED_RESOLUTION_MS) {
    await db.apiKey.updateMany({
      where: { id: row.id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: new Date(now - LAST_USED_RESOLUTION_MS) } }] },
      data: { lastUsedAt: new Date(now) },
    });
  }
  return { keyId: row.id, role: row.role, productIds: row.all_products ? null : row.products ? row.products.split(',') : [] };
}
