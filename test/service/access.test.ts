// Access control, table-driven: every GraphQL root field, subscription and file route, run with every
// kind of key (ADMIN, STATION and VIEWER limited to product A, VIEWER of every product, none, revoked,
// malformed) against product A and product B; the outcome must be the one the role table and the key's
// scope give. Out-of-scope objects answer exactly as missing ones. Keys are stored hashed and logged by id.

import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../src/service/keys.ts';
import { hasRole, OPERATION_ROLES, type Role } from '../../src/service/auth.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, CREATE_PRODUCT, ORIGIN, SUBMIT, createProduct, file, sampleFiles, scoreMapNpy, startService, type Client, type TestService } from './helpers.ts';

type Outcome = 'ok' | 'forbidden' | 'notfound' | 'unauthenticated';
type Target = 'A' | 'B';

interface World {
  s: TestService;
  product: Record<Target, string>;
  /** A SUCCEEDED inspection per product (global id). */
  inspection: Record<Target, string>;
}

/** Classifies a GraphQL response: an HTTP or GraphQL error code, or what `ok` says of the data. */
function classify(r: { status: number; data?: any; errors?: { extensions?: { code?: string } }[] }, ok: (data: any) => Outcome): Outcome {
  const code = r.errors?.[0]?.extensions?.code;
  if (code === 'UNAUTHENTICATED') {
    expect(r.status).toBe(401);
    return 'unauthenticated';
  }
  if (code === 'FORBIDDEN') {
    expect(r.status).toBe(403);
    return 'forbidden';
  }
  if (code === 'NOT_FOUND') return 'notfound';
  if (r.errors) throw new Error(`unexpected errors: ${JSON.stringify(r.errors)} ${JSON.stringify(LOGGED?.entries.filter((e) => e.level === "error").map((e) => String((e.fields.error as Error)?.stack)))}`);
  return ok(r.data);
}

/** A mutation result union: success, or NotFoundError. */
const result = (field: string) => (data: any): Outcome => {
  const v = data[field];
  if (v.__typename === 'NotFoundError') return 'notfound';
  if (v.__typename.endsWith('Success') || ['CreatedApiKey', 'RevokedApiKey', 'DeletedInspection'].includes(v.__typename)) return 'ok';
  throw new Error(`${field}: ${JSON.stringify(v)}`);
};

const present = (field: string) => (data: any): Outcome => (data[field] ? 'ok' : 'notfound');

let counter = 0;
let LOGGED: TestService["logger"] | undefined;
// Statistics over the days around the test's inspections.
const FROM = new Date(Date.now() - 86_400_000).toISOString();
const TO = new Date(Date.now() + 86_400_000).toISOString();

interface Operation {
  type: 'Query' | 'Mutation' | 'Subscription';
  field: string;
  /** Whether the target product matters (otherwise run against A only). */
  scoped: boolean;
  run(w: World, c: Client, target: Target): Promise<Outcome>;
}

async function sse(w: World, c: Client, query: string, variables: Record<string, unknown>, trigger: () => void): Promise<Outcome> {
  const abort = new AbortController();
  const res = await w.s.yoga.fetch(`${ORIGIN}/graphql`, {
    method: 'POST',
    headers: { ...c.headers, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  if (res.status === 401) return 'unauthenticated';
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  // Subscriptions that succeed wait for an event: publish until one arrives.
  const timer = setInterval(trigger, 50);
  try {
    let buffer = '';
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        if (block.includes('event: next')) return classify({ status: res.status, ...JSON.parse(data) }, (d) => (Object.values(d)[0] ? 'ok' : 'notfound'));
        continue;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended without an event');
      buffer += value;
    }
  } finally {
    clearInterval(timer);
    abort.abort();
    await reader.cancel().catch(() => undefined);
  }
}

const OPERATIONS: Operation[] = [
  { type: 'Query', field: 'node', scoped: true, run: async (w, c, t) => classify(await c.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: w.inspection[t] }), present('node')) },
  { type: 'Query', field: 'product', scoped: true, run: async (w, c, t) => classify(await c.gql(`query($id: ID!) { product(id: $id) { name } }`, { id: w.product[t] }), present('product')) },
  {
    type: 'Query',
    field: 'products',
    scoped: true,
    run: async (w, c, t) => classify(await c.gql(`{ products { id } }`), (d) => (d.products.some((p: { id: string }) => p.id === w.product[t]) ? 'ok' : 'notfound')),
  },
  { type: 'Query', field: 'inspection', scoped: true, run: async (w, c, t) => classify(await c.gql(`query($id: ID!) { inspection(id: $id) { id } }`, { id: w.inspection[t] }), present('inspection')) },
  {
    type: 'Query',
    field: 'inspections',
    scoped: true,
    run: async (w, c, t) =>
      classify(await c.gql(`query($p: ID!) { inspections(filter: {productId: $p}) { totalCount edges { node { id } } } }`, { p: w.product[t] }), (d) =>
        d.inspections.totalCount > 0 && d.inspections.edges.length > 0 ? 'ok' : (expect(d.inspections.totalCount).toBe(0), 'notfound'),
      ),
  },
  {
    type: 'Query',
    field: 'inspectionStats',
    scoped: true,
    run: async (w, c, t) =>
      classify(await c.gql(`query($p: ID!) { inspectionStats(productId: $p, from: "${FROM}", to: "${TO}") { totals { total } } }`, { p: w.product[t] }), (d) =>
        d.inspectionStats.totals.total > 0 ? 'ok' : 'notfound',
      ),
  },
  { type: 'Query', field: 'currentApiKey', scoped: false, run: async (_w, c) => classify(await c.gql(`{ currentApiKey { id role } }`), present('currentApiKey')) },
  { type: 'Query', field: 'apiKeys', scoped: false, run: async (_w, c) => classify(await c.gql(`{ apiKeys { id prefix } }`), (d) => (d.apiKeys.length > 0 ? 'ok' : 'notfound')) },
  {
    type: 'Mutation',
    field: 'submitInspection',
    scoped: true,
    run: async (w, c, t) => {
      const sample = syntheticSample({ width: 32, height: 32, seed: 5 });
      const r = await c.upload(SUBMIT, { input: { productId: w.product[t], image: null, scoreMap: null } }, await sampleFiles(sample));
      await w.s.processor.drain();
      return classify(r, result('submitInspection'));
    },
  },
  {
    type: 'Mutation',
    field: 'reprocessInspection',
    scoped: true,
    run: async (w, c, t) => {
      const r = await c.gql(`mutation($id: ID!) { reprocessInspection(id: $id) { __typename ... on ReprocessInspectionSuccess { inspection { id } } } }`, { id: w.inspection[t] });
      await w.s.processor.drain();
      return classify(r, result('reprocessInspection'));
    },
  },
  {
    type: 'Mutation',
    field: 'deleteInspection',
    scoped: true,
    run: async (w, c, t) => {
      // A row of its own to delete, so that the shared inspections stay.
      const row = await w.s.prisma.inspection.create({ data: { productId: decodeGlobalID(w.product[t]).id, width: 1, height: 1, channels: 1, status: 'FAILED' }, select: { id: true } });
      const r = await c.gql(`mutation($id: ID!) { deleteInspection(id: $id) { __typename } }`, { id: encodeGlobalID('Inspection', row.id) });
      const outcome = classify(r, result('deleteInspection'));
      expect(await w.s.prisma.inspection.count({ where: { id: row.id } })).toBe(outcome === 'ok' ? 0 : 1);
      return outcome;
    },
  },
  {
    type: 'Mutation',
    field: 'createProduct',
    scoped: false,
    run: async (_w, c) => classify(await c.gql(CREATE_PRODUCT, { input: { name: `made-${counter++}` } }), result('createProduct')),
  },
  {
    type: 'Mutation',
    field: 'addNominalSamples',
    scoped: true,
    run: async (w, c, t) => {
      const map = syntheticSample({ width: 32, height: 32, seed: 9, defects: 0 }).scoreMap;
      const r = await c.upload(`mutation($p: ID!, $maps: [File!]) { addNominalSamples(productId: $p, scoreMaps: $maps) { __typename ... on AddNominalSamplesSuccess { product { id } } } }`, { p: w.product[t], maps: [null] }, {
        maps: [file(scoreMapNpy(map), 'good.npy')],
      });
      return classify(r, result('addNominalSamples'));
    },
  },
  {
    type: 'Mutation',
    field: 'setProductOptionLimits',
    scoped: true,
    run: async (w, c, t) =>
      classify(
        await c.gql(`mutation($p: ID!) { setProductOptionLimits(productId: $p, limits: []) { __typename ... on SetProductOptionLimitsSuccess { product { id } } } }`, { p: w.product[t] }),
        result('setProductOptionLimits'),
      ),
  },
  {
    type: 'Mutation',
    field: 'createApiKey',
    scoped: false,
    run: async (_w, c) => classify(await c.gql(`mutation { createApiKey(input: {role: VIEWER}) { __typename ... on CreatedApiKey { secret } } }`), result('createApiKey')),
  },
  {
    type: 'Mutation',
    field: 'revokeApiKey',
    scoped: false,
    run: async (w, c) => {
      const victim = await w.s.createKey('VIEWER');
      return classify(await c.gql(`mutation($id: String!) { revokeApiKey(id: $id) { __typename } }`, { id: victim.id }), result('revokeApiKey'));
    },
  },
  {
    type: 'Subscription',
    field: 'inspectionUpdated',
    scoped: true,
    run: (w, c, t) => sse(w, c, `subscription($id: ID!) { inspectionUpdated(id: $id) { id status } }`, { id: w.inspection[t] }, () => undefined),
  },
  {
    type: 'Subscription',
    field: 'inspectionCompleted',
    scoped: true,
    run: (w, c, t) => {
      const id = decodeGlobalID(w.inspection[t]).id;
      const productId = decodeGlobalID(w.product[t]).id;
      return sse(w, c, `subscription($p: ID!) { inspectionCompleted(productId: $p) { id status } }`, { p: w.product[t] }, () =>
        w.s.app.events.publish({ id, productId, status: 'SUCCEEDED' }),
      );
    },
  },
];

const FILES = ['image', 'score-map', 'mask', 'overlay'] as const;

interface Caller {
  name: string;
  role: Role | null;
  /** Products of its scope; null: every product. */
  scope: Target[] | null;
  secret: (w: World) => Promise<string | null>;
}

const CALLERS: Caller[] = [
  { name: 'ADMIN', role: 'ADMIN', scope: null, secret: async (w) => w.s.adminKey },
  { name: 'STATION of A', role: 'STATION', scope: ['A'], secret: async (w) => (await w.s.createKey('STATION', [decodeGlobalID(w.product.A).id])).secret },
  { name: 'VIEWER of A', role: 'VIEWER', scope: ['A'], secret: async (w) => (await w.s.createKey('VIEWER', [decodeGlobalID(w.product.A).id])).secret },
  { name: 'VIEWER of every product', role: 'VIEWER', scope: null, secret: async (w) => (await w.s.createKey('VIEWER')).secret },
  { name: 'no key', role: null, scope: null, secret: async () => null },
  {
    name: 'a revoked key',
    role: null,
    scope: null,
    secret: async (w) => {
      const k = await w.s.createKey('ADMIN');
      await w.s.gql(`mutation($id: String!) { revokeApiKey(id: $id) { __typename } }`, { id: k.id });
      return k.secret;
    },
  },
  { name: 'a made-up key', role: null, scope: null, secret: async () => `ttt_${'A'.repeat(43)}` },
];

function expected(caller: Caller, needed: Role, scoped: boolean, target: Target): Outcome {
  if (caller.role === null) return 'unauthenticated';
  if (!hasRole({ keyId: '', role: caller.role, productIds: null }, needed)) return 'forbidden';
  if (scoped && caller.scope !== null && !caller.scope.includes(target)) return 'notfound';
  return 'ok';
}

describe.each(BACKENDS)('access control on %s', (backend) => {
  const w = {} as World;

  beforeAll(async () => {
    w.s = await startService(backend);
    LOGGED = w.s.logger;
    w.product = { A: await createProduct(w.s, 'product A'), B: await createProduct(w.s, 'product B') };
    w.inspection = {} as Record<Target, string>;
    for (const t of ['A', 'B'] as const) {
      const r = await w.s.upload(SUBMIT, { input: { productId: w.product[t], image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 32, height: 32, seed: 7 })));
      w.inspection[t] = r.data!.submitInspection.inspection.id;
    }
    await w.s.processor.drain();
  });
  afterAll(async () => w.s?.close());

  it('the table covers every root field of the schema', () => {
    const tested = OPERATIONS.map((o) => `${o.type}.${o.field}`).sort();
    const roles = Object.entries(OPERATION_ROLES).flatMap(([type, fields]) => Object.keys(fields).map((f) => `${type}.${f}`)).sort();
    expect(tested).toEqual(roles);
  });

  it.each(CALLERS)('every operation and file route with $name', async (caller) => {
    const secret = await caller.secret(w);
    const c = w.s.as(secret);
    const got: Record<string, Outcome> = {};
    const want: Record<string, Outcome> = {};
    for (const op of OPERATIONS) {
      for (const t of op.scoped ? (['A', 'B'] as const) : (['A'] as const)) {
        const label = `${op.type}.${op.field} on ${t}`;
        got[label] = await op.run(w, c, t);
        want[label] = expected(caller, OPERATION_ROLES[op.type][op.field], op.scoped, t);
      }
    }
    for (const t of ['A', 'B'] as const) {
      const uuid = decodeGlobalID(w.inspection[t]).id;
      for (const kind of FILES) {
        const res = await c.get(`/files/inspections/${uuid}/${kind}.png`);
        const label = `GET ${kind}.png of ${t}`;
        got[label] = res.status === 200 ? 'ok' : res.status === 404 ? 'notfound' : res.status === 401 ? 'unauthenticated' : 'forbidden';
        want[label] = expected(caller, 'VIEWER', true, t);
        if (res.status === 200) expect(res.headers.get('content-type')).toBe('image/png');
      }
    }
    expect(got).toEqual(want);
  });

  it('401 names the problem and asks for a Bearer key', async () => {
    const none = await w.s.as(null).gql('{ __typename }');
    expect(none.status).toBe(401);
    expect(none.errors![0].message).toMatch(/Authorization: Bearer/);
    const res = await w.s.yoga.fetch(`${ORIGIN}/graphql?query=%7B__typename%7D`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('fragments, aliases and mixed operations cannot smuggle a field past its role', async () => {
    const viewer = w.s.as((await w.s.createKey('VIEWER')).secret);
    const viaFragment = await viewer.gql(`mutation { ...M } fragment M on Mutation { made: createProduct(input: {name: "smuggled"}) { __typename } }`);
    expect(viaFragment.errors![0]).toMatchObject({ extensions: { code: 'FORBIDDEN' } });
    expect(viaFragment.errors![0].message).toMatch(/Mutation.createProduct needs a ADMIN key; this key is VIEWER/);
    const station = w.s.as((await w.s.createKey('STATION')).secret);
    const mixed = await station.gql(`mutation($id: ID!) { reprocessInspection(id: $id) { __typename } createProduct(input: {name: "mixed"}) { __typename } }`, { id: w.inspection.A });
    expect(mixed.errors![0].extensions!.code).toBe('FORBIDDEN');
    expect(mixed.data).toBeUndefined();
    expect(await w.s.prisma.product.count({ where: { name: { in: ['smuggled', 'mixed'] } } })).toBe(0);
    // The status of the inspection was not touched by the refused operation.
    expect((await w.s.gql(`query($id: ID!) { inspection(id: $id) { status } }`, { id: w.inspection.A })).data!.inspection.status).toBe('SUCCEEDED');
    // __typename alone needs nothing beyond a valid key.
    expect((await viewer.gql(`{ __typename }`)).data).toEqual({ __typename: 'Query' });
  });

  it('a scoped key sees only its products in lists, statistics and node lookups', async () => {
    const viewerA = w.s.as((await w.s.createKey('VIEWER', [decodeGlobalID(w.product.A).id])).secret);
    const all = await viewerA.gql(`{ products { name } inspections { totalCount edges { node { product { name } } } } }`);
    expect(all.data!.products).toEqual([{ name: 'product A' }]);
    expect(new Set(all.data!.inspections.edges.map((e: any) => e.node.product.name))).toEqual(new Set(['product A']));
    const stats = await viewerA.gql(`{ inspectionStats(from: "${FROM}", to: "${TO}") { totals { total } } }`);
    const ofA = await w.s.prisma.inspection.count({ where: { productId: decodeGlobalID(w.product.A).id } });
    expect(stats.data!.inspectionStats.totals.total).toBe(ofA);
    const nodes = await viewerA.gql(`query($a: ID!, $b: ID!) { a: node(id: $a) { id } b: node(id: $b) { id } }`, { a: w.product.A, b: w.product.B });
    expect(nodes.data).toEqual({ a: { id: w.product.A }, b: null });
    // Not found for B reads as not found for a product that never existed.
    const ghost = encodeGlobalID('Product', '0190f000-0000-7000-8000-000000000000');
    const [b, none] = await Promise.all([w.product.B, ghost].map((p) => viewerA.gql(`query($p: ID!) { inspectionStats(productId: $p, from: "${FROM}", to: "${TO}") { totals { total } } }`, { p })));
    expect(b.errors![0].message.replace(w.product.B, 'ID')).toBe(none.errors![0].message.replace(ghost, 'ID'));
  });

  it('keys: created once in clear, stored as SHA-256, limited to existing products, ADMIN never scoped; revocation takes effect on the next request', async () => {
    const r = await w.s.gql(`mutation($p: ID!) { createApiKey(input: {role: STATION, productIds: [$p], name: "line 1"}) { __typename ... on CreatedApiKey { secret apiKey { id prefix role name products { name } revokedAt } } } }`, { p: w.product.A });
    const created = r.data!.createApiKey;
    expect(created.secret).toMatch(/^ttt_[A-Za-z0-9_-]{43}$/);
    expect(created.apiKey).toMatchObject({ prefix: created.secret.slice(0, 12), role: 'STATION', name: 'line 1', products: [{ name: 'product A' }], revokedAt: null });
    const row = await w.s.prisma.apiKey.findUniqueOrThrow({ where: { id: created.apiKey.id } });
    expect(row.hash).toBe(hashKey(created.secret));
    expect(JSON.stringify(row)).not.toContain(created.secret.slice(12));
    const station = w.s.as(created.secret);
    expect((await station.gql(`{ currentApiKey { id role } }`)).data!.currentApiKey).toEqual({ id: created.apiKey.id, role: 'STATION' });
    // The secret is never readable again.
    const listed = await w.s.gql(`{ apiKeys { id prefix } }`);
    expect(JSON.stringify(listed)).not.toContain(created.secret);

    const adminScoped = await w.s.gql(`mutation($p: ID!) { createApiKey(input: {role: ADMIN, productIds: [$p]}) { __typename ... on Error { code message } } }`, { p: w.product.A });
    expect(adminScoped.data!.createApiKey).toMatchObject({ __typename: 'InvalidInputError', code: 'INVALID_INPUT' });
    const ghost = encodeGlobalID('Product', '0190f000-0000-7000-8000-000000000000');
    const unknown = await w.s.gql(`mutation($p: ID!) { createApiKey(input: {role: VIEWER, productIds: [$p]}) { __typename } }`, { p: ghost });
    expect(unknown.data!.createApiKey.__typename).toBe('NotFoundError');

    const revoked = await w.s.gql(`mutation($id: String!) { revokeApiKey(id: $id) { ... on RevokedApiKey { apiKey { revokedAt } } } }`, { id: created.secret.slice(0, 10) });
    expect(revoked.data!.revokeApiKey.apiKey.revokedAt).not.toBeNull();
    expect((await station.gql(`{ __typename }`)).status).toBe(401);
    const again = await w.s.gql(`mutation { revokeApiKey(id: "nonsense") { __typename ... on Error { code } } }`);
    expect(again.data!.revokeApiKey).toMatchObject({ __typename: 'InvalidInputError' });
  });

  it('logs each request with the key id, never the key', async () => {
    const { id, secret } = await w.s.createKey('VIEWER');
    await w.s.as(secret).gql('{ products { name } }');
    const line = w.s.logger.entries.filter((e) => e.msg === 'request').at(-1)!;
    expect(line.fields.key).toBe(id);
    const everything = JSON.stringify(w.s.logger.entries);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(w.s.adminKey);
  });
});
