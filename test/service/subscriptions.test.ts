// Subscriptions over SSE through yoga.fetch: inspectionCompleted(productId) and inspectionUpdated(id).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticSample } from '../../src/synthetic.ts';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { BACKENDS, REPROCESS, SUBMIT, createProduct, eventStream, openSubscription, sampleFiles, startService, subscribe, type TestService } from './helpers.ts';

describe.each(BACKENDS)('subscriptions on %s', (backend) => {
  let s: TestService;
  let productId: string;
  const sample = syntheticSample({ width: 48, height: 40, seed: 13 });

  beforeAll(async () => {
    s = await startService(backend);
    productId = await createProduct(s, 'valve');
  });
  afterAll(async () => s?.close());

  it('inspectionCompleted delivers each finished inspection of the product', async () => {
    const sub = await subscribe(s, `subscription($p: ID!) { inspectionCompleted(productId: $p) { id status verdict regionCount } }`, { p: productId });
    const ids: string[] = [];
    for (const seed of [1, 2]) {
      const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 40, height: 40, seed })));
      ids.push(r.data!.submitInspection.inspection.id);
    }
    const got = [await sub.next(), await sub.next()].map((e) => e.data.inspectionCompleted);
    sub.close();
    expect(got.map((g) => g.id).sort()).toEqual([...ids].sort());
    for (const g of got) {
      expect(g.status).toBe('SUCCEEDED');
      expect(['DEFECTIVE', 'NOMINAL']).toContain(g.verdict);
    }
  });

  it('inspectionCompleted without productId streams every product the key may see, and only those', async () => {
    const hidden = await createProduct(s, 'valve-hidden');
    const viewer = await s.createKey('VIEWER', [decodeGlobalID(productId).id]);
    const query = `subscription { inspectionCompleted { id product { id } } }`;
    const scoped = await openSubscription(s, { authorization: `Bearer ${viewer.secret}` }, query, {});
    expect(scoped.res.status).toBe(200);
    const scopedEvents = eventStream(scoped.res, scoped.abort);
    const all = await subscribe(s, query, {});
    const submitted: string[] = [];
    // The hidden product's inspection finishes first: a scoped subscription that leaked would see it first.
    for (const [p, seed] of [[hidden, 3], [productId, 4]] as const) {
      const r = await s.upload(SUBMIT, { input: { productId: p, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 40, height: 40, seed })));
      submitted.push(r.data!.submitInspection.inspection.id);
      await s.processor.drain();
    }
    const seenByAll = [await all.next(), await all.next()].map((e) => e.data.inspectionCompleted);
    const seenByScoped = (await scopedEvents.next()).data.inspectionCompleted;
    all.close();
    scopedEvents.close();
    expect(seenByAll.map((e) => [e.id, e.product.id])).toEqual([
      [submitted[0], hidden],
      [submitted[1], productId],
    ]);
    expect([seenByScoped.id, seenByScoped.product.id]).toEqual([submitted[1], productId]);
  });

  it('inspectionUpdated gives the current state, then every status change', async () => {
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(sample));
    const id = r.data!.submitInspection.inspection.id;
    await s.processor.drain();
    const sub = await subscribe(s, `subscription($id: ID!) { inspectionUpdated(id: $id) { id status maskUrl } }`, { id });
    const first = (await sub.next()).data.inspectionUpdated;
    expect(first).toMatchObject({ id, status: 'SUCCEEDED' });
    expect(first.maskUrl).toMatch(/mask\.png$/);
    const re = await s.gql(REPROCESS, { id });
    expect(re.data!.reprocessInspection.inspection.status).toBe('QUEUED');
    const statuses = [];
    for (let k = 0; k < 3; k++) statuses.push((await sub.next()).data.inspectionUpdated.status);
    sub.close();
    expect(statuses).toEqual(['QUEUED', 'RUNNING', 'SUCCEEDED']);
  });

  it('inspectionUpdated of an unknown inspection is an error', async () => {
    const sub = await subscribe(s, `subscription { inspectionUpdated(id: "nope") { id } }`, {});
    const e = await sub.next();
    sub.close();
    expect(e.errors[0]).toMatchObject({ extensions: { code: 'NOT_FOUND' } });
  });
});
