// Subscriptions over SSE through yoga.fetch: inspectionCompleted(productId) and inspectionUpdated(id).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, REPROCESS, SUBMIT, createProduct, sampleFiles, startService, subscribe, type TestService } from './helpers.ts';

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
