// A product's option limits (issue 16, item 7): a station may only lower the cost options below the
// product's own values, unless an ADMIN set higher limits; requests over a limit are InvalidOptionError
// naming the option and the limit, at submission and at reprocess, and nothing is stored.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticSample } from '../../src/synthetic.ts';
import { BACKENDS, REPROCESS, SUBMIT, createProduct, rowCounts, sampleFiles, startService, type TestService } from './helpers.ts';

const SET_LIMITS = `mutation($productId: ID!, $limits: [OptionInput!]!) {
  setProductOptionLimits(productId: $productId, limits: $limits) {
    __typename
    ... on SetProductOptionLimitsSuccess { product { id optionLimits { key value } } }
    ... on Error { code message }
  }
}`;

describe.each(BACKENDS)('product option limits on %s', (backend) => {
  let s: TestService;
  let productId: string;
  let station: ReturnType<TestService['as']>;
  const sample = syntheticSample({ width: 40, height: 40, seed: 5 });
  const submit = async (options: { key: string; value: string }[]) =>
    (await station.upload(SUBMIT, { input: { productId, image: null, scoreMap: null, options } }, await sampleFiles(sample))).data!.submitInspection;

  beforeAll(async () => {
    s = await startService(backend);
    productId = await createProduct(s, 'valve', [{ key: 'features.extractor', value: 'filterbank' }, { key: 'classifier.epochs', value: '40' }]);
    station = s.as((await s.createKey('STATION')).secret);
  });
  afterAll(async () => s?.close());

  it("without limits, a station may only lower a cost option below the product's own value", async () => {
    const before = await rowCounts(s);
    for (const [key, value, message] of [
      ['classifier.epochs', '200', "option classifier.epochs: 200 asks for more processing than this product allows: at most 40, the product's own value (an ADMIN may raise it with setProductOptionLimits)"],
      ['classifier.tolerance', '0', "option classifier.tolerance: 0 asks for more processing than this product allows: at least 0.001, the product's own value (an ADMIN may raise it with setProductOptionLimits)"],
      ['pseudoLabels.nominalCount', '60000', "option pseudoLabels.nominalCount: 60000 asks for more processing than this product allows: at most 500, the product's own value (an ADMIN may raise it with setProductOptionLimits)"],
      ['features.sigmas', '1,2,4,8', "option features.sigmas: 4 (1, 2, 4, 8) asks for more processing than this product allows: at most this many values: 3 (1, 2, 4), the product's own value (an ADMIN may raise it with setProductOptionLimits)"],
    ] as const) {
      expect(await submit([{ key, value }]), key).toEqual({ __typename: 'InvalidOptionError', code: 'INVALID_OPTION', message });
    }
    expect(await rowCounts(s)).toEqual(before);
    expect((await submit([{ key: 'classifier.epochs', value: '10' }, { key: 'classifier.patience', value: '2' }])).__typename).toBe('SubmitInspectionSuccess');
  });

  it('an ADMIN raises the limits; a station may then ask up to them, not beyond; reprocess is held to them too', async () => {
    expect((await station.gql(SET_LIMITS, { productId, limits: [{ key: 'classifier.epochs', value: '100' }] })).errors?.[0]).toBeDefined();
    const set = await s.gql(SET_LIMITS, { productId, limits: [{ key: 'classifier.epochs', value: '100' }, { key: 'classifier.tolerance', value: '0.0001' }] });
    expect(set.data!.setProductOptionLimits.product.optionLimits).toEqual([
      { key: 'classifier.epochs', value: '100' },
      { key: 'classifier.tolerance', value: '0.0001' },
    ]);
    const ok = await submit([{ key: 'classifier.epochs', value: '100' }, { key: 'classifier.tolerance', value: '0.0001' }]);
    expect(ok.__typename).toBe('SubmitInspectionSuccess');
    expect(await submit([{ key: 'classifier.epochs', value: '101' }])).toMatchObject({
      __typename: 'InvalidOptionError',
      message: "option classifier.epochs: 101 asks for more processing than this product allows: at most 100, the product's limit",
    });
    // Options without a limit stay at the product's value.
    expect((await submit([{ key: 'classifier.patience', value: '6' }])).message).toMatch(/^option classifier\.patience: 6 .* at most 5, the product's own value/);

    await s.processor.drain();
    const again = await station.gql(REPROCESS, { id: ok.inspection.id, options: [{ key: 'classifier.epochs', value: '500' }] });
    expect(again.data!.reprocessInspection).toMatchObject({ __typename: 'InvalidOptionError', message: "option classifier.epochs: 500 asks for more processing than this product allows: at most 100, the product's limit" });
  });

  it('limits are for cost options only, and the product\'s own options must be within them', async () => {
    expect((await s.gql(SET_LIMITS, { productId, limits: [{ key: 'gate.mode', value: 'off' }] })).data!.setProductOptionLimits).toMatchObject({
      __typename: 'InvalidOptionError',
      message: expect.stringMatching(/^option gate\.mode has no limit: limits apply to the options that cost processing time \(classifier\.epochs, /),
    });
    expect((await s.gql(SET_LIMITS, { productId, limits: [{ key: 'classifier.epochs', value: '20' }] })).data!.setProductOptionLimits).toEqual({
      __typename: 'InvalidOptionError',
      code: 'INVALID_OPTION',
      message: "the product's own options exceed the new limits: option classifier.epochs: 40 asks for more processing than this product allows: at most 20",
    });
    // Cleared: back to the product's own values.
    expect((await s.gql(SET_LIMITS, { productId, limits: [] })).data!.setProductOptionLimits.product.optionLimits).toEqual([]);
    expect((await submit([{ key: 'classifier.epochs', value: '41' }])).__typename).toBe('InvalidOptionError');
  });
});
