// submitInspection with a point cloud: stored with the other inputs, used by the processor (3-D features,
// holes kept out of the mask), reprocessed from storage; bad point clouds are typed errors storing nothing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confusion, pixelMetrics } from '../../src/core/metrics.ts';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { pointValidity } from '../../src/core/validity.ts';
import { encodeImagePng, encodeMaskPng } from '../../src/io/image.ts';
import { encodeNpy } from '../../src/io/npy.ts';
import { encodeFloatTiff } from '../../src/io/tiff.ts';
import { synthetic3dSample } from '../../src/synthetic3d.ts';
import { BACKENDS, INSPECTION, REPROCESS, SUBMIT, createProduct, file, readPng, rowCounts, scoreMapNpy, startService, type TestService } from './helpers.ts';

describe.each(BACKENDS)('point clouds on %s', (backend) => {
  let s: TestService;
  let productId: string;
  const sample = synthetic3dSample({ width: 96, height: 72, seed: 4, defects: 2 });
  const { width, height } = sample.image;

  beforeAll(async () => {
    s = await startService(backend);
    // Without the peak floor (mask.peakFraction), which trims any classifier's mask to the map's peaks: the
    // features' own masks are compared.
    productId = await createProduct(s, 'housing', [{ key: 'features.extractor', value: 'filterbank' }, { key: 'mask.peakFraction', value: '0' }]);
  });
  afterAll(async () => s?.close());

  async function files(cloud: Uint8Array, name: string) {
    return {
      'input.image': file(await encodeImagePng(sample.image), 'part.png'),
      'input.scoreMap': file(scoreMapNpy(sample.scoreMap), 'part-map.npy'),
      'input.pointCloud': file(cloud, name),
      'input.groundTruth': file(await encodeMaskPng(sample.groundTruth, width, height), 'part-gt.png'),
    };
  }

  it('stores the point cloud, segments with its 3-D features, never flags a hole; reprocessing reads it back', async () => {
    const tiff = encodeFloatTiff(sample.pointCloud.data, width, height, 3);
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null, pointCloud: null, groundTruth: null } }, await files(tiff, 'xyz.tiff'));
    expect(r.errors).toBeUndefined();
    expect(r.data!.submitInspection.__typename).toBe('SubmitInspectionSuccess');
    const id = r.data!.submitInspection.inspection.id;
    const stored = await s.prisma.inspectionBlob.findUnique({ where: { inspectionId_kind: { inspectionId: decodeGlobalID(id).id, kind: 'POINT_CLOUD' } } });
    expect(stored?.name).toBe('xyz.tiff');
    expect(Array.from(stored!.data)).toEqual(Array.from(tiff));

    await s.processor.drain();
    const i = (await s.gql(INSPECTION, { id })).data!.inspection;
    expect(i.status).toBe('SUCCEEDED');
    expect(i.verdict).toBe('DEFECTIVE');
    const png = await readPng(new Uint8Array(await (await s.get(new URL(i.maskUrl).pathname)).arrayBuffer()));
    const mask = png.pixels.map((v) => (v > 127 ? 1 : 0));
    const valid = pointValidity(sample.pointCloud);
    for (let k = 0; k < valid.length; k++) if (!valid[k]) expect(mask[k]).toBe(0);
    // The dents do not show in the image: only the 3-D features find them (RGB alone: F1 about 0.1).
    expect(i.metrics.f1).toBeCloseTo(pixelMetrics(confusion(mask, sample.groundTruth)).f1, 12);
    expect(i.metrics.f1).toBeGreaterThan(0.4);

    // Reprocessed with the image features only: the stored point cloud still masks the holes, and the F1 drops.
    const again = await s.gql(REPROCESS, { id, options: [{ key: 'features.modality', value: 'rgb' }] });
    expect(again.data!.reprocessInspection.__typename).toBe('ReprocessInspectionSuccess');
    await s.processor.drain();
    const rgb = (await s.gql(INSPECTION, { id })).data!.inspection;
    expect(rgb.status).toBe('SUCCEEDED');
    expect(rgb.metrics.f1).toBeLessThan(i.metrics.f1 - 0.2);
  });

  it('accepts .npy (H, W, 3)', async () => {
    const npy = encodeNpy(sample.pointCloud.data, [height, width, 3]);
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null, pointCloud: null, groundTruth: null } }, await files(npy, 'xyz.npy'));
    expect(r.data!.submitInspection.__typename).toBe('SubmitInspectionSuccess');
    await s.processor.drain();
    const i = (await s.gql(INSPECTION, { id: r.data!.submitInspection.inspection.id })).data!.inspection;
    expect(i.status).toBe('SUCCEEDED');
    expect(i.metrics.f1).toBeGreaterThan(0.4);
  });

  it('bad point clouds are typed errors and store nothing', async () => {
    const before = await rowCounts(s);
    const cases: [Uint8Array, string, string, RegExp][] = [
      [await encodeImagePng(sample.image), 'xyz.png', 'UnsupportedFormatError', /^pointCloud: xyz.png: the point cloud must be .npy or TIFF, but the file is PNG$/],
      [encodeNpy(new Float32Array(8 * 8 * 3).fill(1), [8, 8, 3]), 'sq.npy', 'SizeMismatchError', /^pointCloud: the point cloud \(8x8\) and the image \(96x72\) have different aspect ratios$/],
      [encodeNpy(new Float32Array(width * height * 3), [height, width, 3]), 'zeros.npy', 'InvalidInputError', /no valid point/],
      [encodeNpy(new Float32Array(width * height), [height, width]), 'hw.npy', 'InvalidInputError', /shape \(H, W, 3\)/],
    ];
    for (const [bytes, name, type, re] of cases) {
      const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null, pointCloud: null, groundTruth: null } }, await files(bytes, name));
      expect(r.data!.submitInspection.__typename, name).toBe(type);
      expect(r.data!.submitInspection.message).toMatch(re);
    }
    const none = await s.upload(
      SUBMIT,
      { input: { productId, image: null, scoreMap: null, options: [{ key: 'features.modality', value: '3d' }] } },
      { 'input.image': file(await encodeImagePng(sample.image), 'part.png'), 'input.scoreMap': file(scoreMapNpy(sample.scoreMap), 'm.npy') },
    );
    expect(none.data!.submitInspection.__typename).toBe('InvalidInputError');
    expect(none.data!.submitInspection.message).toBe('features.modality=3d needs a point cloud, and none was given');
    expect(await rowCounts(s)).toEqual(before);
  });
});
