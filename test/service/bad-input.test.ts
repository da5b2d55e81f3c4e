// Every rejected input gives a typed error naming the problem and stores nothing.

import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMaskPng } from '../../src/io/image.ts';
import { encodeNpy } from '../../src/io/npy.ts';
import { syntheticFeatures, syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, CREATE_PRODUCT, REPROCESS, SUBMIT, createProduct, file, imagePng, rowCounts, sampleFiles, scoreMapNpy, startService, type TestService } from './helpers.ts';

const LIMIT = 64 * 1024;

describe.each(BACKENDS)('bad input on %s', (backend) => {
  let s: TestService;
  let productId: string;
  const sample = syntheticSample({ width: 64, height: 48, seed: 3 });
  let good: Record<string, File>;

  beforeAll(async () => {
    s = await startService(backend, { config: { maxUploadBytes: LIMIT } });
    productId = await createProduct(s, 'hinge');
    good = await sampleFiles(sample);
  });
  afterAll(async () => s?.close());

  async function expectRejected(
    variables: Record<string, unknown>,
    files: Record<string, File>,
    typename: string,
    code: string,
    message: RegExp,
  ): Promise<void> {
    const before = await rowCounts(s);
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null, ...variables } }, files);
    expect(r.errors).toBeUndefined();
    expect(r.data!.submitInspection).toMatchObject({ __typename: typename, code });
    expect(r.data!.submitInspection.message).toMatch(message);
    await s.processor.drain();
    expect(await rowCounts(s)).toEqual(before);
  }

  const map = (data: Float32Array, w: number, h: number) => file(encodeNpy(data, [h, w]), 'map.npy');

  it('unknown and malformed product ids: NOT_FOUND', async () => {
    const unknown = encodeGlobalID('Product', '0190f000-0000-7000-8000-000000000000');
    await expectRejected({ productId: unknown }, good, 'NotFoundError', 'NOT_FOUND', /no Product with id/);
    await expectRejected({ productId: 'not-an-id' }, good, 'NotFoundError', 'NOT_FOUND', /is not the id of a Product/);
    const inspectionKind = encodeGlobalID('Inspection', '0190f000-0000-7000-8000-000000000000');
    await expectRejected({ productId: inspectionKind }, good, 'NotFoundError', 'NOT_FOUND', /is not the id of a Product/);
  });

  it('an image that is not an image: UNSUPPORTED_FORMAT', async () => {
    await expectRejected({}, { ...good, 'input.image': file('station 7 log line, not a picture', 'part.png') }, 'UnsupportedFormatError', 'UNSUPPORTED_FORMAT', /image: part.png: the image must be PNG, JPEG or TIFF/);
  });

  it('a score map that is not a map: UNSUPPORTED_FORMAT', async () => {
    await expectRejected({}, { ...good, 'input.scoreMap': file('{"map": []}', 'map.json') }, 'UnsupportedFormatError', 'UNSUPPORTED_FORMAT', /scoreMap: map.json/);
  });

  it('a score map of another aspect ratio: SIZE_MISMATCH', async () => {
    await expectRejected({}, { ...good, 'input.scoreMap': map(new Float32Array(30 * 30).map((_, i) => i), 30, 30) }, 'SizeMismatchError', 'SIZE_MISMATCH', /score map \(30x30\) and the image \(64x48\) have different aspect ratios/);
  });

  it('a score map with NaN: NON_FINITE', async () => {
    const data = Float32Array.from(sample.scoreMap.data);
    data[5 * 64 + 7] = NaN;
    await expectRejected({}, { ...good, 'input.scoreMap': map(data, 64, 48) }, 'NonFiniteError', 'NON_FINITE', /score map contains NaN at row 5, column 7/);
  });

  it('a constant score map: CONSTANT_MAP', async () => {
    await expectRejected({}, { ...good, 'input.scoreMap': map(new Float32Array(64 * 48).fill(0.5), 64, 48) }, 'ConstantMapError', 'CONSTANT_MAP', /constant/);
  });

  it('feature maps of another aspect ratio, and a ground truth of another size: SIZE_MISMATCH', async () => {
    const f = syntheticFeatures(syntheticSample({ width: 64, height: 64, seed: 1 }), 4, 4);
    await expectRejected({}, { ...good, 'input.features': file(encodeNpy(f.data, [4, f.height, f.width]), 'f.npy') }, 'SizeMismatchError', 'SIZE_MISMATCH', /feature maps \(16x16\) and the image \(64x48\) have different aspect ratios/);
    const gt = await encodeMaskPng(new Uint8Array(32 * 32), 32, 32);
    await expectRejected({}, { ...good, 'input.groundTruth': file(gt, 'gt.png') }, 'SizeMismatchError', 'SIZE_MISMATCH', /gt.png: the mask is 32x32 but the image is 64x48/);
  });

  it('uploads over the configured limit: TOO_LARGE, before anything is decoded', async () => {
    const big = new Uint8Array(LIMIT + 1);
    await expectRejected({}, { ...good, 'input.scoreMap': file(big, 'huge.npy') }, 'TooLargeError', 'TOO_LARGE', new RegExp(`scoreMap "huge.npy" is ${LIMIT + 1} bytes, over the limit of ${LIMIT} bytes`));
    await expectRejected({}, { ...good, 'input.image': file(big, 'huge.png') }, 'TooLargeError', 'TOO_LARGE', /image "huge.png"/);
  });

  it('a request body over the transport limit: HTTP 413 before parsing', async () => {
    const before = await rowCounts(s);
    const body = 'x'.repeat(s.app.config.maxRequestBytes + 1);
    expect(s.app.config.maxRequestBytes).toBeGreaterThan(5 * LIMIT);
    const res = await s.yoga.fetch('http://ttt.test/graphql', { method: 'POST', body, headers: { ...s.headers, 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(body.length) } });
    expect(res.status).toBe(413);
    expect((await res.json()).errors[0].extensions.code).toBe('TOO_LARGE');
    expect(await rowCounts(s)).toEqual(before);
  });

  it('a missing score map, and supplied features asked for but not given: INVALID_INPUT', async () => {
    const { 'input.scoreMap': _, ...noMap } = good;
    await expectRejected({}, noMap, 'InvalidInputError', 'INVALID_INPUT', /scoreMap is required: the product has no built-in scorer/);
    await expectRejected({ options: [{ key: 'features.extractor', value: 'supplied' }] }, good, 'InvalidInputError', 'INVALID_INPUT', /no feature maps were given/);
  });

  it('unknown, out-of-range and repeated options: INVALID_OPTION', async () => {
    await expectRejected({ options: [{ key: 'classifier.speed', value: '3' }] }, good, 'InvalidOptionError', 'INVALID_OPTION', /option classifier.speed: unknown option/);
    await expectRejected({ options: [{ key: 'classifier.epochs', value: '0' }] }, good, 'InvalidOptionError', 'INVALID_OPTION', /0 is outside \[1, 10000\]/);
    await expectRejected(
      { options: [{ key: 'seed', value: '1' }, { key: 'seed', value: '2' }] },
      good,
      'InvalidOptionError',
      'INVALID_OPTION',
      /option seed is given twice/,
    );
  });

  it('bad products and nominal samples: typed errors, nothing stored', async () => {
    const before = await rowCounts(s);
    const dup = await s.gql(CREATE_PRODUCT, { input: { name: 'hinge' } });
    expect(dup.data!.createProduct).toMatchObject({ __typename: 'InvalidInputError', message: 'a product named "hinge" already exists' });
    const badOption = await s.gql(CREATE_PRODUCT, { input: { name: 'x', options: [{ key: 'gate.mode', value: 'sometimes' }] } });
    expect(badOption.data!.createProduct).toMatchObject({ __typename: 'InvalidOptionError', code: 'INVALID_OPTION' });
    const ADD = `mutation($id: ID!, $maps: [File!]!) { addNominalSamples(productId: $id, scoreMaps: $maps) { __typename ... on Error { code message } } }`;
    const nan = Float32Array.from(sample.scoreMap.data);
    nan[0] = Infinity;
    const cases: [string, File[], string][] = [
      [productId, [file(scoreMapNpy(sample.scoreMap), 'ok.npy'), map(nan, 64, 48)], 'NON_FINITE'],
      [productId, [file(scoreMapNpy(sample.scoreMap), 'ok.npy'), file(await imagePng(sample), 'ok.png'), file('text', 'notes.txt')], 'UNSUPPORTED_FORMAT'],
      [productId, [file(scoreMapNpy(sample.scoreMap), 'ok.npy'), map(new Float32Array(100).fill(1), 10, 10)], 'SIZE_MISMATCH'],
      [productId, [file(new Uint8Array(LIMIT + 1), 'big.npy')], 'TOO_LARGE'],
      [encodeGlobalID('Product', '0190f000-0000-7000-8000-000000000000'), [file(scoreMapNpy(sample.scoreMap), 'ok.npy')], 'NOT_FOUND'],
    ];
    for (const [id, maps, code] of cases) {
      const r = await s.upload(ADD, { id, maps: maps.map(() => null) }, { maps });
      expect(r.data!.addNominalSamples.code).toBe(code);
    }
    expect(await rowCounts(s)).toEqual(before);
    expect((await s.prisma.product.findFirstOrThrow({ where: { name: 'hinge' } })).calibration).toBeNull();
  });

  it('reprocessing or deleting an unknown inspection: NOT_FOUND; reprocessing a queued one: INVALID_INPUT', async () => {
    const unknown = encodeGlobalID('Inspection', '0190f000-0000-7000-8000-000000000000');
    expect((await s.gql(REPROCESS, { id: unknown })).data!.reprocessInspection.code).toBe('NOT_FOUND');
    const del = await s.gql(`mutation($id: ID!) { deleteInspection(id: $id) { ... on Error { code message } } }`, { id: 'garbage' });
    expect(del.data!.deleteInspection.code).toBe('NOT_FOUND');
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, good);
    const id = r.data!.submitInspection.inspection.id;
    const early = await s.gql(REPROCESS, { id });
    expect(early.data!.reprocessInspection.code).toBe('INVALID_INPUT');
    expect(early.data!.reprocessInspection.message).toMatch(/is (QUEUED|RUNNING): only a SUCCEEDED or FAILED inspection can be reprocessed/);
    await s.processor.drain();
  });

  it('keeps the code and message of expected errors outside the typed results', async () => {
    const stats = await s.gql(`{ inspectionStats(from: "2025-01-02T00:00:00Z", to: "2025-01-01T00:00:00Z") { totals { total } } }`);
    expect(stats.errors![0]).toMatchObject({ message: expect.stringMatching(/must be after/), extensions: { code: 'INVALID_INPUT' } });
    expect(stats.errors![0]).toMatchObject({ path: ['inspectionStats'] });
    const date = await s.gql(`query($from: DateTime!) { inspectionStats(from: $from, to: "2025-01-01T00:00:00Z") { totals { total } } }`, { from: 'last tuesday' });
    expect(date.errors![0].message).toMatch(/DateTime: expected an ISO 8601 date-time string, got "last tuesday"/);
    expect(s.logger.entries.filter((e) => e.msg === 'unexpected error')).toEqual([]);
  });
});

describe.each(BACKENDS)('unexpected errors on %s', (backend) => {
  it('are masked in the response and logged with their details', async () => {
    const s = await startService(backend);
    try {
      // The database goes away under the running app: every query now fails in an unforeseen way.
      await s.database.db.close();
      const r = await s.gql(`{ products { name } }`);
      expect(r.errors).toHaveLength(1);
      expect(r.errors![0].message).toBe('Unexpected error.');
      const logged = s.logger.entries.find((e) => e.msg === 'unexpected error');
      expect(logged?.level).toBe('error');
      expect(String((logged?.fields.error as Error).message)).not.toBe('');
    } finally {
      await s.processor.close();
      await s.database.close();
    }
  });
});
