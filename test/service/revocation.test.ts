// A key's revocation, or a change of its role or products, reaches what is already open: SSE subscriptions
// end (a final UNAUTHENTICATED error, then the stream closes, and nothing more is delivered), at once when
// revoked through this server's revokeApiKey, within the check interval when revoked by another database
// client (as `ttt keys revoke` or another server process does); requests and file routes see the change
// on the very next request.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db.ts';
import { revokeApiKey } from '../../src/service/keys.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, ORIGIN, SUBMIT, createProduct, openSubscription, sampleFiles, startService, takeSseEvent, type Client, type TestService } from './helpers.ts';

type SseEvent = { event: 'next'; data: { data?: Record<string, any> | null; errors?: { message: string; extensions?: { code?: string } }[] } } | { event: 'complete' } | { event: 'closed' };

interface Stream {
  /** The next SSE event (keep-alives skipped), or `closed` when the stream ended; fails after `ms`. */
  read(ms?: number): Promise<SseEvent>;
  close(): void;
}

async function subscribe(s: TestService, c: Client, query: string, variables: Record<string, unknown>): Promise<Stream> {
  const { res, abort } = await openSubscription(s, c.headers, query, variables);
  expect(res.status).toBe(200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let pending: Promise<ReadableStreamReadResult<string>> | null = null;
  return {
    async read(ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const taken = takeSseEvent(buffer);
        if (taken) {
          buffer = taken.rest;
          if (taken.event === 'complete') return { event: taken.event };
          if (taken.event === 'next') return { event: taken.event, data: taken.data };
          continue;
        }
        pending ??= reader.read();
        const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now())));
        const r = await Promise.race([pending, timeout]);
        if (r === 'timeout') throw new Error(`no SSE event within ${ms} ms`);
        pending = null;
        if (r.done) return { event: 'closed' };
        buffer += r.value;
      }
    },
    close: () => abort.abort(),
  };
}

const COMPLETED = `subscription($p: ID!) { inspectionCompleted(productId: $p) { id status } }`;
const UPDATED = `subscription($id: ID!) { inspectionUpdated(id: $id) { id status } }`;

/** The stream's last result is an UNAUTHENTICATED error with this message, then it completes and closes. */
async function expectEnded(stream: Stream, message: RegExp, ms?: number): Promise<void> {
  const last = await stream.read(ms);
  expect(last).toMatchObject({ event: 'next', data: { errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] } });
  expect((last as { data: { errors: { message: string }[] } }).data.errors[0].message).toMatch(message);
  expect(await stream.read(2000)).toEqual({ event: 'complete' });
  expect(await stream.read(2000)).toEqual({ event: 'closed' });
}

describe.each(BACKENDS)('revoked and changed keys on %s', (backend) => {
  // Checks far apart: only the in-process path can end a stream within a test.
  let slow: TestService;
  // Checks every 200 ms: what another process revokes is seen within that.
  let fast: TestService;
  let product: { slow: string; fast: string; other: string };
  let inspection: string;

  beforeAll(async () => {
    slow = await startService(backend, { config: { subscriptionKeyCheckMs: 600_000 } });
    fast = await startService(backend, { config: { subscriptionKeyCheckMs: 200 } });
    product = { slow: await createProduct(slow, 'slow'), fast: await createProduct(fast, 'fast'), other: await createProduct(fast, 'other') };
    const r = await fast.upload(SUBMIT, { input: { productId: product.fast, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 32, height: 32, seed: 3 })));
    inspection = r.data!.submitInspection.inspection.id;
    await fast.processor.drain();
  });
  afterAll(async () => {
    await slow?.close();
    await fast?.close();
  });

  it('revokeApiKey (GraphQL, ADMIN) ends the key\'s open subscriptions at once; nothing more reaches them; other keys\' go on', async () => {
    const [doomed, kept] = [await slow.createKey('VIEWER'), await slow.createKey('VIEWER')];
    const productId = decodeGlobalID(product.slow).id;
    const subs = [await subscribe(slow, slow.as(doomed.secret), COMPLETED, { p: product.slow }), await subscribe(slow, slow.as(kept.secret), COMPLETED, { p: product.slow })];
    expect(slow.app.subscriptions.size).toBe(2);
    const publish = (id: string) => slow.app.events.publish({ id, productId, status: 'SUCCEEDED' });
    // Events carry an inspection id the resolver reads: use a real one of the product.
    const submitted = await slow.upload(SUBMIT, { input: { productId: product.slow, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 32, height: 32, seed: 4 })));
    const id = decodeGlobalID(submitted.data!.submitInspection.inspection.id).id;
    await slow.processor.drain();
    for (const sub of subs) await sub.read(); // the processor's own SUCCEEDED
    publish(id);
    for (const sub of subs) expect(await sub.read()).toMatchObject({ event: 'next', data: { data: { inspectionCompleted: { status: 'SUCCEEDED' } } } });

    const r = await slow.gql(`mutation($id: String!) { revokeApiKey(id: $id) { __typename } }`, { id: doomed.id });
    expect(r.data!.revokeApiKey.__typename).toBe('RevokedApiKey');
    await expectEnded(subs[0], /API key of this subscription was revoked/, 2000);
    publish(id);
    expect(await subs[1].read()).toMatchObject({ event: 'next', data: { data: { inspectionCompleted: { status: 'SUCCEEDED' } } } });
    expect(slow.app.subscriptions.size).toBe(1);
    subs[1].close();
    // A new subscription with the revoked key is refused.
    const again = await slow.yoga.fetch(`${ORIGIN}/graphql`, {
      method: 'POST',
      headers: { ...slow.as(doomed.secret).headers, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: COMPLETED, variables: { p: product.slow } }),
    });
    expect(again.status).toBe(401);
  });

  it('a key revoked by another database client (as `ttt keys revoke` does) ends every subscription of it within the check interval', async () => {
    const key = await fast.createKey('VIEWER');
    const c = fast.as(key.secret);
    const subs = [await subscribe(fast, c, COMPLETED, { p: product.fast }), await subscribe(fast, c, UPDATED, { id: inspection })];
    expect(await subs[1].read()).toMatchObject({ event: 'next', data: { data: { inspectionUpdated: { status: 'SUCCEEDED' } } } });
    let started: number;
    if (backend === 'postgres') {
      // A second connection pool on the same database: another process, as far as this server can tell.
      const other = await openDatabase({ url: fast.database.url! });
      try {
        started = Date.now();
        await revokeApiKey(other.prisma, key.id);
      } finally {
        await other.close();
      }
    } else {
      // PGlite admits one process: revoke in SQL, past this server's revokeApiKey.
      started = Date.now();
      await fast.prisma.$executeRaw`UPDATE "ApiKey" SET "revokedAt" = now() WHERE "id" = ${key.id}::uuid`;
    }
    for (const sub of subs) await expectEnded(sub, /API key of this subscription was revoked/, 5000);
    // Bounded by the interval (200 ms) plus one statement; generous for a loaded machine.
    expect(Date.now() - started).toBeLessThan(3000);
    fast.app.events.publish({ id: decodeGlobalID(inspection).id, productId: decodeGlobalID(product.fast).id, status: 'SUCCEEDED' });
    expect(fast.app.subscriptions.size).toBe(0);
  });

  it('a change of products or role applies to the next request and file route, and ends the key\'s subscriptions', async () => {
    const fastId = decodeGlobalID(product.fast).id;
    const otherId = decodeGlobalID(product.other).id;
    const viewer = await fast.createKey('VIEWER', [fastId]);
    const c = fast.as(viewer.secret);
    const file = `/files/inspections/${decodeGlobalID(inspection).id}/mask.png`;
    const sub = await subscribe(fast, c, COMPLETED, { p: product.fast });
    expect((await c.get(file)).status).toBe(200);
    expect((await c.gql(`query($id: ID!) { inspection(id: $id) { id } }`, { id: inspection })).data!.inspection).toEqual({ id: inspection });
    // Its scope moves to the other product (no API changes a scope: done in the database).
    await fast.prisma.apiKeyProduct.updateMany({ where: { keyId: viewer.id }, data: { productId: otherId } });
    expect((await c.get(file)).status).toBe(404);
    expect((await c.gql(`query($id: ID!) { inspection(id: $id) { id } }`, { id: inspection })).data!.inspection).toBeNull();
    await expectEnded(sub, /role or products of this subscription's API key changed/, 5000);

    const station = await fast.createKey('STATION');
    const s = fast.as(station.secret);
    const stationSub = await subscribe(fast, s, COMPLETED, { p: product.fast });
    const reprocess = `mutation($id: ID!) { reprocessInspection(id: $id) { __typename } }`;
    await fast.prisma.apiKey.update({ where: { id: station.id }, data: { role: 'VIEWER' } });
    const refused = await s.gql(reprocess, { id: inspection });
    expect(refused.errors![0].extensions!.code).toBe('FORBIDDEN');
    await expectEnded(stationSub, /role or products of this subscription's API key changed/, 5000);
  });
});
