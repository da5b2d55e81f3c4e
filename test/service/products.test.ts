// Products: creation with option overrides, nominal score maps -> calibration (recomputed from all maps
// on each addition), and the calibration's image-level gate at work on inspections.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calibrate, runCalibration, type CalibrationJson } from '../../src/core/calibration.ts';
import { imageGate } from '../../src/core/gate.ts';
import { defaultOptions } from '../../src/core/options.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, CREATE_PRODUCT, INSPECTION, SUBMIT, file, sampleFiles, scoreMapNpy, startService, type TestService } from './helpers.ts';

const ADD = `mutation($id: ID!, $maps: [File!]!) {
  addNominalSamples(productId: $id, scoreMaps: $maps) {
    __typename
    ... on AddNominalSamplesSuccess { product { id nominalScoreMapCount calibration { count globalMean globalStd maxScore imageScoreMean imageScoreStd imageScoreMax width height } } }
    ... on Error { code message }
  }
}`;

describe.each(BACKENDS)('products on %s', (backend) => {
  let s: TestService;
  let productId: string;
  const nominal = [1, 2, 3, 4, 5].map((seed) => syntheticSample({ width: 64, height: 48, seed: 100 + seed, defects: 0 }).scoreMap);

  beforeAll(async () => {
    s = await startService(backend);
  });
  afterAll(async () => s?.close());

  it('creates a product with normalized option overrides', async () => {
    const r = await s.gql(CREATE_PRODUCT, {
      input: { name: 'flange', line: 'L2', options: [{ key: 'features.sigmas', value: '1, 3' }, { key: 'classifier.balanced', value: 'false' }] },
    });
    const p = r.data!.createProduct.product;
    expect(p).toMatchObject({ name: 'flange', line: 'L2', nominalScoreMapCount: 0, calibration: null });
    expect(p.options).toEqual([
      { key: 'classifier.balanced', value: 'false' },
      { key: 'features.sigmas', value: '1,3' },
    ]);
    productId = p.id;
    const list = await s.gql(`{ products { name } product(id: "${productId}") { line } missing: product(id: "bogus") { name } }`);
    expect(list.data).toEqual({ products: [{ name: 'flange' }], product: { line: 'L2' }, missing: null });
  });

  it('calibrates from the nominal maps, recomputing from all of them on each addition', async () => {
    const first = await s.upload(ADD, { id: productId, maps: [null, null] }, { maps: nominal.slice(0, 2).map((m, k) => file(scoreMapNpy(m), `n${k}.npy`)) });
    expect(first.data!.addNominalSamples.product.calibration.count).toBe(2);
    const second = await s.upload(ADD, { id: productId, maps: [null, null, null] }, { maps: nominal.slice(2).map((m, k) => file(scoreMapNpy(m), `n${k + 2}.npy`)) });
    const got = second.data!.addNominalSamples.product;
    const expected = calibrate(nominal);
    expect(got.nominalScoreMapCount).toBe(5);
    expect(got.calibration).toMatchObject({ count: 5, width: 64, height: 48, maxScore: expected.maxScore, imageScoreMax: expected.imageScores.max });
    expect(got.calibration.globalMean).toBeCloseTo(expected.globalMean, 10);
    expect(got.calibration.globalStd).toBeCloseTo(expected.globalStd, 10);
    expect(got.calibration.imageScoreMean).toBeCloseTo(expected.imageScores.mean, 10);
    expect(got.calibration.imageScoreStd).toBeCloseTo(expected.imageScores.std, 10);
    // The stored per-pixel statistics are those of all five maps too.
    const stored = (await s.prisma.product.findUniqueOrThrow({ where: { id: decodeGlobalID(productId).id } })).calibration as unknown as CalibrationJson;
    const mean = new Float32Array(Uint8Array.from(atob(stored.pixelMean), (c) => c.charCodeAt(0)).buffer);
    expect(Array.from(mean)).toEqual(Array.from(expected.pixelMean));
  });

  it('gates inspections with the calibration: a quiet map stays NOMINAL without training, a defect is segmented', async () => {
    const quiet = syntheticSample({ width: 64, height: 48, seed: 77, defects: 0, noise: 0.05 });
    const defect = syntheticSample({ width: 64, height: 48, seed: 78, defects: 2 });
    const ids: string[] = [];
    for (const sample of [quiet, defect]) {
      const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(sample));
      ids.push(r.data!.submitInspection.inspection.id);
    }
    await s.processor.drain();
    // The default gate (above the mean nominal image score), in nominal standard deviations: the map is
    // normalized by the calibration's border profile first.
    const threshold = imageGate(0, runCalibration(calibrate(nominal), true).calibration, defaultOptions())!.threshold;
    const [q, d] = await Promise.all(ids.map(async (id) => (await s.gql(INSPECTION, { id })).data!.inspection));
    expect(q).toMatchObject({ status: 'SUCCEEDED', verdict: 'NOMINAL', regionCount: 0, pseudoLabels: null, classifierLoss: null, defectFraction: 0 });
    expect(q.gateThreshold).toBeCloseTo(threshold, 6);
    expect(q.emptyReason).toMatch(/image-level gate/);
    expect(d).toMatchObject({ status: 'SUCCEEDED', verdict: 'DEFECTIVE', emptyReason: null });
    expect(d.imageScore).toBeGreaterThan(threshold);
    expect(d.regions.length).toBeGreaterThan(0);
  });
});
