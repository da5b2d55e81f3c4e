// API keys: the ApiKey type (never its secret, which only createApiKey's result carries, once), the
// admin's apiKeys list, the caller's own currentApiKey, and createApiKey / revokeApiKey.

import { builder } from '../builder.ts';
import { ApiKeyRole } from '../generated/prisma/enums.ts';
import { localId } from '../service/ids.ts';
import { createApiKey, getApiKey, listApiKeys, revokeApiKey, type ApiKeyInfo } from '../service/keys.ts';
import { EXPECTED_ERRORS } from './errors.ts';

const ApiKeyRoleEnum = builder.enumType(ApiKeyRole, {
  name: 'ApiKeyRole',
  description: 'What a key may do (each role includes the ones below it).',
  values: {
    ADMIN: { description: 'Everything: products, nominal samples, deletions, keys.' },
    STATION: { description: 'Submit and reprocess inspections, and read.' },
    VIEWER: { description: 'Read inspections, statistics, files and subscriptions.' },
  },
});

const ApiKeyType = builder.objectRef<ApiKeyInfo>('ApiKey').implement({
  description: 'An API key (the secret itself is never shown again after creation).',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The key\'s id (logged with each request; `ttt keys revoke` takes it).' }),
    name: t.exposeString('name', { nullable: true }),
    prefix: t.exposeString('prefix', { description: 'The secret\'s first 12 characters, to recognise it.' }),
    role: t.expose('role', { type: ApiKeyRoleEnum }),
    products: t.prismaField({
      type: ['Product'],
      nullable: true,
      description: 'The products the key is limited to; null: every product.',
      resolve: (query, key, _args, ctx) =>
        key.productIds === null ? null : ctx.db.product.findMany({ ...query, where: { id: { in: key.productIds } }, orderBy: { name: 'asc' } }),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true, description: 'Last authenticated request (to the minute).' }),
  }),
});

const CreatedApiKey = builder.objectRef<{ key: ApiKeyInfo; secret: string }>('CreatedApiKey').implement({
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyType, resolve: (c) => c.key }),
    secret: t.exposeString('secret', { description: 'The key to send as "Authorization: Bearer <secret>". Shown this once: only its hash is stored.' }),
  }),
});

const RevokedApiKey = builder.objectRef<ApiKeyInfo>('RevokedApiKey').implement({
  fields: (t) => ({ apiKey: t.field({ type: ApiKeyType, resolve: (k) => k }) }),
});

builder.queryFields((t) => ({
  apiKeys: t.field({
    type: [ApiKeyType],
    description: 'Every API key, revoked ones included, oldest first (ADMIN).',
    resolve: (_root, _args, ctx) => listApiKeys(ctx.db),
  }),
  currentApiKey: t.field({
    type: ApiKeyType,
    description: 'The key this request was made with.',
    resolve: async (_root, _args, ctx) => (await getApiKey(ctx.db, ctx.auth.keyId))!,
  }),
}));

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    role: t.field({ type: ApiKeyRoleEnum, required: true }),
    productIds: t.idList({ description: 'Limit the key to these products (STATION and VIEWER keys); omitted or empty: every product.' }),
    name: t.string({ description: 'Who or what uses the key (e.g. "line 2 camera 3").' }),
  }),
});

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreatedApiKey,
    description: 'Creates an API key and returns its secret, once (ADMIN).',
    errors: { types: EXPECTED_ERRORS, directResult: true, union: { name: 'CreateApiKeyResult' } },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      createApiKey(ctx.db, {
        role: input.role,
        productIds: (input.productIds ?? []).map((id) => localId('Product', String(id))),
        name: input.name,
      }),
  }),
  revokeApiKey: t.field({
    type: RevokedApiKey,
    description:
      'Revokes an API key, by its id or its first characters; requests with it fail from then on, and its open subscriptions end (at once on this server, within SUBSCRIPTION_KEY_CHECK_SECONDS on others) (ADMIN).',
    errors: { types: EXPECTED_ERRORS, directResult: true, union: { name: 'RevokeApiKeyResult' } },
    args: { id: t.arg.string({ required: true, description: 'The key\'s id, or its prefix ("ttt_" and at least 4 more characters).' }) },
    resolve: async (_root, { id }, ctx) => {
      const key = await revokeApiKey(ctx.db, id);
      ctx.subscriptions.revoked(key.id);
      return key;
    },
  }),
}));
