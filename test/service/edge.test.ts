// The HTTP/GraphQL edge under hostile input: the cost limit with the values actually used (variables
// included), coded refusals of every document limit, no schema suggestions, authentication before the body,
// slow senders timed out, CORS by configuration, unknown paths, and GraphiQL served without a CDN.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { parse } from 'graphql';
import { createConnection, type AddressInfo, type Socket } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schema } from '../../src/schema/index.ts';
import { configFromEnv } from '../../src/service/config.ts';
import { operationCost } from '../../src/server/cost.ts';
import { createHttpServer, listen } from '../../src/server/http.ts';
import { BACKENDS, ORIGIN, createProduct, eventStream, startService, type TestService } from './helpers.ts';

const TEN_FIELDS = 'id externalId status createdAt imageScore defectFraction verdict imageUrl maskUrl overlayUrl';
const HISTORY = `query History($n: Int!) { inspections(first: $n) { totalCount edges { cursor node { ${TEN_FIELDS} } } pageInfo { hasNextPage endCursor } } }`;

const cost = (query: string, variables: Record<string, unknown> = {}) => operationCost(schema, parse(query), undefined, variables, { defaultPageSize: 20 });

describe('the cost of an operation', () => {
  it('counts a page by the first/last it runs with, literal or variable, and the default page without either', () => {
    // inspections 1 + edges 1 + n x (node 1 + id 1)
    expect(cost('{ inspections(first: 7) { edges { node { id } } } }')).toBe(2 + 7 * 2);
    expect(cost('query($n: Int) { inspections(first: $n) { edges { node { id } } } }', { n: 7 })).toBe(2 + 7 * 2);
    expect(cost('query($n: Int) { inspections(last: $n) { edges { node { id } } } }', { n: 500 })).toBe(2 + 500 * 2);
    expect(cost('query($n: Int = 300) { inspections(first: $n) { edges { node { id } } } }')).toBe(2 + 300 * 2);
    expect(cost('{ inspections { edges { node { id } } } }')).toBe(2 + 20 * 2);
    // totalCount and pageInfo are one value each, whatever the page.
    expect(cost('{ inspections(first: 100) { totalCount pageInfo { hasNextPage } } }')).toBe(1 + 1 + 2);
  });

  it('counts fragments where they are spread, and variables that do not coerce leave the error to execution', () => {
    const viaFragments = `query($n: Int) { ...Q } fragment Q on Query { inspections(first: $n) { edges { ...E } } } fragment E on InspectionEdge { node { id } }`;
    expect(cost(viaFragments, { n: 50 })).toBe(2 + 50 * 2);
    expect(cost('query($n: Int) { inspections(first: $n) { edges { node { id } } } }', { n: 'many' })).toBeNull();
    // Fragments spreading fragments twice over: the cost doubles at each level, the costing does not.
    const levels = 40;
    const defs = Array.from({ length: levels }, (_, k) => `fragment F${k} on Query { ${k + 1 < levels ? `...F${k + 1} ...F${k + 1}` : '__typename'} }`);
    expect(cost(`{ ...F0 } ${defs.join(' ')}`)).toBe(2 ** (levels - 1));
  });
});

describe.each(BACKENDS)('GraphQL limits at the edge on %s', (backend) => {
  let s: TestService;
  let strict: TestService;
  let production: TestService;

  beforeAll(async () => {
    s = await startService(backend);
    strict = await startService(backend, { config: { graphqlLimits: { maxDepth: 4, maxAliases: 2, maxCost: 40, maxTokens: 60, maxDirectives: 2 } } });
    production = await startService(backend, { config: configFromEnv({ NODE_ENV: 'production' }) });
  });
  afterAll(async () => {
    await s?.close();
    await strict?.close();
    await production?.close();
  });

  it('a page size given through a variable is costed as the same literal: both refused with QUERY_TOO_COSTLY', async () => {
    const literal = await s.gql(`{ inspections(first: 500) { edges { node { ${TEN_FIELDS} } } } }`);
    const variable = await s.gql(`query($n: Int!) { inspections(first: $n) { edges { node { ${TEN_FIELDS} } } } }`, { n: 500 });
    for (const r of [literal, variable]) {
      expect(r.data).toBeUndefined();
      expect(r.errors).toHaveLength(1);
      expect(r.errors![0].extensions?.code).toBe('QUERY_TOO_COSTLY');
      expect(r.errors![0].message).toBe('Query cost limit of 5000 exceeded, found 5502 (GRAPHQL_MAX_COST: every field costs 1, a page\'s items count once per item)');
    }
  });

  it('15 aliases of first: $n with n = 500 are refused; a VIEWER history page of 100 with ten fields fits the default', async () => {
    const aliases = Array.from({ length: 15 }, (_, k) => `a${k}: inspections(first: $n) { edges { node { id } } }`).join(' ');
    const r = await s.gql(`query($n: Int!) { ${aliases} }`, { n: 500 });
    expect(r.data).toBeUndefined();
    expect(r.errors![0].extensions?.code).toBe('QUERY_TOO_COSTLY');
    expect(r.errors![0].message).toMatch(/found 15030\b/);

    const product = await createProduct(s, 'history');
    const viewer = s.as((await s.createKey('VIEWER', [decodeGlobalID(product).id])).secret);
    const page = await viewer.gql(HISTORY, { n: 100 });
    expect(page.errors).toBeUndefined();
    expect(page.data!.inspections).toEqual({ totalCount: 0, edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
    expect(cost(HISTORY, { n: 100 })).toBe(1 + 1 + 1 + 100 * (1 + 1 + 10) + 3);
  });

  it('every document limit answers with a code and a true message', async () => {
    const refused = async (query: string, code: string, message: RegExp) => {
      const r = await strict.gql(query);
      expect(r.data).toBeUndefined();
      expect(r.errors).toHaveLength(1);
      expect(r.errors![0].extensions?.code).toBe(code);
      expect(r.errors![0].message).toMatch(message);
      expect(r.errors![0].message).not.toMatch(/Syntax Error/);
    };
    await refused('{ inspections { edges { node { regions { area } } } } }', 'QUERY_TOO_DEEP', /^Query depth limit of 4 exceeded, found 5\.$/);
    await refused('{ a: products { name } b: products { name } c: products { name } }', 'TOO_MANY_ALIASES', /^Aliases limit of 2 exceeded, found 3\.$/);
    await refused('{ inspections(first: 20) { edges { node { id } } } }', 'QUERY_TOO_COSTLY', /^Query cost limit of 40 exceeded, found 42 /);
    await refused(`{ products { ${Array.from({ length: 60 }, () => 'name').join(' ')} } }`, 'TOO_MANY_TOKENS', /^Token limit of 60 exceeded\.$/);
    await refused('{ products @include(if: true) { name @include(if: true) line @include(if: true) } }', 'TOO_MANY_DIRECTIVES', /^Directives limit of 2 exceeded, found 3\.$/);
    expect((await strict.gql('{ inspections(first: 10) { edges { node { id } } } }')).errors).toBeUndefined();
  });

  it.each(['development', 'production'])('no suggestions for misspelt fields, arguments, types and enum values (%s)', async (mode) => {
    const svc = mode === 'production' ? production : s;
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['{ prodcts { name } }', {}, /^Cannot query field "prodcts" on type "Query"\.$/],
      ['{ products { nme } }', {}, /^Cannot query field "nme" on type "Product"\.$/],
      ['{ inspections(filter: { status: SUCEEDED }) { totalCount } }', {}, /^Value "SUCEEDED" does not exist in "InspectionStatus" enum\.$/],
      ['query($s: InspectionStatus) { inspections(filter: { status: $s }) { totalCount } }', { s: 'SUCEEDED' }, /^Variable "\$s" got invalid value "SUCEEDED"; Value "SUCEEDED" does not exist in "InspectionStatus" enum\.$/],
      ['{ inspections(frist: 5) { totalCount } }', {}, /^Unknown argument "frist" on field "Query\.inspections"\.$/],
      ['query($f: InspectionFiltr) { inspections(filter: $f) { totalCount } }', {}, /^Unknown type "InspectionFiltr"\.$/],
    ];
    for (const [query, variables, message] of cases) {
      const r = await svc.gql(query, variables);
      expect(r.errors?.length, query).toBeGreaterThan(0);
      for (const e of r.errors!) expect(e.message, query).not.toMatch(/Did you mean|SUCCEEDED|products|InspectionFilter\b|"first"|"name"/);
      expect(r.errors!.map((e) => e.message), query).toContainEqual(expect.stringMatching(message));
    }
  });
});

/** A stream of `total` bytes of JSON-ish filler that records how many bytes were pulled from it. */
function countingBody(total: number): { stream: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const chunk = new Uint8Array(64 * 1024).fill(32);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= total) return controller.close();
      pulled += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  return { stream, pulled: () => pulled };
}

async function serve(s: TestService, timeouts = { headersTimeoutMs: 10_000, requestTimeoutMs: 120_000 }): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createHttpServer(s.app, timeouts);
  await listen(server, { port: 0, host: '127.0.0.1' });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Opens a raw connection; resolves, once the server closes it, with what it answered and after how many ms. */
function rawConnection(port: number): { socket: Socket; closed: Promise<{ answer: string; ms: number }> } {
  const socket = createConnection({ port, host: '127.0.0.1' });
  const t0 = performance.now();
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (answer += d));
  socket.on('error', () => undefined);
  const closed = new Promise<{ answer: string; ms: number }>((resolve) => socket.on('close', () => resolve({ answer, ms: performance.now() - t0 })));
  return { socket, closed };
}

describe.each(BACKENDS)('the HTTP edge on %s', (backend) => {
  let s: TestService;
  let cors: TestService;
  let noGraphiql: TestService;

  beforeAll(async () => {
    s = await startService(backend);
    cors = await startService(backend, { config: configFromEnv({ CORS_ORIGINS: 'https://dashboard.plant.example, http://10.0.0.5:8080' }) });
    noGraphiql = await startService(backend, { config: { graphiql: false } });
  });
  afterAll(async () => {
    await s?.close();
    await cors?.close();
    await noGraphiql?.close();
  });

  it('a request without a valid key is refused 401 before its body is read', async () => {
    for (const authorization of [undefined, 'Bearer ttt_not-a-key']) {
      const body = countingBody(200 * 1024 * 1024);
      const res = await s.yoga.fetch(`${ORIGIN}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: body.stream,
        duplex: 'half',
      } as RequestInit);
      expect(res.status).toBe(401);
      expect((await res.json()).errors[0].extensions.code).toBe('UNAUTHENTICATED');
      // At most what the stream queues ahead of any reader (its high-water mark, one chunk).
      expect(body.pulled()).toBeLessThanOrEqual(64 * 1024);
    }
  });

  it('a chunked body is counted as it is parsed, never held whole: over the limit its read fails with 413 TOO_LARGE', async () => {
    const small = await startService(backend, { config: { maxRequestBytes: 1024 * 1024 } });
    try {
      const body = countingBody(50 * 1024 * 1024);
      const res = await small.yoga.fetch(`${ORIGIN}/graphql`, {
        method: 'POST',
        headers: { ...small.headers, 'content-type': 'application/json', accept: 'application/json' },
        body: body.stream,
        duplex: 'half',
      } as RequestInit);
      expect(res.status).toBe(413);
      const json = await res.json();
      expect(json.errors[0]).toMatchObject({ message: 'the request body exceeds the limit of 1048576 bytes', extensions: { code: 'TOO_LARGE' } });
      // The limit and what the streams between queue ahead (a few chunks), not the 50 MB sent.
      expect(body.pulled()).toBeLessThan(2 * 1024 * 1024);
      // Multipart too.
      const form = new FormData();
      form.set('operations', JSON.stringify({ query: '{ __typename }', variables: {} }));
      form.set('map', '{}');
      form.set('0', new File([new Uint8Array(2 * 1024 * 1024)], 'big.bin'));
      const encoded = new Response(form);
      const multipart = await small.yoga.fetch(`${ORIGIN}/graphql`, {
        method: 'POST',
        headers: { ...small.headers, 'content-type': encoded.headers.get('content-type')!, accept: 'application/json' },
        body: encoded.body,
        duplex: 'half',
      } as RequestInit);
      expect(multipart.status).toBe(413);
      expect((await multipart.json()).errors[0].extensions.code).toBe('TOO_LARGE');
    } finally {
      await small.close();
    }
  });

  it('bodies up to MAX_REQUEST_BYTES are parsed, with or without a length (yoga\'s own 25 MB default does not cut them)', async () => {
    const padded = JSON.stringify({ query: '{ __typename }', variables: {} }).replace('{', `{${' '.repeat(30 * 1024 * 1024)}`);
    const bytes = new TextEncoder().encode(padded);
    expect(bytes.byteLength).toBeLessThan(s.app.config.maxRequestBytes);
    for (const chunked of [false, true]) {
      const body = chunked ? new Blob([bytes]).stream() : bytes;
      const res = await s.yoga.fetch(`${ORIGIN}/graphql`, {
        method: 'POST',
        headers: { ...s.headers, 'content-type': 'application/json', accept: 'application/json', ...(chunked ? {} : { 'content-length': String(bytes.byteLength) }) },
        body,
        duplex: 'half',
      } as RequestInit);
      expect(res.status, chunked ? 'chunked' : 'with a length').toBe(200);
      expect((await res.json()).data).toEqual({ __typename: 'Query' });
    }
  });

  it('over HTTP, a keyless request with an endless chunked body gets 401 and its connection is closed', async () => {
    const http = await serve(s);
    try {
      const { socket, closed } = rawConnection(http.port);
      socket.write(`POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
      let sent = 0;
      const chunk = `${(64 * 1024).toString(16)}\r\n${' '.repeat(64 * 1024)}\r\n`;
      let done = false;
      void closed.then(() => (done = true));
      while (!done && sent < 200 * 1024 * 1024) {
        if (!socket.write(chunk)) await new Promise((resolve) => setTimeout(resolve, 5));
        sent += 64 * 1024;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const { answer } = await closed;
      expect(answer).toMatch(/^HTTP\/1\.1 401 /);
      expect(sent).toBeLessThan(32 * 1024 * 1024);
    } finally {
      await http.close();
    }
  });

  it('a slow sender is cut off: headers within the headers timeout, the whole request within the request timeout; SSE answers stream on', async () => {
    const http = await serve(s, { headersTimeoutMs: 1000, requestTimeoutMs: 2000 });
    try {
      // Headers one byte every 100 ms, never finished.
      const slowHeaders = rawConnection(http.port);
      const head = 'GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ' + 'x'.repeat(200);
      let k = 0;
      const drip = setInterval(() => k < head.length && !slowHeaders.socket.destroyed && slowHeaders.socket.write(head[k++]), 100);
      // A body declared and sent slowly: 1 byte every 100 ms of 1000.
      const slowBody = rawConnection(http.port);
      slowBody.socket.write(`POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(s.headers).map(([h, v]) => `${h}: ${v}\r\n`).join('')}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n`);
      const bodyDrip = setInterval(() => !slowBody.socket.destroyed && slowBody.socket.write(' '), 100);
      const [h, b] = await Promise.all([slowHeaders.closed, slowBody.closed]);
      clearInterval(drip);
      clearInterval(bodyDrip);
      // Expired requests are looked for every 250 ms (here); the bounds leave room for a loaded machine,
      // far below Node's defaults (60 s for headers, 300 s for the request).
      expect(h.ms).toBeGreaterThanOrEqual(1000);
      expect(h.ms).toBeLessThan(1000 + 2000);
      expect(h.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(b.ms).toBeGreaterThanOrEqual(2000);
      expect(b.ms).toBeLessThan(2000 + 2000);
      expect(b.answer).toMatch(/^HTTP\/1\.1 408 /);

      // A subscription outlives the request timeout: an event published after it still arrives.
      const product = await createProduct(s, 'sse');
      const abort = new AbortController();
      const res = await fetch(`http://127.0.0.1:${http.port}/graphql`, {
        method: 'POST',
        headers: { ...s.headers, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: 'subscription($p: ID!) { inspectionCompleted(productId: $p) { id } }', variables: { p: product } }),
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      const sse = eventStream(res, abort);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      s.app.events.publish({ id: '00000000-0000-4000-8000-000000000000', productId: (await s.prisma.product.findFirstOrThrow({ where: { name: 'sse' } })).id, status: 'SUCCEEDED' });
      // The event names an inspection that does not exist: its delivery carries an error, which is enough to show the stream is open.
      const event = await sse.next();
      expect(event.errors?.[0].message).toBe('Unexpected error.');
      sse.close();
    } finally {
      await http.close();
    }
  });

  it('CORS: a foreign origin gets no allow-origin or allow-credentials; a configured one does', async () => {
    const ask = async (svc: TestService, origin: string, method = 'POST') =>
      svc.yoga.fetch(`${ORIGIN}/graphql`, {
        method,
        headers:
          method === 'OPTIONS'
            ? { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' }
            : { ...svc.headers, origin, 'content-type': 'application/json', accept: 'application/json' },
        body: method === 'OPTIONS' ? undefined : JSON.stringify({ query: '{ __typename }' }),
      });
    for (const [svc, origin] of [
      [s, 'https://evil.example'],
      [s, ORIGIN],
      [cors, 'https://evil.example'],
      [cors, 'https://dashboard.plant.example.evil.example'],
    ] as const) {
      for (const method of ['POST', 'OPTIONS']) {
        const res = await ask(svc, origin, method);
        expect(res.headers.get('access-control-allow-origin'), `${origin} ${method}`).toBeNull();
        expect(res.headers.get('access-control-allow-credentials'), `${origin} ${method}`).toBeNull();
      }
    }
    for (const origin of ['https://dashboard.plant.example', 'http://10.0.0.5:8080']) {
      const res = await ask(cors, origin);
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      expect(res.headers.get('access-control-allow-credentials')).toBe('true');
      const preflight = await ask(cors, origin, 'OPTIONS');
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
      expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization, content-type, accept');
    }
  });

  it('unknown paths answer 404 with or without a key; known ones still need one', async () => {
    for (const path of ['/nothing', '/index.html', '/assets/missing.js', '/thumbnails/nope.png', '/graphqlx', '/files/inspections/nope.png', '/files/inspections/00000000-0000-4000-8000-000000000000/other.png']) {
      for (const svc of [s, s.as(null)]) {
        const res = await svc.get(path);
        expect(res.status, path).toBe(404);
        expect((await res.json()).errors[0].extensions.code).toBe('NOT_FOUND');
      }
    }
    expect((await s.as(null).get('/graphql?query=%7B__typename%7D')).status).toBe(401);
    expect((await s.as(null).get('/files/inspections/00000000-0000-4000-8000-000000000000/mask.png')).status).toBe(401);
    expect((await noGraphiql.as(null).get('/graphiql/graphiql.js')).status).toBe(404);
    // yoga's health check stays open.
    expect((await s.as(null).get('/health')).status).toBe(200);
  });

  it('GraphiQL refers only to same-origin assets, which are served without a key', async () => {
    const page = await s.yoga.fetch(`${ORIGIN}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html.length).toBeLessThan(10_000);
    // Icon, style and script, then Monaco's three workers.
    const attributes = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    const urls = [...html.matchAll(/"(\/[^"]*)"/g)].map((m) => m[1]);
    expect(attributes).toHaveLength(3);
    expect(urls).toHaveLength(6);
    expect(urls).toEqual(expect.arrayContaining(attributes));
    expect(html).not.toMatch(/https?:\/\/|\/\/[a-z]/i);
    for (const url of urls) {
      expect(url).toMatch(/^\/graphiql\/[a-z.]+\?v=[\d.]+$/);
      const res = await s.as(null).get(url);
      expect(res.status, url).toBe(200);
      expect((await res.arrayBuffer()).byteLength, url).toBeGreaterThan(1000);
    }
    expect(html).toContain('YogaGraphiQL.renderYogaGraphiQL');
    expect((await s.as(null).get('/graphiql/graphiql.js')).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await s.as(null).get('/graphiql/missing.js')).status).toBe(404);
  });
});

describe('edge configuration', () => {
  it('HOST, CORS_ORIGINS and the request timeouts default as documented and are checked', () => {
    const d = configFromEnv({});
    expect(d).toMatchObject({ host: null, corsOrigins: [], headersTimeoutMs: 10_000, requestTimeoutMs: 120_000 });
    expect(configFromEnv({ HOST: '127.0.0.1', CORS_ORIGINS: 'https://a.example,http://b.example:81', REQUEST_HEADERS_TIMEOUT_SECONDS: '5', REQUEST_TIMEOUT_SECONDS: '30' })).toMatchObject({
      host: '127.0.0.1',
      corsOrigins: ['https://a.example', 'http://b.example:81'],
      headersTimeoutMs: 5000,
      requestTimeoutMs: 30_000,
    });
    expect(() => configFromEnv({ CORS_ORIGINS: 'https://a.example/' })).toThrow(/CORS_ORIGINS must list origins .* got "https:\/\/a.example\/"/);
    expect(() => configFromEnv({ CORS_ORIGINS: '*' })).toThrow(/CORS_ORIGINS must list origins/);
    expect(() => configFromEnv({ REQUEST_HEADERS_TIMEOUT_SECONDS: '60', REQUEST_TIMEOUT_SECONDS: '30' })).toThrow(/must not exceed REQUEST_TIMEOUT_SECONDS/);
  });

  it('HOST binds the server to that address', async () => {
    const s = await startService('pglite');
    const server = createHttpServer(s.app, s.app.config);
    try {
      await listen(server, { ...configFromEnv({ HOST: '127.0.0.1' }), port: 0 });
      expect((server.address() as AddressInfo).address).toBe('127.0.0.1');
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await s.close();
    }
  });
});
