// The limits in front of the API, each exceeded on purpose: GraphQL document depth, aliases, cost, tokens
// and directives (graphql-armor), batched operations, introspection and GraphiQL switches, request bodies
// with and without a length, and the per-key rate limit; the defaults let the documented queries through.

import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { clientAddress, RateLimiter } from '../../src/server/auth.ts';
import { defaultConfig } from '../../src/service/config.ts';
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
    expect((await strict.gql(`{ inspections(first: 5) { edges { node { id } } } }`)).errors).toBeUndefined();
    rejected(await strict.gql(`{ inspections { edges { node { regions { area } } } } }`), /Query depth limit of 4 exceeded/);
  });

  it('aliases', async () => {
    expect((await strict.gql(`{ a: products { name } b: products { name } }`)).errors).toBeUndefined();
    rejected(await strict.gql(`{ a: products { name } b: products { name } c: products { name } }`), /Aliases limit of 2 exceeded/);
  });

  it('cost', async () => {
    expect((await strict.gql(`{ products { name } }`)).errors).toBeUndefined();
    // 20 items of 2 fields, and the page's own 2: over the cost (see cost.ts and edge.test.ts).
    rejected(await strict.gql(`{ inspections(first: 20) { edges { node { id } } } }`), /Query cost limit of 40 exceeded, found 42/);
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

describe.each(BACKENDS)('failed authentications on %s', (backend) => {
  let s: TestService;
  let proxied: TestService;
  beforeAll(async () => {
    s = await startService(backend, { config: { authFailuresPerMinute: 3 } });
    proxied = await startService(backend, { config: { authFailuresPerMinute: 3, trustProxy: true } });
  });
  afterAll(async () => {
    await s?.close();
    await proxied?.close();
  });

  const BAD = `ttt_${'B'.repeat(43)}`;
  /** A request as node's http server hands it over: the socket's address in the server context. */
  const from = (t: TestService, address: string | null, key: string | null, headers: Record<string, string> = {}) =>
    t.yoga.fetch(
      `${ORIGIN}/graphql?query=%7B__typename%7D`,
      { headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers } },
      address === null ? {} : { req: { socket: { remoteAddress: address } } },
    );
  const lookups = (t: TestService) => t.database.queries.filter((q) => q.includes('FROM "ApiKey" k')).length;

  it('an address beyond AUTH_FAILURES_PER_MINUTE bad keys gets 429 before any lookup, even with a good key; other addresses are unaffected', async () => {
    const { secret } = await s.createKey('VIEWER');
    for (const key of [BAD, 'not-a-key', BAD]) expect((await from(s, '10.0.0.1', key)).status).toBe(401);
    // A request without a key costs nothing and is not counted.
    expect((await from(s, '10.0.0.1', null)).status).toBe(401);
    const before = lookups(s);
    for (const key of [BAD, secret]) {
      const res = await from(s, '10.0.0.1', key);
      expect(res.status).toBe(429);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(20);
      const body = await res.json();
      expect(body.errors[0]).toMatchObject({ extensions: { code: 'RATE_LIMITED' } });
      expect(body.errors[0].message).toMatch(/too many failed authentications from this address \(more than 3 per minute\)/);
    }
    expect(lookups(s)).toBe(before);
    // The same address as IPv4-mapped IPv6 is the same client.
    expect((await from(s, '::ffff:10.0.0.1', secret)).status).toBe(429);
    expect((await from(s, '10.0.0.2', secret)).status).toBe(200);
    expect((await from(s, '10.0.0.2', BAD)).status).toBe(401);
    // X-Forwarded-For is not trusted by default: it does not let 10.0.0.1 out.
    expect((await from(s, '10.0.0.1', secret, { 'x-forwarded-for': '192.0.2.9' })).status).toBe(429);
    const warning = s.logger.entries.find((e) => e.msg === 'authentication failed')!;
    expect(warning.fields).toMatchObject({ address: '10.0.0.1', path: '/graphql' });
    expect(JSON.stringify(s.logger.entries)).not.toContain(BAD);
  });

  it('with TRUST_PROXY=on the last X-Forwarded-For entry is the client; an IPv6 client counts by its /64', async () => {
    for (let k = 0; k < 3; k++) expect((await from(proxied, '10.1.0.1', BAD, { 'x-forwarded-for': `198.51.100.${k}, 192.0.2.7` })).status).toBe(401);
    expect((await from(proxied, '10.1.0.1', BAD, { 'x-forwarded-for': '192.0.2.7' })).status).toBe(429);
    // The same proxy, another client behind it.
    expect((await from(proxied, '10.1.0.1', BAD, { 'x-forwarded-for': '192.0.2.8' })).status).toBe(401);
    for (const a of ['2001:db8:1:2::5', '2001:db8:1:2:aa::1', '2001:0db8:0001:0002:ffff::9']) expect((await from(proxied, a, BAD)).status).toBe(401);
    expect((await from(proxied, '2001:db8:1:2::77', BAD)).status).toBe(429);
    expect((await from(proxied, '2001:db8:1:3::5', BAD)).status).toBe(401);
  });

  it('requests without a known address share one bucket', async () => {
    const { secret } = await proxied.createKey('VIEWER');
    for (let k = 0; k < 3; k++) expect((await from(proxied, null, BAD)).status).toBe(401);
    expect((await from(proxied, null, secret)).status).toBe(429);
    expect((await from(proxied, '10.1.0.9', secret)).status).toBe(200);
  });

  it('behind node\'s http server the socket\'s address is the client', async () => {
    const server = createServer(s.yoga);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql?query=%7B__typename%7D`;
      const statuses: number[] = [];
      for (let k = 0; k < 4; k++) statuses.push((await fetch(url, { headers: { authorization: `Bearer ${BAD}` } })).status);
      expect(statuses).toEqual([401, 401, 401, 429]);
      expect(s.logger.entries.filter((e) => e.msg === 'authentication failed').at(-1)!.fields.address).toBe('127.0.0.1');
      expect((await from(s, '10.0.0.3', s.adminKey)).status).toBe(200);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('client addresses', () => {
    const req = (xff?: string) => new Request(ORIGIN, { headers: xff ? { 'x-forwarded-for': xff } : {} });
    const at = (a: string) => ({ req: { socket: { remoteAddress: a } } });
    expect(clientAddress(req(), at('10.0.0.1'), false)).toBe('10.0.0.1');
    expect(clientAddress(req(), at('::ffff:10.0.0.1'), false)).toBe('10.0.0.1');
    expect(clientAddress(req(), at('::1'), false)).toBe('0:0:0:0::/64');
    expect(clientAddress(req(), at('fe80::1%eth0'), false)).toBe('fe80:0:0:0::/64');
    expect(clientAddress(req(), at('2001:db8:85a3:8d3:1319:8a2e:370:7348'), false)).toBe('2001:db8:85a3:8d3::/64');
    expect(clientAddress(req('1.2.3.4'), at('10.0.0.1'), false)).toBe('10.0.0.1');
    expect(clientAddress(req('1.2.3.4 , 5.6.7.8'), at('10.0.0.1'), true)).toBe('5.6.7.8');
    expect(clientAddress(req(), at('10.0.0.1'), true)).toBe('10.0.0.1');
    expect(clientAddress(req(), undefined, false)).toBe('unknown');
  });

  it('full buckets are forgotten when many addresses have been seen', () => {
    let now = 0;
    const limiter = new RateLimiter(60, 2, () => now);
    for (let k = 0; k < 1000; k++) limiter.take(`a${k}`);
    expect(limiter.size).toBe(1000);
    now = 10_000; // every bucket is full again
    for (let k = 0; k < 100; k++) limiter.take(`b${k}`);
    expect(limiter.size).toBeLessThan(1100);
    expect(limiter.wait('b0')).toBe(0);
  });
});

describe('configuration', () => {
  it('the default request limit holds every file of a submission at the per-file limit', async () => {
    const { configFromEnv, SUBMISSION_FILES } = await import('../../src/service/config.ts');
    const { readFileSync } = await import('node:fs');
    const sdl = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');
    const input = /input SubmitInspectionInput \{([^}]*)\}/.exec(sdl)?.[1] ?? '';
    expect(input.match(/: File!?$/gm)?.length).toBe(SUBMISSION_FILES);
    const c = configFromEnv({ MAX_UPLOAD_BYTES: '1000000' });
    expect(c.maxRequestBytes).toBeGreaterThanOrEqual(SUBMISSION_FILES * 1000000);
    expect(configFromEnv({ MAX_UPLOAD_BYTES: '1000000', MAX_REQUEST_BYTES: '123' }).maxRequestBytes).toBe(123);
  });
  it('GRAPHIQL and INTROSPECTION default to on, off under NODE_ENV=production, and take on/off', async () => {
    const { configFromEnv } = await import('../../src/service/config.ts');
    expect([configFromEnv({}).graphiql, configFromEnv({}).introspection]).toEqual([true, true]);
    expect([configFromEnv({ NODE_ENV: 'production' }).graphiql, configFromEnv({ NODE_ENV: 'production' }).introspection]).toEqual([false, false]);
    expect(configFromEnv({ NODE_ENV: 'production', GRAPHIQL: 'on' }).graphiql).toBe(true);
    expect(() => configFromEnv({ INTROSPECTION: 'maybe' })).toThrow(/INTROSPECTION must be on\/off or true\/false/);
    expect(configFromEnv({ GRAPHQL_MAX_DEPTH: '7', RATE_LIMIT_PER_MINUTE: '30' })).toMatchObject({ graphqlLimits: { maxDepth: 7 }, rateLimitPerMinute: 30 });
    expect(defaultConfig().graphqlLimits).toEqual({ maxDepth: 10, maxAliases: 15, maxCost: 5000, maxTokens: 1000, maxDirectives: 50 });
    expect(defaultConfig()).toMatchObject({ authFailuresPerMinute: 120, trustProxy: false, subscriptionKeyCheckMs: 5000 });
    expect(configFromEnv({ AUTH_FAILURES_PER_MINUTE: '10', TRUST_PROXY: 'on', SUBSCRIPTION_KEY_CHECK_SECONDS: '2' })).toMatchObject({
      authFailuresPerMinute: 10,
      trustProxy: true,
      subscriptionKeyCheckMs: 2000,
    });
    expect(() => configFromEnv({ AUTH_FAILURES_PER_MINUTE: '0' })).toThrow(/AUTH_FAILURES_PER_MINUTE must be a positive integer/);
  });

  it('the queue settings default as documented and take positive whole seconds', async () => {
    const { configFromEnv } = await import('../../src/service/config.ts');
    expect(configFromEnv({}).queue).toEqual({ jobTimeoutSeconds: 300, retryLimit: 3, retryDelaySeconds: 5, shutdownTimeoutSeconds: 30 });
    expect(configFromEnv({ SHUTDOWN_TIMEOUT_SECONDS: '5', JOB_RETRY_LIMIT: '0' }).queue).toMatchObject({ shutdownTimeoutSeconds: 5, retryLimit: 0 });
    expect(() => configFromEnv({ SHUTDOWN_TIMEOUT_SECONDS: '0' })).toThrow('SHUTDOWN_TIMEOUT_SECONDS must be a positive integer, got "0"');
  });

  it('MAX_CONCURRENT_UPLOADS defaults to the CPU cores, 2 to 8, and takes a positive integer', async () => {
    const { configFromEnv, defaultUploadConcurrency } = await import('../../src/service/config.ts');
    const { availableParallelism } = await import('node:os');
    expect([1, 2, 3, 8, 64].map((cores) => defaultUploadConcurrency(cores))).toEqual([2, 2, 3, 8, 8]);
    expect(configFromEnv({}).maxConcurrentUploads).toBe(defaultUploadConcurrency(availableParallelism()));
    expect(configFromEnv({ MAX_CONCURRENT_UPLOADS: '12' }).maxConcurrentUploads).toBe(12);
    expect(() => configFromEnv({ MAX_CONCURRENT_UPLOADS: '0' })).toThrow('MAX_CONCURRENT_UPLOADS must be a positive integer, got "0"');
  });
});
