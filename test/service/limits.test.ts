// The limits in front of the API, each exceeded on purpose: GraphQL document depth, aliases, cost, tokens
// and directives (graphql-armor), batched operations, introspection and GraphiQL switches, request bodies
// with and without a length, and the per-key rate limit; the defaults let the documented queries through.

import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/server/auth.ts';
import { defaultConfig } from '../../src/server/config.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORPUS_DIR } from '../fuzz/corpus.ts';
import { BACKENDS, INSPECTION, ORIGIN, SUBMIT, createProduct, file, rowCounts, sampleFiles, startService, type TestService } from './helpers.ts';
import { syntheticSample } from '../../src/synthetic.ts';

const DASHBOARD = `query Dashboard($product: ID!, $from: DateTime!, $to: DateTime!, $monthAgo: DateTime!) {
  inspections(filter: {productId: $product, from: $from, to: $to, verdict: DEFECTIVE}, first: 50) {
    totalCount
    edges { node { id externalId createdAt imageScore defectFraction overlayUrl
                   regions { area bbox { x y width height } maxScore } } }
    pageInfo { hasNextPage endCursor }
  }
  inspectionStats(productId: $product, from: $monthAgo, to: $to, bucket: DAY) {
    totals { total succeeded failed defective defectRate meanDefectFraction }
    buckets { start total defective defectRate meanDefectFraction }
  }
}`;

/** Refused before execution: an error naming the limit and no data (HTTP 200 for `accept: application/json`, as GraphQL over HTTP says). */
function rejected(r: { status: number; data?: unknown; errors?: { message: string }[] }, message: RegExp): void {
  expect(r.data).toBeUndefined();
  expect(r.errors?.[0].message).toMatch(message);
}

describe.each(BACKENDS)('GraphQL limits on %s', (backend) => {
  let strict: TestService;
  let open: TestService;

  beforeAll(async () => {
    strict = await startService(backend, {
      config: { graphqlLimits: { maxDepth: 4, maxAliases: 2, maxCost: 40, maxTokens: 60, maxDirectives: 2 }, introspection: false, graphiql: false, maxUploadBytes: 4096 },
    });
    // The defaults of `npm start` in development.
    open = await startService(backend);
  });
  afterAll(async () => {
    await strict?.close();
    await open?.close();
  });

  it('defaults let the documented queries, an inspection with all its fields and GraphiQL\'s introspection through', async () => {
    const product = await createProduct(open, 'widget');
    const now = new Date().toISOString();
    const dashboard = await open.gql(DASHBOARD, { product, from: now, to: now, monthAgo: new Date(Date.now() - 30 * 86_400_000).toISOString() });
    expect(dashboard.errors).toBeUndefined();
    const submitted = await open.upload(SUBMIT, { input: { productId: product, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 32, height: 32, seed: 1 })));
    expect(submitted.errors).toBeUndefined();
    const one = await open.gql(INSPECTION, { id: submitted.data!.submitInspection.inspection.id });
    expect(one.errors).toBeUndefined();
    const intro = await open.gql(getIntrospectionQuery());
    expect(intro.errors).toBeUndefined();
    expect(intro.data!.__schema.queryType.name).toBe('Query');
    await open.processor.drain();
  });

  it('a decompression bomb (an image header declaring 100000 x 100000) is refused as TOO_LARGE before decoding; nothing is stored', async () => {
    const product = await createProduct(open, 'bombed');
    const files = await sampleFiles(syntheticSample({ width: 16, height: 12, seed: 2 }));
    const before = await rowCounts(open);
    for (const name of ['png-bomb-100k.png', 'tiff-bomb-100k.tif', 'jpeg-bomb-40000.jpg']) {
      const bomb = file(new Uint8Array(readFileSync(join(CORPUS_DIR, name))), name);
      const r = await open.upload(SUBMIT, { input: { productId: product, image: null, scoreMap: null } }, { ...files, 'input.image': bomb });
      expect(r.data!.submitInspection, name).toMatchObject({ __typename: 'TooLargeError', code: 'TOO_LARGE' });
      expect(r.data!.submitInspection.message).toMatch(/more than the limit of 67108864/);
    }
    expect(await rowCounts(open)).toEqual(before);
  });

  it('depth', async () => {
    expect((await strict.gql(`{ inspections { edges { node { id } } } }`)).errors).toBeUndefined();
    rejected(await strict.gql(`{ inspections { edges { node { regions { area } } } } }`), /Query depth limit of 4 exceeded/);
  });

  it('aliases', async () => {
    expect((await strict.gql(`{ a: products { name } b: products { name } }`)).errors).toBeUndefined();
    rejected(await strict.gql(`{ a: products { name } b: products { name } c: products { name } }`), /Aliases limit of 2 exceeded/);
  });

  it('cost', async () => {
    expect((await strict.gql(`{ products { name } }`)).errors).toBeUndefined();
    // 30 fields: under the token limit, over the cost.
    rejected(await strict.gql(`{ products { ${Array.from({ length: 30 }, () => 'name').join(' ')} } }`), /Query Cost limit of 40 exceeded/);
  });

  it('tokens', async () => {
    const fields = Array.from({ length: 60 }, () => 'name').join(' ');
    rejected(await strict.gql(`{ products { ${fields} } }`), /Token limit of 60 exceeded/);
  });

  it('directives', async () => {
    expect((await strict.gql(`{ products @include(if: true) { name @include(if: true) } }`)).errors).toBeUndefined();
    rejected(await strict.gql(`{ products @include(if: true) { name @include(if: true) line @include(if: true) } }`), /Directives limit of 2 exceeded/);
  });

  it('batched operations are refused', async () => {
    const res = await strict.yoga.fetch(`${ORIGIN}/graphql`, {
      method: 'POST',
      headers: { ...strict.headers, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]),
    });
    expect(res.status).toBe(400);
    expect((await res.json()).errors[0].message).toMatch(/Batching is not supported/);
  });

  it('introspection and GraphiQL off: __schema and __type are refused, __typename answers, GET /graphql from a browser gets no page', async () => {
    const r = await strict.gql(`{ __schema { types { name } } }`);
    rejected(r, /introspection/i);
    rejected(await strict.gql(`{ __type(name: "Query") { name } }`), /introspection/i);
    expect((await strict.gql(`{ __typename }`)).data).toEqual({ __typename: 'Query' });
    const page = await strict.yoga.fetch(`${ORIGIN}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    expect(page.status).toBe(401);
    // On: the page is served without a key (it holds no data; its requests need one).
    const served = await open.yoga.fetch(`${ORIGIN}/graphql`, { headers: { accept: 'text/html' } });
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('a chunked body (no Content-Length) is counted: over MAX_REQUEST_BYTES it is refused with 413, under it it is served', async () => {
    const limit = strict.app.config.maxRequestBytes;
    const stream = (bytes: number, text = '') =>
      new ReadableStream<Uint8Array>({
        start(c) {
          const enc = new TextEncoder();
          if (text) c.enqueue(enc.encode(text));
          for (let sent = 0; sent < bytes; sent += 8192) c.enqueue(new Uint8Array(Math.min(8192, bytes - sent)).fill(32));
          c.close();
        },
      });
    const post = (body: ReadableStream<Uint8Array>) =>
      strict.yoga.fetch(`${ORIGIN}/graphql`, { method: 'POST', headers: { ...strict.headers, 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit);
    const big = await post(stream(limit + 1));
    expect(big.status).toBe(413);
    expect((await big.json()).errors[0].extensions.code).toBe('TOO_LARGE');
    const small = await post(stream(100, JSON.stringify({ query: '{ __typename }' })));
    expect(small.status).toBe(200);
    expect((await small.json()).data).toEqual({ __typename: 'Query' });
  });
});

describe.each(BACKENDS)('rate limit on %s', (backend) => {
  let s: TestService;
  beforeAll(async () => {
    s = await startService(backend, { config: { rateLimitPerMinute: 60, rateLimitBurst: 3 } });
  });
  afterAll(async () => s?.close());

  it('a key beyond its burst gets 429 RATE_LIMITED with Retry-After, on GraphQL and file routes; other keys are unaffected', async () => {
    const { secret } = await s.createKey('VIEWER');
    const c = s.as(secret);
    for (let k = 0; k < 3; k++) expect((await c.gql('{ __typename }')).status).toBe(200);
    const over = await c.gql('{ __typename }');
    expect(over.status).toBe(429);
    expect(over.errors![0].extensions!.code).toBe('RATE_LIMITED');
    expect(over.errors![0].message).toMatch(/60 requests per minute/);
    const file = await c.get('/files/inspections/00000000-0000-7000-8000-000000000000/image.png');
    expect(file.status).toBe(429);
    expect(Number(file.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await s.gql('{ __typename }')).status).toBe(200);
  });

  it('the bucket refills at the configured rate', () => {
    let now = 0;
    const limiter = new RateLimiter(60, 2, () => now);
    expect([limiter.take('k'), limiter.take('k')]).toEqual([0, 0]);
    expect(limiter.take('k')).toBe(1000);
    now = 500;
    expect(limiter.take('k')).toBe(500);
    now = 1000;
    expect(limiter.take('k')).toBe(0);
    now = 60_000;
    expect([limiter.take('k'), limiter.take('k'), limiter.take('k')]).toEqual([0, 0, 1000]);
    expect(limiter.take('other')).toBe(0);
  });
});

describe('configuration', () => {
  it('GRAPHIQL and INTROSPECTION default to on, off under NODE_ENV=production, and take on/off', async () => {
    const { configFromEnv } = await import('../../src/server/config.ts');
    expect([configFromEnv({}).graphiql, configFromEnv({}).introspection]).toEqual([true, true]);
    expect([configFromEnv({ NODE_ENV: 'production' }).graphiql, configFromEnv({ NODE_ENV: 'production' }).introspection]).toEqual([false, false]);
    expect(configFromEnv({ NODE_ENV: 'production', GRAPHIQL: 'on' }).graphiql).toBe(true);
    expect(() => configFromEnv({ INTROSPECTION: 'maybe' })).toThrow(/INTROSPECTION must be on\/off or true\/false/);
    expect(configFromEnv({ GRAPHQL_MAX_DEPTH: '7', RATE_LIMIT_PER_MINUTE: '30' })).toMatchObject({ graphqlLimits: { maxDepth: 7 }, rateLimitPerMinute: 30 });
    expect(defaultConfig().graphqlLimits).toEqual({ maxDepth: 10, maxAliases: 15, maxCost: 5000, maxTokens: 1000, maxDirectives: 50 });
  });

  it('the queue settings default as documented and take positive whole seconds', async () => {
    const { configFromEnv } = await import('../../src/server/config.ts');
    expect(configFromEnv({}).queue).toEqual({ jobTimeoutSeconds: 300, retryLimit: 3, retryDelaySeconds: 5, shutdownTimeoutSeconds: 30 });
    expect(configFromEnv({ SHUTDOWN_TIMEOUT_SECONDS: '5', JOB_RETRY_LIMIT: '0' }).queue).toMatchObject({ shutdownTimeoutSeconds: 5, retryLimit: 0 });
    expect(() => configFromEnv({ SHUTDOWN_TIMEOUT_SECONDS: '0' })).toThrow('SHUTDOWN_TIMEOUT_SECONDS must be a positive integer, got "0"');
  });
});
