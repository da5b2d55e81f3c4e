// Nothing half-written: a failure injected at each step of submitInspection's write leaves either no
// inspection (and no blob) or, once committed, a complete one with all its inputs that a retry finds and
// a restart processes.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverUnfinished } from '../../src/processing/processor.ts';
import type { Faults } from '../../src/service/faults.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, INSPECTION, SUBMIT, createProduct, rowCounts, sampleFiles, startService, type TestService } from './helpers.ts';

/** Every step boundary of a submission with image, score map and ground truth, in order. */
const STEPS = ['submit:inspection', 'submit:blob:IMAGE', 'submit:blob:SCORE_MAP', 'submit:blob:GROUND_TRUTH', 'submit:committed'];

describe.each(BACKENDS)('submitInspection under injected failures on %s', (backend) => {
  let s: TestService;
  let productId: string;
  const faults: Faults & { failAt: string | null; seen: string[] } = {
    failAt: null,
    seen: [],
    at(step) {
      faults.seen.push(step);
      if (step === faults.failAt) throw new Error(`injected failure at ${step}`);
    },
  };
  const sample = syntheticSample({ width: 40, height: 32, seed: 12 });

  beforeAll(async () => {
    s = await startService(backend, { faults });
    productId = await createProduct(s, 'clip');
  });
  afterAll(async () => s?.close());

  const submit = async (externalId: string) => s.upload(SUBMIT, { input: { productId, externalId, image: null, scoreMap: null, groundTruth: null } }, await sampleFiles(sample, true));

  it('announces every step the test injects at', async () => {
    faults.seen = [];
    const r = await submit('probe');
    expect(r.data!.submitInspection.__typename).toBe('SubmitInspectionSuccess');
    expect(faults.seen).toEqual(STEPS);
    await s.processor.drain();
  });

  it.each(STEPS.filter((step) => step !== 'submit:committed'))('a failure at %s leaves no inspection and no blob', async (step) => {
    const before = await rowCounts(s);
    faults.failAt = step;
    try {
      const r = await submit(`fail-${step}`);
      expect(r.data?.submitInspection ?? null).toBeNull();
      expect(r.errors![0].message).toBe('Unexpected error.');
    } finally {
      faults.failAt = null;
    }
    await s.processor.drain();
    expect(await rowCounts(s)).toEqual(before);
    expect(await s.prisma.inspection.count({ where: { externalId: `fail-${step}` } })).toBe(0);
    // The station's retry then goes through as a first submission.
    const retry = await submit(`fail-${step}`);
    expect(retry.data!.submitInspection.__typename).toBe('SubmitInspectionSuccess');
    await s.processor.drain();
  });

  it('a failure after the commit leaves a complete QUEUED inspection, which the retry returns and a restart processes', async () => {
    faults.failAt = 'submit:committed';
    try {
      const r = await submit('after-commit');
      expect(r.errors![0].message).toBe('Unexpected error.');
    } finally {
      faults.failAt = null;
    }
    const row = await s.prisma.inspection.findFirstOrThrow({ where: { externalId: 'after-commit' }, include: { blobs: { select: { kind: true } } } });
    expect(row.status).toBe('QUEUED');
    expect(row.blobs.map((b) => b.kind).sort()).toEqual(['GROUND_TRUTH', 'IMAGE', 'SCORE_MAP']);
    const retry = await submit('after-commit');
    expect(decodeGlobalID(retry.data!.submitInspection.inspection.id).id).toBe(row.id);
    // Never enqueued by the failed request: the start-up recovery picks it up.
    expect(await recoverUnfinished(s.prisma, s.processor)).toBeGreaterThanOrEqual(1);
    await s.processor.drain();
    const done = await s.gql(INSPECTION, { id: retry.data!.submitInspection.inspection.id });
    expect(done.data!.inspection.status).toBe('SUCCEEDED');
  });
});
