// BUILTIN products: nominal images build the PatchCore memory bank and the held-out calibration; an
// inspection submitted without a score map is scored with that bank while processing; bad additions store
// nothing and keep the previous bank; concurrent additions are serialized.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { borderNormalize, calibrate, calibrationFromJson, runCalibration, type CalibrationJson } from '../../src/core/calibration.ts';
import { TttError } from '../../src/core/errors.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { auroc } from '../../src/core/patchcore/auroc.ts';
import { decodeBank } from '../../src/core/patchcore/bank.ts';
import { buildBank, PatchCoreScorer, PATCHCORE_DEFAULTS } from '../../src/core/patchcore/patchcore.ts';
import { builtinBankConfig } from '../../src/service/builtin.ts';

/** The service's bank settings in the tests (helpers.ts: SCORER_BACKBONE mobilenetv2; up to 40 images, no pre-selection). */
const BANK = builtinBankConfig('mobilenetv2', 6, false);
import type { ImageTensor, ScoreMap } from '../../src/core/types.ts';
import { decodeImage, encodeImagePng } from '../../src/io/image.ts';
import { decodeScoreMap } from '../../src/io/scoremap.ts';
import { COMPUTED_MAP_NAME } from '../../src/processing/job.ts';
import { heldOutPositions } from '../../src/service/builtin.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { testGpu } from '../helpers/gpu.ts';
import { BACKENDS, CREATE_PRODUCT, INSPECTION, REPROCESS, SUBMIT, file, readPng, rowCounts, scoreMapNpy, startService, type TestService } from './helpers.ts';

const ADD = `mutation($id: ID!, $images: [File!], $maps: [File!]) {
  addNominalSamples(productId: $id, images: $images, scoreMaps: $maps) {
    __typename
    ... on AddNominalSamplesSuccess {
      product {
        id scorer nominalImageCount nominalScoreMapCount
        scorerBank { images patches sourcePatches channels layers weights size stride coresetRatio }
        calibration { count globalMean globalStd maxScore imageScoreMean imageScoreStd imageScoreMax width height }
      }
    }
    ... on Error { code message }
  }
}`;

const W = 64;
const H = 48;
/** Patches per 64x48 image: working size 256x192 on an 8-pixel grid. */
const PATCHES_PER_IMAGE = (256 / 8) * (192 / 8);

const texture = (seed: number, defects = 0) => syntheticSample({ width: W, height: H, seed, defects });

describe('held-out positions', () => {
  it('every 5th image, the last of 2 to 4, none of a single one', () => {
    expect(heldOutPositions(0)).toEqual([]);
    expect(heldOutPositions(1)).toEqual([]);
    expect(heldOutPositions(2)).toEqual([1]);
    expect(heldOutPositions(4)).toEqual([3]);
    expect(heldOutPositions(5)).toEqual([4]);
    expect(heldOutPositions(6)).toEqual([4]);
    expect(heldOutPositions(10)).toEqual([4, 9]);
    expect(heldOutPositions(14)).toEqual([4, 9]);
  });
});

describe.each(BACKENDS)('built-in scorer on %s', (backend) => {
  let s: TestService;
  let gpu: Gpu;
  let productId: string;
  let externalId: string;
  let pngs: Uint8Array[];
  /** What the service decodes from the uploaded PNGs. */
  let images: ImageTensor[];

  const add = (id: string, files: { images?: File[]; maps?: File[] }) =>
    s.upload(ADD, { id, images: files.images?.map(() => null) ?? null, maps: files.maps?.map(() => null) ?? null }, files);
  const pngFiles = (from: number, to: number) => pngs.slice(from, to).map((b, k) => file(b, `nominal-${from + k}.png`));
  const productRow = () => s.prisma.product.findUniqueOrThrow({ where: { id: decodeGlobalID(productId).id }, select: { scorerBank: true, calibration: true, updatedAt: true } });
  /** The image score of a map at the image's size: its maximum, after the product calibration's border normalization. */
  const imageScoreOf = async (map: ScoreMap) => {
    const stored = (await productRow()).calibration;
    const { profile } = runCalibration(stored ? calibrationFromJson(stored as unknown as CalibrationJson) : null, true);
    expect(profile).not.toBeNull();
    return Math.max(...(profile ? borderNormalize(map, profile) : map.data));
  };

  beforeAll(async () => {
    s = await startService(backend);
    gpu = await testGpu();
    pngs = await Promise.all(Array.from({ length: 10 }, (_, k) => encodeImagePng(texture(200 + k).image)));
    images = await Promise.all(pngs.map((b, k) => decodeImage(b, `nominal-${k}.png`)));
    const builtin = await s.gql(CREATE_PRODUCT.replace('nominalScoreMapCount', 'nominalScoreMapCount scorer'), { input: { name: 'tile', scorer: 'BUILTIN' } });
    expect(builtin.data!.createProduct.product).toMatchObject({ name: 'tile', scorer: 'BUILTIN', calibration: null });
    productId = builtin.data!.createProduct.product.id;
    const external = await s.gql(CREATE_PRODUCT.replace('nominalScoreMapCount', 'nominalScoreMapCount scorer'), { input: { name: 'flange' } });
    expect(external.data!.createProduct.product.scorer).toBe('EXTERNAL');
    externalId = external.data!.createProduct.product.id;
  });
  afterAll(async () => s?.close());

  async function expectSubmitRejected(product: string, message: RegExp): Promise<void> {
    const before = await rowCounts(s);
    const r = await s.upload(SUBMIT, { input: { productId: product, image: null } }, { 'input.image': file(pngs[0], 'part.png') });
    expect(r.data!.submitInspection).toMatchObject({ __typename: 'InvalidInputError', code: 'INVALID_INPUT' });
    expect(r.data!.submitInspection.message).toMatch(message);
    expect(await rowCounts(s)).toEqual(before);
  }

  it('requires a score map while the product has no bank, and always for an EXTERNAL product', async () => {
    await expectSubmitRejected(productId, /scoreMap is required until the product's built-in scorer has a memory bank: add nominal images/);
    await expectSubmitRejected(externalId, /scoreMap is required: the product has no built-in scorer \(scorer EXTERNAL\)/);
  });

  it('builds the bank from all nominal images and calibrates on the held-out one', async () => {
    const r = await add(productId, { images: pngFiles(0, 6) });
    const p = r.data!.addNominalSamples.product;
    expect(p).toMatchObject({
      scorer: 'BUILTIN',
      nominalImageCount: 6,
      nominalScoreMapCount: 0,
      scorerBank: {
        images: 6,
        sourcePatches: 6 * PATCHES_PER_IMAGE,
        patches: Math.min(PATCHCORE_DEFAULTS.coresetRows, 6 * PATCHES_PER_IMAGE),
        channels: 152,
        layers: [...BANK.layers],
        size: 256,
        stride: 8,
        coresetRatio: PATCHCORE_DEFAULTS.coresetRatio,
      },
      calibration: { count: 1, width: W, height: H },
    });

    // The stored bank is buildBank() of the six images, in upload order.
    const stored = decodeBank((await productRow()).scorerBank!);
    const expected = await buildBank(gpu, images.slice(0, 6), BANK);
    expect(stored.header).toEqual(expected.header);
    expect(stored.features).toEqual(expected.features);

    // The calibration: image 4 (held out) scored against a bank of images 0-3 and 5.
    const calibrationBank = await buildBank(gpu, [0, 1, 2, 3, 5].map((k) => images[k]), BANK);
    const scorer = await PatchCoreScorer.load(gpu, calibrationBank);
    const heldOut = (await scorer.score(images[4])).anomalyMap;
    scorer.release();
    const want = calibrate([heldOut]);
    const got = calibrationFromJson((await productRow()).calibration as unknown as CalibrationJson);
    expect(got.count).toBe(1);
    expect(got.imageScores.max).toBeCloseTo(want.imageScores.max, 5);
    expect(got.globalMean).toBeCloseTo(want.globalMean, 5);
    expect(got.globalStd).toBeCloseTo(want.globalStd, 5);
    expect(Math.max(...got.pixelMean.map((v, i) => Math.abs(v - want.pixelMean[i])))).toBeLessThan(1e-5);
    // Scores of an unseen nominal image are positive distances, not the zeros of images in the bank.
    expect(got.imageScores.max).toBeGreaterThan(0);
    expect(p.calibration.imageScoreMax).toBeCloseTo(want.imageScores.max, 5);
  });

  it('scores an inspection submitted without a score map, and stores the computed map', async () => {
    const sample = texture(300, 2);
    const png = await encodeImagePng(sample.image);
    const r = await s.upload(SUBMIT, { input: { productId, image: null } }, { 'input.image': file(png, 'part.png') });
    const queued = r.data!.submitInspection.inspection;
    expect(queued).toMatchObject({ status: 'QUEUED', scoreMapUrl: null });
    await s.processor.drain();
    const done = (await s.gql(INSPECTION.replace('scoreMapUrl', 'scoreMapUrl scoreSource'), { id: queued.id })).data!.inspection;
    expect(done).toMatchObject({ status: 'SUCCEEDED', scoreSource: 'BUILTIN', width: W, height: H, errorCode: null });
    expect(done.stageMs.map((x: { stage: string }) => x.stage).slice(0, 2)).toEqual(['decode', 'score']);
    expect(done.verdict).toBe(done.regions.length > 0 ? 'DEFECTIVE' : 'NOMINAL');
    expect(done.regionCount).toBe(done.regions.length);

    // The stored map is the scorer's map of the image against the stored bank.
    const blob = await s.prisma.inspectionBlob.findUniqueOrThrow({ where: { inspectionId_kind: { inspectionId: decodeGlobalID(queued.id).id, kind: 'SCORE_MAP' } } });
    expect(blob.name).toBe(COMPUTED_MAP_NAME);
    const storedMap = await decodeScoreMap(blob.data, blob.name);
    const scorer = await PatchCoreScorer.load(gpu, decodeBank((await productRow()).scorerBank!));
    const want = (await scorer.score(await decodeImage(png, 'part.png'))).anomalyMap;
    scorer.release();
    expect([storedMap.width, storedMap.height]).toEqual([W, H]);
    expect(Math.max(...storedMap.data.map((v, i) => Math.abs(v - want.data[i])))).toBeLessThan(1e-5);
    expect(done.imageScore).toBeCloseTo(await imageScoreOf(want), 4);
    // The defects stand out in the computed map (pixel AUROC about 0.98 here).
    const inside = storedMap.data.filter((_, i) => sample.groundTruth[i] === 1);
    const outside = storedMap.data.filter((_, i) => sample.groundTruth[i] === 0);
    expect(auroc(inside, outside)).toBeGreaterThan(0.9);

    const heat = await s.get(new URL(done.scoreMapUrl).pathname);
    expect(heat.status).toBe(200);
    expect(await readPng(new Uint8Array(await heat.arrayBuffer()))).toMatchObject({ format: 'png', width: W, height: H });

    // A reprocess computes the map again (here with the same bank: the same map).
    const again = await s.gql(REPROCESS, { id: queued.id });
    expect(again.data!.reprocessInspection.inspection.status).toBe('QUEUED');
    expect((await s.gql(INSPECTION, { id: queued.id })).data!.inspection.scoreMapUrl).toBeNull();
    await s.processor.drain();
    const redone = (await s.gql(INSPECTION, { id: queued.id })).data!.inspection;
    expect(redone.status).toBe('SUCCEEDED');
    const reblob = await s.prisma.inspectionBlob.findUniqueOrThrow({ where: { inspectionId_kind: { inspectionId: decodeGlobalID(queued.id).id, kind: 'SCORE_MAP' } } });
    expect(Math.max(...(await decodeScoreMap(reblob.data, reblob.name)).data.map((v, i) => Math.abs(v - storedMap.data[i])))).toBeLessThan(1e-6);
  });

  it('uses an uploaded score map on a BUILTIN product as it is', async () => {
    const sample = texture(301, 2);
    const map = scoreMapNpy(sample.scoreMap);
    const r = await s.upload(
      SUBMIT,
      { input: { productId, image: null, scoreMap: null } },
      { 'input.image': file(await encodeImagePng(sample.image), 'part.png'), 'input.scoreMap': file(map, 'station.npy') },
    );
    const id = r.data!.submitInspection.inspection.id;
    await s.processor.drain();
    const done = (await s.gql(INSPECTION.replace('scoreMapUrl', 'scoreMapUrl scoreSource'), { id })).data!.inspection;
    expect(done).toMatchObject({ status: 'SUCCEEDED', scoreSource: 'UPLOADED' });
    expect(done.stageMs.map((x: { stage: string }) => x.stage)).not.toContain('score');
    expect(done.imageScore).toBeCloseTo(await imageScoreOf(sample.scoreMap), 4);
    const blob = await s.prisma.inspectionBlob.findUniqueOrThrow({ where: { inspectionId_kind: { inspectionId: decodeGlobalID(id).id, kind: 'SCORE_MAP' } } });
    expect(blob.name).toBe('station.npy');
    expect(new Uint8Array(blob.data)).toEqual(map);
  });

  it('bad nominal samples: typed errors, nothing stored, the bank and calibration kept', async () => {
    const before = await rowCounts(s);
    const row = await productRow();
    const other = await encodeImagePng(syntheticSample({ width: 48, height: 48, seed: 5, defects: 0 }).image);
    const cases: [string, { images?: File[]; maps?: File[] }, string, RegExp][] = [
      [productId, { images: [...pngFiles(6, 8), file('station 7 log line', 'notes.png')] }, 'UNSUPPORTED_FORMAT', /^images\[2\]: notes.png: /],
      [productId, { images: [file(other, 'square.png')] }, 'SIZE_MISMATCH', /images\[0\] square.png/],
      [productId, { maps: [file(scoreMapNpy(texture(1).scoreMap), 'n.npy')] }, 'INVALID_INPUT', /^scoreMaps: the product uses the built-in scorer \(scorer BUILTIN\).*add nominal images \(images\) instead/],
      [productId, { images: pngFiles(6, 7), maps: [file(scoreMapNpy(texture(1).scoreMap), 'n.npy')] }, 'INVALID_INPUT', /^scoreMaps: the product uses the built-in scorer/],
      [productId, { images: [] }, 'INVALID_INPUT', /^images: at least one nominal image is needed/],
      [productId, {}, 'INVALID_INPUT', /^images: at least one nominal image is needed/],
      [externalId, { images: pngFiles(6, 7) }, 'INVALID_INPUT', /^images: the product is scored by an external detector \(scorer EXTERNAL\).*\(scoreMaps\) instead/],
      [externalId, {}, 'INVALID_INPUT', /^scoreMaps: at least one nominal score map is needed/],
    ];
    for (const [id, files, code, message] of cases) {
      const r = await add(id, files);
      expect(r.data!.addNominalSamples, JSON.stringify(message.source)).toMatchObject({ code });
      expect(r.data!.addNominalSamples.message).toMatch(message);
    }
    expect(await rowCounts(s)).toEqual(before);
    const after = await productRow();
    expect(after.scorerBank).toEqual(row.scorerBank);
    expect(after.calibration).toEqual(row.calibration);
    expect(after.updatedAt).toEqual(row.updatedAt);
  });

  it('a second addition rebuilds from all images: the bank grows, image 9 joins the held-out ones', async () => {
    const r = await add(productId, { images: pngFiles(6, 10) });
    expect(r.data!.addNominalSamples.product).toMatchObject({
      nominalImageCount: 10,
      scorerBank: { images: 10, sourcePatches: 10 * PATCHES_PER_IMAGE },
      calibration: { count: 2 },
    });
    // Inspections now score with the new bank (the processor's loaded scorer is replaced).
    const png = await encodeImagePng(texture(302, 1).image);
    const r2 = await s.upload(SUBMIT, { input: { productId, image: null } }, { 'input.image': file(png, 'part.png') });
    await s.processor.drain();
    const inspectionId = decodeGlobalID(r2.data!.submitInspection.inspection.id).id;
    expect((await s.prisma.inspection.findUniqueOrThrow({ where: { id: inspectionId } })).status).toBe('SUCCEEDED');
    const blob = await s.prisma.inspectionBlob.findUniqueOrThrow({ where: { inspectionId_kind: { inspectionId, kind: 'SCORE_MAP' } } });
    const scorer = await PatchCoreScorer.load(gpu, decodeBank((await productRow()).scorerBank!));
    expect(scorer.header.images).toBe(10);
    const want = (await scorer.score(await decodeImage(png, 'part.png'))).anomalyMap;
    scorer.release();
    const got = await decodeScoreMap(blob.data, blob.name);
    expect(Math.max(...got.data.map((v, i) => Math.abs(v - want.data[i])))).toBeLessThan(1e-5);
  });

  it('serializes concurrent additions; a single image gives a bank but no calibration', async () => {
    const created = await s.gql(CREATE_PRODUCT, { input: { name: 'lone', scorer: 'BUILTIN' } });
    const id = created.data!.createProduct.product.id;
    const results = await Promise.all([add(id, { images: pngFiles(0, 1) }), add(id, { images: pngFiles(1, 2) })]);
    // One ran after the other (in either order): the second saw the first one's image.
    const products = results.map((r) => r.data!.addNominalSamples.product).sort((a, b) => a.nominalImageCount - b.nominalImageCount);
    expect(products[0]).toMatchObject({ nominalImageCount: 1, scorerBank: { images: 1, sourcePatches: PATCHES_PER_IMAGE }, calibration: null });
    expect(products[1]).toMatchObject({ nominalImageCount: 2, scorerBank: { images: 2, sourcePatches: 2 * PATCHES_PER_IMAGE }, calibration: { count: 1 } });
    const stored = await s.prisma.nominalImage.findMany({ where: { productId: decodeGlobalID(id).id }, orderBy: { position: 'asc' }, select: { position: true, name: true } });
    expect(stored.map((p) => p.position)).toEqual([0, 1]);
    expect(stored.map((p) => p.name).sort()).toEqual(['nominal-0.png', 'nominal-1.png']);
    // Serialized in this process: neither rebuild was superseded by the other.
    expect(s.logger.entries.filter((e) => e.msg === 'scorer bank' && e.level === 'warn')).toEqual([]);
  });

  it('rebuilds again when another process adds images during a rebuild', async () => {
    const created = await s.gql(CREATE_PRODUCT, { input: { name: 'shared', scorer: 'BUILTIN' } });
    const id = created.data!.createProduct.product.id;
    const local = decodeGlobalID(id).id;
    // Another service process stores its image while this one builds (after it read the stored images).
    const withGpu = s.processor.withGpu;
    let injected = false;
    s.processor.withGpu = async (fn) => {
      if (!injected) {
        injected = true;
        await s.prisma.nominalImage.create({ data: { productId: local, position: 0, name: 'elsewhere.png', width: W, height: H, channels: 1, data: pngs[2] as Uint8Array<ArrayBuffer> } });
      }
      return withGpu(fn);
    };
    try {
      const r = await add(id, { images: pngFiles(3, 4) });
      expect(r.data!.addNominalSamples.product).toMatchObject({ nominalImageCount: 2, scorerBank: { images: 2 }, calibration: { count: 1 } });
    } finally {
      s.processor.withGpu = withGpu;
    }
    const stored = await s.prisma.nominalImage.findMany({ where: { productId: local }, orderBy: { position: 'asc' }, select: { name: true } });
    expect(stored.map((p) => p.name)).toEqual(['elsewhere.png', 'nominal-3.png']);
    const superseded = s.logger.entries.filter((e) => e.msg === 'scorer bank' && e.fields.product === local);
    expect(superseded.map((e) => e.level)).toEqual(['warn', 'info']);
    // The bank is that of both images, in position order.
    expect(decodeBank((await s.prisma.product.findUniqueOrThrow({ where: { id: local } })).scorerBank!).features).toEqual(
      (await buildBank(gpu, [images[2], images[3]], BANK)).features,
    );
  });

  it('a rebuild that fails leaves the stored images, bank and calibration as they were', async () => {
    const created = await s.gql(CREATE_PRODUCT, { input: { name: 'fragile', scorer: 'BUILTIN' } });
    const id = created.data!.createProduct.product.id;
    const local = decodeGlobalID(id).id;
    await add(id, { images: pngFiles(0, 2) });
    const row = await s.prisma.product.findUniqueOrThrow({ where: { id: local }, select: { scorerBank: true, calibration: true, updatedAt: true } });
    const before = await rowCounts(s);
    // The device is lost while the full bank is built (after the calibration bank and maps).
    const withGpu = s.processor.withGpu;
    let calls = 0;
    s.processor.withGpu = async (fn) => {
      if (++calls === 3) throw new TttError('DEVICE_LOST', 'the GPU device was lost (test)');
      return withGpu(fn);
    };
    try {
      const r = await add(id, { images: pngFiles(2, 3) });
      expect(r.errors?.[0].message).toBe('Unexpected error.');
    } finally {
      s.processor.withGpu = withGpu;
    }
    expect(calls).toBe(3);
    expect(await rowCounts(s)).toEqual(before);
    expect(await s.prisma.product.findUniqueOrThrow({ where: { id: local }, select: { scorerBank: true, calibration: true, updatedAt: true } })).toEqual(row);
  });
});
