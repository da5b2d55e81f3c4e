// `ttt keys`: creates, lists and revokes the service's API keys directly in its database (DATABASE_URL,
// or PGlite under DATA_DIR, migrated first), which is how the first ADMIN key is made.

import { tryLocalId, UUID } from '../service/ids.ts';
import { TttError } from '../core/errors.ts';
import { databaseOptionsFromEnv, openDatabase, type PrismaClient } from '../db.ts';
import type { ApiKeyRole } from '../generated/prisma/enums.ts';
import { migrate } from '../migrate.ts';
import { checkKeyInput, createApiKey, keyReference, listApiKeys, revokeApiKey, ROLES, type ApiKeyInfo } from '../service/keys.ts';
import { parse } from './args.ts';

const HELP = `usage: ttt keys create --role admin|station|viewer [--product P ...] [--name TEXT]
       ttt keys list [--json]
       ttt keys revoke ID|PREFIX

API keys of the inspection service, in the database of DATABASE_URL (or PGlite under DATA_DIR, default
./data; stop the server first when it uses PGlite). Requests send "Authorization: Bearer <key>".

  create   prints the new key on stdout, once (only its SHA-256 is stored); --product (repeatable: a
           product's id, UUID or name) limits a station or viewer key to those products
  list     every key: id, prefix, role, products, created, last used, revoked
  revoke   revokes a key by its id or its first characters (e.g. ttt_AbCd1234)`;

/** A product by its GraphQL id, its UUID or its name. */
async function productId(db: PrismaClient, ref: string): Promise<string> {
  const id = UUID.test(ref) ? ref.toLowerCase() : tryLocalId('Product', ref);
  const found = await db.product.findFirst({ where: id ? { id } : { name: ref }, select: { id: true } });
  if (!found) throw new TttError('NOT_FOUND', `--product ${JSON.stringify(ref)}: no product with that id or name`);
  return found.id;
}

function describe(k: ApiKeyInfo, names: Map<string, string>): string {
  const products = k.productIds === null ? 'every product' : k.productIds.map((id) => names.get(id) ?? id).join(',') || '(no product)';
  const used = k.lastUsedAt ? k.lastUsedAt.toISOString() : 'never used';
  const state = k.revokedAt ? `REVOKED ${k.revokedAt.toISOString()}` : 'active';
  return [k.id, k.prefix, k.role, products, k.createdAt.toISOString(), used, state, k.name ?? ''].join('\t');
}

export const command = {
  summary: 'create, list or revoke API keys of the service',
  async run(argv: string[]): Promise<void> {
    const [action, ...rest] = argv;
    if (!action || action === '--help' || action === '-h') {
      console.log(HELP);
      return;
    }
    if (!['create', 'list', 'revoke'].includes(action)) throw new TttError('INVALID_OPTION', `unknown keys action ${JSON.stringify(action)}\n\n${HELP}`);
    const positional = action === 'revoke' && rest[0] && !rest[0].startsWith('-') ? rest.shift()! : undefined;
    const v = parse(rest, { role: { type: 'string' }, product: { type: 'string', multiple: true }, name: { type: 'string' }, json: { type: 'boolean' } }, HELP);
    if (action === 'revoke' && !positional) throw new TttError('INVALID_OPTION', `ttt keys revoke needs the key's id or prefix\n\n${HELP}`);
    if (action === 'create' && !v.role) throw new TttError('INVALID_OPTION', `--role is required (${ROLES.map((r) => r.toLowerCase()).join(', ')})`);
    const role = v.role?.toUpperCase() as ApiKeyRole;
    // Refused before the database is opened (PGlite's takes seconds, and may be in use).
    if (action === 'create') {
      if (!ROLES.includes(role)) throw new TttError('INVALID_OPTION', `--role must be one of ${ROLES.map((r) => r.toLowerCase()).join(', ')}, got ${JSON.stringify(v.role)}`);
      checkKeyInput({ role, limited: (v.product ?? []).length > 0, name: v.name });
    }
    if (action === 'revoke') keyReference(positional!);

    const db = await openDatabase(databaseOptionsFromEnv());
    try {
      await migrate(db);
      const prisma = db.prisma;
      const names = new Map((await prisma.product.findMany({ select: { id: true, name: true } })).map((p) => [p.id, p.name]));
      if (action === 'create') {
        const productIds = [];
        for (const ref of v.product ?? []) productIds.push(await productId(prisma, ref));
        const { key, secret } = await createApiKey(prisma, { role, productIds, name: v.name });
        console.error(`ttt keys: created ${describe(key, names)}`);
        console.error('ttt keys: the key below is shown only now; store it where its user can read it');
        console.log(secret);
      } else if (action === 'revoke') {
        const key = await revokeApiKey(prisma, positional!);
        console.log(describe(key, names));
      } else {
        const keys = await listApiKeys(prisma);
        if (v.json) console.log(JSON.stringify(keys, null, 2));
        else {
          console.log(['id', 'prefix', 'role', 'products', 'created', 'last used', 'state', 'name'].join('\t'));
          for (const k of keys) console.log(describe(k, names));
        }
      }
    } finally {
      await db.close();
    }
  },
};
