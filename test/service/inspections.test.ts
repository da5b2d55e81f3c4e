// Submit -> QUEUED -> SUCCEEDED on the real GPU and database, with the results, file routes, idempotent
// retries, node lookup, reprocessing with new options and deletion.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confusion, pixelMetrics } from '../../src/core/metrics.ts';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { syntheticSample } from '../../src/synthetic.ts';
import { testGpu } from '../helpers/gpu.ts';
import { recoverUnfinished } from '../../src/processing/processor.ts';
import { BACKENDS, INSPECTION, ORIGIN, REPROCESS, SUBMIT, createProduct, imagePng, readPng, rowCounts, sampleFiles, scoreMapNpy, startService, type TestService } from './helpers.ts';

describe.each(BACKENDS)('inspections on %s', (backend) => {
  let s: TestService;
  let productId: string;
  const sample = syntheticSample({ width: 64, height: 48, seed: 21, defects: 2 });

  beforeAll(async () => {
    s = await startService(backend);
    productId = await createProduct(s, 'bracket', [{ key: 'classifier.epochs', value: '30' }]);
  });
  afterAll(async () => s?.close());

  let inspectionId: string;

  it('queues a submission and processes it to SUCCEEDED with regions, figures and metrics', async () => {
    const r = await s.upload(SUBMIT, { input: { productId, externalId: 'station-7/000123', image: null, scoreMap: null, groundTruth: null } }, await sampleFiles(sample, true));
    expect(r.errors).toBeUndefined();
    const submitted = r.data!.submitInspection;
    expect(submitted.__typename).toBe('SubmitInspectionSuccess');
    expect(submitted.inspection.status).toBe('QUEUED');
    expect(submitted.inspection.maskUrl).toBeNull();
    expect(submitted.inspection.externalId).toBe('station-7/000123');
    expect([submitted.inspection.width, submitted.inspection.height, submitted.inspection.channels]).toEqual([64, 48, 1]);
    inspectionId = submitted.inspection.id;

    await s.processor.drain();
    const { data } = await s.gql(INSPECTION, { id: inspectionId });
    const i = data!.inspection;
    expect(i.status).toBe('SUCCEEDED');
    expect(i.errorCode).toBeNull();
    expect(i.verdict).toBe('DEFECTIVE');
    expect(i.regionCount).toBe(i.regions.length);
    expect(i.regions.length).toBeGreaterThan(0);
    const area = i.regions.reduce((a: number, r: { area: number }) => a + r.area, 0);
    expect(i.defectFraction).toBeCloseTo(area / (64 * 48), 12);
    // The image score is the map's maximum.
    expect(i.imageScore).toBeCloseTo(Math.max(...sample.scoreMap.data), 6);
    expect(i.pseudoLabels.anomalous).toBeGreaterThan(0);
    expect(i.pseudoLabels.nominal).toBe(500);
    expect(i.classifierEpochs).toBeGreaterThan(0);
    expect(i.classifierEpochs).toBeLessThanOrEqual(30);
    expect(Number.isFinite(i.classifierLoss)).toBe(true);
    expect(i.stageMs.map((t: { stage: string }) => t.stage)).toEqual(['decode', 'upload', 'stats', 'pseudoLabels', 'features', 'gather', 'classifier', 'predict', 'regions', 'encode']);
    // Where each stage ran: compute.stages=auto takes the host path on a software adapter (lavapipe here);
    // the default extractor's features come from the GPU either way.
    const where = (await testGpu()).software ? 'HOST' : 'GPU';
    const on = Object.fromEntries(i.stageMs.map((t: { stage: string; on: string }) => [t.stage, t.on]));
    expect(on).toEqual({ decode: 'HOST', upload: where, stats: where, pseudoLabels: where, features: 'GPU', gather: where, classifier: where, predict: where, regions: 'HOST', encode: 'HOST' });
    expect(i.totalMs).toBeGreaterThan(0);
    expect(new Date(i.startedAt).getTime()).toBeGreaterThanOrEqual(new Date(i.createdAt).getTime());
    expect(new Date(i.finishedAt).getTime()).toBeGreaterThanOrEqual(new Date(i.startedAt).getTime());
    for (const r of i.regions) {
      expect(r.bbox.width * r.bbox.height).toBeGreaterThanOrEqual(r.area);
      expect(r.maxScore).toBeGreaterThanOrEqual(r.meanScore);
      expect(r.centroid.x).toBeGreaterThanOrEqual(r.bbox.x);
      expect(r.centroid.x).toBeLessThan(r.bbox.x + r.bbox.width);
    }
    expect(i.product).toEqual({ id: productId, name: 'bracket' });

    // The stored mask is the result: its PNG matches the regions' area and the metrics its confusion.
    expect(i.maskUrl).toBe(`${ORIGIN}/files/inspections/${decodeGlobalID(inspectionId).id}/mask.png`);
    const res = await s.get(new URL(i.maskUrl).pathname);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const png = await readPng(new Uint8Array(await res.arrayBuffer()));
    expect([png.format, png.width, png.height]).toEqual(['png', 64, 48]);
    const mask = png.pixels.map((v) => (v > 127 ? 1 : 0));
    expect(mask.reduce((a, b) => a + b, 0)).toBe(area);
    const expected = pixelMetrics(confusion(mask, sample.groundTruth));
    expect(i.metrics.precision).toBeCloseTo(expected.precision, 12);
    expect(i.metrics.recall).toBeCloseTo(expected.recall, 12);
    expect(i.metrics.f1).toBeCloseTo(expected.f1, 12);
    expect(i.metrics.iou).toBeCloseTo(expected.iou, 12);
    expect(i.metrics.f1).toBeGreaterThan(0.3);
  });

  it('serves the image, score map and overlay as PNGs of the right size', async () => {
    const { data } = await s.gql(INSPECTION, { id: inspectionId });
    const i = data!.inspection;
    for (const [url, size] of [
      [i.imageUrl, [64, 48]],
      [i.scoreMapUrl, [sample.scoreMap.width, sample.scoreMap.height]],
      [i.overlayUrl, [64, 48]],
    ] as const) {
      const res = await s.get(new URL(url).pathname);
      expect(res.status).toBe(200);
      const png = await readPng(new Uint8Array(await res.arrayBuffer()));
      expect([png.format, png.width, png.height]).toEqual(['png', ...size]);
    }
    const overlay = await s.get(new URL(i.overlayUrl).pathname);
    const meta = await readPng(new Uint8Array(await overlay.arrayBuffer()));
    expect(meta.channels).toBe(3);
    expect((await s.get('/files/inspections/00000000-0000-7000-8000-000000000000/mask.png')).status).toBe(404);
  });

  it('returns the same inspection for a retry with the same externalId, storing nothing new', async () => {
    const before = await rowCounts(s);
    const r = await s.upload(SUBMIT, { input: { productId, externalId: 'station-7/000123', image: null, scoreMap: null } }, await sampleFiles(sample));
    expect(r.data!.submitInspection.inspection.id).toBe(inspectionId);
    expect(r.data!.submitInspection.inspection.status).toBe('SUCCEEDED');
    expect(await rowCounts(s)).toEqual(before);
  });

  it('finds the inspection and the product through node(id)', async () => {
    const { data } = await s.gql(
      `query($a: ID!, $b: ID!) { a: node(id: $a) { __typename id ... on Inspection { status } } b: node(id: $b) { __typename ... on Product { name } } }`,
      { a: inspectionId, b: productId },
    );
    expect(data).toEqual({ a: { __typename: 'Inspection', id: inspectionId, status: 'SUCCEEDED' }, b: { __typename: 'Product', name: 'bracket' } });
  });

  it('reprocesses with new options, replacing the results', async () => {
    const r = await s.gql(REPROCESS, { id: inspectionId, options: [{ key: 'regions.minArea', value: '100000' }] });
    expect(r.data!.reprocessInspection.__typename).toBe('ReprocessInspectionSuccess');
    expect(r.data!.reprocessInspection.inspection.status).toBe('QUEUED');
    await s.processor.drain();
    const { data } = await s.gql(INSPECTION, { id: inspectionId });
    const i = data!.inspection;
    expect(i.status).toBe('SUCCEEDED');
    expect(i.options).toEqual([{ key: 'regions.minArea', value: '100000' }]);
    // Every region is smaller than the minimum area: the mask is empty and the verdict NOMINAL.
    expect(i.regions).toEqual([]);
    expect(i.verdict).toBe('NOMINAL');
    expect(i.defectFraction).toBe(0);
    expect(await s.prisma.region.count({ where: { inspectionId: decodeGlobalID(inspectionId).id } })).toBe(0);
  });

  it('deletes an inspection with its inputs, mask and regions', async () => {
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(syntheticSample({ width: 40, height: 40, seed: 5 })));
    const id = r.data!.submitInspection.inspection.id;
    await s.processor.drain();
    const local = decodeGlobalID(id).id;
    expect(await s.prisma.inspectionBlob.count({ where: { inspectionId: local } })).toBe(3);
    const del = await s.gql(`mutation($id: ID!) { deleteInspection(id: $id) { __typename ... on DeletedInspection { deletedId } ... on Error { code } } }`, { id });
    expect(del.data!.deleteInspection).toEqual({ __typename: 'DeletedInspection', deletedId: id });
    expect(await s.prisma.inspectionBlob.count({ where: { inspectionId: local } })).toBe(0);
    expect(await s.prisma.region.count({ where: { inspectionId: local } })).toBe(0);
    expect((await s.gql(INSPECTION, { id })).data!.inspection).toBeNull();
    const again = await s.gql(`mutation($id: ID!) { deleteInspection(id: $id) { __typename ... on Error { code } } }`, { id });
    expect(again.data!.deleteInspection).toEqual({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });

  it('re-queues on start what a stopped process left QUEUED or RUNNING', async () => {
    const product = decodeGlobalID(productId).id;
    const s2 = syntheticSample({ width: 40, height: 32, seed: 31 });
    const blobs = { create: [{ kind: 'IMAGE' as const, name: 'a.png', data: new Uint8Array(await imagePng(s2)) }, { kind: 'SCORE_MAP' as const, name: 'a.npy', data: new Uint8Array(scoreMapNpy(s2.scoreMap)) }] };
    const left = await Promise.all([
      s.prisma.inspection.create({ data: { productId: product, width: 40, height: 32, channels: 1, status: 'QUEUED', blobs }, select: { id: true } }),
      s.prisma.inspection.create({ data: { productId: product, width: 40, height: 32, channels: 1, status: 'RUNNING', startedAt: new Date(), blobs }, select: { id: true } }),
    ]);
    expect(await recoverUnfinished(s.prisma, s.processor)).toBe(2);
    await s.processor.drain();
    const after = await s.prisma.inspection.findMany({ where: { id: { in: left.map((l) => l.id) } }, select: { status: true, regionCount: true } });
    expect(after.map((a) => a.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
  });

  it('logs one structured line per request and per inspection', () => {
    const requests = s.logger.entries.filter((e) => e.msg === 'request');
    expect(requests.length).toBeGreaterThan(5);
    expect(requests[0].fields).toMatchObject({ method: 'POST', path: '/graphql', status: 200 });
    const inspections = s.logger.entries.filter((e) => e.msg === 'inspection');
    expect(inspections.map((e) => e.fields.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
  });
  it('answers a submission and a reprocess that select only __typename, and processes both', async () => {
    const r = await s.upload(
      'mutation($input: SubmitInspectionInput!) { submitInspection(input: $input) { __typename ... on SubmitInspectionSuccess { inspection { __typename } } } }',
      { input: { productId, image: null, scoreMap: null } },
      await sampleFiles(syntheticSample({ width: 48, height: 48, seed: 77 })),
    );
    expect(r.errors).toBeUndefined();
    expect(r.data!.submitInspection).toEqual({ __typename: 'SubmitInspectionSuccess', inspection: { __typename: 'Inspection' } });
    await s.processor.drain();
    const row = await s.prisma.inspection.findFirstOrThrow({ orderBy: { createdAt: 'desc' }, select: { id: true, status: true } });
    expect(row.status).toBe('SUCCEEDED');
    const p = await s.gql('mutation($id: ID!) { reprocessInspection(id: $id) { __typename } }', { id: encodeGlobalID('Inspection', row.id) });
    expect(p.errors).toBeUndefined();
    expect(p.data!.reprocessInspection.__typename).toBe('ReprocessInspectionSuccess');
    await s.processor.drain();
    expect((await s.prisma.inspection.findUniqueOrThrow({ where: { id: row.id }, select: { status: true } })).status).toBe('SUCCEEDED');
  });

  it('filters inspections by externalId (exact), within the key\'s products', async () => {
    const other = await createProduct(s, 'bracket-b');
    const r = await s.upload(SUBMIT, { input: { productId: other, externalId: 'station-7/000123', image: null, scoreMap: null } }, await sampleFiles(sample));
    const otherId = r.data!.submitInspection.inspection.id;
    await s.upload(SUBMIT, { input: { productId, externalId: 'station-7/000124', image: null, scoreMap: null } }, await sampleFiles(sample));
    await s.processor.drain();
    const query = `query($f: InspectionFilter) { inspections(first: 10, filter: $f) { totalCount edges { node { id externalId } } } }`;
    const ids = async (client: { gql: typeof s.gql }, filter: Record<string, unknown>) => {
      const res = await client.gql(query, { f: filter });
      expect(res.errors).toBeUndefined();
      return res.data!.inspections.edges.map((e: { node: { id: string; externalId: string } }) => [e.node.id, e.node.externalId]).sort();
    };
    // Both products' parts with that serial number; neither the other serial nor a prefix matches.
    expect(await ids(s, { externalId: 'station-7/000123' })).toEqual([[inspectionId, 'station-7/000123'], [otherId, 'station-7/000123']].sort());
    expect(await ids(s, { externalId: 'station-7/000123', productId })).toEqual([[inspectionId, 'station-7/000123']]);
    expect(await ids(s, { externalId: 'station-7/00012' })).toEqual([]);
    // A key limited to the other product sees only its part.
    const viewer = await s.createKey('VIEWER', [decodeGlobalID(other).id]);
    expect(await ids(s.as(viewer.secret), { externalId: 'station-7/000123' })).toEqual([[otherId, 'station-7/000123']]);
  });
});
