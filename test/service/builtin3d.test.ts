// A BUILTIN product whose nominal images come with point clouds: its memory bank holds image and 3-D
// features, inspections submitted with their point cloud and no score map are scored with it (finding
// dents the image does not show), and the inputs the bank needs are typed errors when missing.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { decodeBank } from '../../src/core/patchcore/bank.ts';
import { PatchCoreScorer } from '../../src/core/patchcore/patchcore.ts';
import { decodeImage, encodeImagePng, encodeMaskPng } from '../../src/io/image.ts';
import { decodePointCloud } from '../../src/io/pointcloud.ts';
import { decodeScoreMap } from '../../src/io/scoremap.ts';
import { encodeFloatTiff } from '../../src/io/tiff.ts';
import { synthetic3dSample } from '../../src/synthetic3d.ts';
import { testGpu } from '../helpers/gpu.ts';
import { BACKENDS, CREATE_PRODUCT, INSPECTION, SUBMIT, file, rowCounts, startService, type TestService } from './helpers.ts';

const ADD = `mutation($id: ID!, $images: [File!], $clouds: [File!]) {
  addNominalSamples(productId: $id, images: $images, pointClouds: $clouds) {
    __typename
    ... on AddNominalSamplesSuccess { product { id nominalImageCount scorerBank { images channels modality layers } calibration { count } } }
    ... on Error { code message }
  }
}`;

const W = 96;
const H = 72;
const part = (seed: number, defects = 0) => synthetic3dSample({ width: W, height: H, seed, defects });
const tiff = (s: ReturnType<typeof part>) => encodeFloatTiff(s.pointCloud.data, W, H, 3);

describe.each(BACKENDS)('built-in scorer with point clouds on %s', (backend) => {
  let s: TestService;
  let gpu: Gpu;
  let productId: string;

  beforeAll(async () => {
    s = await startService(backend);
    gpu = await testGpu();
    const r = await s.gql(CREATE_PRODUCT, { input: { name: 'housing', scorer: 'BUILTIN', options: [{ key: 'features.extractor', value: 'filterbank' }] } });
    productId = r.data!.createProduct.product.id;
  });
  afterAll(async () => s?.close());

  const add = (images: File[], clouds: File[] | null) => s.upload(ADD, { id: productId, images: images.map(() => null), clouds: clouds?.map(() => null) ?? null }, { images, ...(clouds ? { clouds } : {}) });

  it('nominal images with point clouds build a bank of image and 3-D features; the wrong mix stores nothing', async () => {
    const nominal = [11, 12, 13, 14, 15].map((seed) => part(seed));
    const images = await Promise.all(nominal.map(async (n, k) => file(await encodeImagePng(n.image), `n${k}.png`)));
    const clouds = nominal.map((n, k) => file(tiff(n), `n${k}.tiff`));
    const before = await rowCounts(s);
    const short = await add(images, clouds.slice(0, 2));
    expect(short.data!.addNominalSamples).toMatchObject({ code: 'INVALID_INPUT', message: 'pointClouds: 2 point clouds for 5 images (one per image, in the same order, or none)' });
    expect(await rowCounts(s)).toEqual(before);

    const r = await add(images, clouds);
    expect(r.data!.addNominalSamples.__typename, JSON.stringify(r)).toBe('AddNominalSamplesSuccess');
    expect(r.data!.addNominalSamples.product).toMatchObject({ nominalImageCount: 5, scorerBank: { images: 5, channels: 165, modality: 'both' }, calibration: { count: 1 } });
    const row = await s.prisma.nominalImage.findFirstOrThrow({ where: { productId: decodeGlobalID(productId).id, position: 0 } });
    expect(row.pointCloudName).toBe('n0.tiff');

    // Once the product's images have point clouds, images without are refused (and the other way round).
    const more = await add([file(await encodeImagePng(part(16).image), 'n5.png')], null);
    expect(more.data!.addNominalSamples).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/^pointClouds: the product's nominal images come with point clouds/) });
  });

  it('submitInspection without a score map needs the point cloud, and with it finds the dents the image does not show', async () => {
    const sample = part(400, 2);
    const png = await encodeImagePng(sample.image);
    const cloud = tiff(sample);
    const missing = await s.upload(SUBMIT, { input: { productId, image: null } }, { 'input.image': file(png, 'part.png') });
    expect(missing.data!.submitInspection).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/^pointCloud is required: the product's built-in scorer holds image and 3-D features/) });

    const r = await s.upload(SUBMIT, { input: { productId, image: null, pointCloud: null, groundTruth: null } }, {
      'input.image': file(png, 'part.png'),
      'input.pointCloud': file(cloud, 'xyz.tiff'),
      'input.groundTruth': file(await encodeMaskPng(sample.groundTruth, W, H), 'gt.png'),
    });
    const id = r.data!.submitInspection.inspection.id;
    await s.processor.drain();
    const done = (await s.gql(INSPECTION.replace('scoreMapUrl', 'scoreMapUrl scoreSource'), { id })).data!.inspection;
    expect(done).toMatchObject({ status: 'SUCCEEDED', scoreSource: 'BUILTIN', verdict: 'DEFECTIVE', errorCode: null });
    // The stored map is the scorer's map of the image and its point cloud against the stored bank.
    const blob = await s.prisma.inspectionBlob.findUniqueOrThrow({ where: { inspectionId_kind: { inspectionId: decodeGlobalID(id).id, kind: 'SCORE_MAP' } } });
    const stored = await decodeScoreMap(blob.data, blob.name);
    const product = await s.prisma.product.findUniqueOrThrow({ where: { id: decodeGlobalID(productId).id }, select: { scorerBank: true } });
    const scorer = await PatchCoreScorer.load(gpu, decodeBank(product.scorerBank!));
    const want = (await scorer.score(await decodeImage(png, 'part.png'), decodePointCloud(cloud, 'xyz.tiff'))).anomalyMap;
    scorer.release();
    expect(Math.max(...stored.data.map((v, i) => Math.abs(v - want.data[i])))).toBeLessThan(1e-5);
    // Measured: F1 0.60 against the ground truth (an RGB-only bank sees nothing there: docs/eval.md).
    expect(done.metrics.f1).toBeGreaterThan(0.45);
  });
});
