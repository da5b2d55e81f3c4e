// The built-in PatchCore scorer: kNN and greedy coreset on the GPU against their plain-TS references, the bank
// file format, score maps, AUROC, and the `ttt bank build` / `ttt score` commands on synthetic images.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { command as bankCommand } from '../../src/cli/bank.ts';
import { command as scoreCommand } from '../../src/cli/score.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { auroc } from '../../src/core/patchcore/auroc.ts';
import { BACKBONE_LAYERS, BANK_VERSION, decodeBank, encodeBank, type MemoryBank } from '../../src/core/patchcore/bank.ts';
import { greedyCoreset } from '../../src/core/patchcore/coreset.ts';
import { nearestDistances, uploadBank, releaseBank } from '../../src/core/patchcore/knn.ts';
import { bankFromRows, bankRows, buildBank, patchFeatures, PatchCoreScorer, PATCHCORE_DEFAULTS, scorerLayers, smoothingSigma } from '../../src/core/patchcore/patchcore.ts';
import { mobileNetGraph } from '../../src/core/features/mobilenet/registry.ts';
import { coveringRadius, referenceCoreset, referenceNearest, referenceScoreMap } from '../../src/core/reference/patchcore.ts';
import { pcgHash } from '../../src/core/rng.ts';
import type { ImageTensor } from '../../src/core/types.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { segment } from '../../src/core/pipeline.ts';
import { registerResnet50 } from '../../src/models/resnet50.ts';
import { testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
  registerMobileNet();
  registerResnet50();
});

/** The fast backbone for the tests of the scorer's own stages (the default, resnet50, in the CLI test). */
const MOBILENET = { backbone: 'mobilenetv2', layers: ['block_2_add', 'block_5_add', 'block_12_add'], coresetRows: 0 } as const;

const uniform = (n: number, seed: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => (pcgHash((i * 2654435761 + seed) >>> 0) / 4294967296) * scale);

/** A nominal texture (oriented stripes with noise); `defect` darkens a disc. */
function texture(width: number, height: number, seed: number, defect?: { x: number; y: number; r: number }): ImageTensor {
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 0.5 + 0.2 * Math.sin(x * 0.9 + y * 0.15 + seed) + 0.1 * (pcgHash((y * width + x + seed * 7919) >>> 0) / 4294967296 - 0.5);
      if (defect && (x - defect.x) ** 2 + (y - defect.y) ** 2 <= defect.r ** 2) v = 0.05;
      data[y * width + x] = v;
    }
  }
  return { data, width, height, channels: 1 };
}

describe('nearest bank patch (GPU) against the reference', () => {
  it('finds the exact nearest entry over a bank split across buffers, queries not a multiple of 4', async () => {
    const channels = 20;
    const size = 3000;
    const nq = 37;
    const bank = uniform(size * channels, 1, 3);
    const stride = 40;
    const queries = uniform(channels * stride, 2, 3);
    const gb = uploadBank(gpu, bank, channels, 1024);
    expect(gb.parts.map((p) => [p.base, p.count, p.nb])).toEqual([[0, 1024, 1024], [1024, 1024, 1024], [2048, 952, 952]]);
    const q = gpu.upload(queries);
    const { distance, index } = nearestDistances(gpu, gb, q, nq);
    const d = await gpu.readF32(distance, nq);
    const ix = await gpu.readU32(index, nq);
    gpu.release(q, distance, index);
    releaseBank(gpu, gb);
    const ref = referenceNearest(bank, channels, queries, nq, stride);
    for (let i = 0; i < nq; i++) {
      // The winner's distance is recomputed exactly in f32: 1e-5 relative to the f64 reference.
      expect(Math.abs(d[i] - ref.distance[i]) / ref.distance[i]).toBeLessThan(1e-5);
    }
    expect(Array.from(ix)).toEqual(Array.from(ref.index));
  });

  it('distance zero for a query that is in the bank', async () => {
    const channels = 8;
    const bank = uniform(100 * channels, 3);
    const queries = new Float32Array(channels * 4);
    for (let k = 0; k < channels; k++) queries[k * 4] = bank[42 * channels + k];
    const gb = uploadBank(gpu, bank, channels);
    const q = gpu.upload(queries);
    const { distance, index } = nearestDistances(gpu, gb, q, 1);
    expect((await gpu.readU32(index, 1))[0]).toBe(42);
    expect((await gpu.readF32(distance, 1))[0]).toBe(0);
    gpu.release(q, distance, index);
    releaseBank(gpu, gb);
  });
});

describe('greedy coreset (GPU) against the reference', () => {
  it('selects exactly what the reference selects, also with the points split across buffers', async () => {
    const channels = 12;
    const points = uniform(700 * channels, 4);
    const want = referenceCoreset(points, channels, 60, 128, 5);
    const whole = await greedyCoreset(gpu, points, channels, 60, { projectionDims: 128, seed: 5 });
    const split = await greedyCoreset(gpu, points, channels, 60, { projectionDims: 128, seed: 5, pointsPerBuffer: 256 });
    expect(Array.from(whole)).toEqual(Array.from(want));
    expect(Array.from(split)).toEqual(Array.from(want));
    expect(new Set(whole).size).toBe(60);
  });

  it('projects wide patches to 128 dimensions and still covers the points as the reference does', async () => {
    const channels = 140;
    const points = uniform(400 * channels, 6);
    const got = await greedyCoreset(gpu, points, channels, 40, { projectionDims: 128, seed: 1 });
    const want = referenceCoreset(points, channels, 40, 128, 1);
    // The projection sums in another order on the GPU: selections may part at a near-tie, so compare the
    // start and the covering radius in the original space (within 1%).
    expect(got.slice(0, 5)).toEqual(want.slice(0, 5));
    const rg = coveringRadius(points, channels, got);
    const rw = coveringRadius(points, channels, want);
    expect(Math.abs(rg - rw) / rw).toBeLessThan(0.01);
  });

  it('covers the points better than a random subset of the same size', async () => {
    const channels = 6;
    // Clustered points: 12 tight clusters; the greedy coreset of 12 takes one point from each.
    const centers = uniform(12 * channels, 9, 10);
    const points = new Float32Array(600 * channels);
    for (let i = 0; i < 600; i++) for (let k = 0; k < channels; k++) points[i * channels + k] = centers[(i % 12) * channels + k] + 0.05 * uniform(1, i * channels + k)[0];
    const got = await greedyCoreset(gpu, points, channels, 12, { projectionDims: 128, seed: 2 });
    expect(new Set(Array.from(got, (i) => i % 12)).size).toBe(12);
    const random = Array.from({ length: 12 }, (_, i) => pcgHash(i + 100) % 600); // misses some clusters
    expect(coveringRadius(points, channels, got)).toBeLessThan(0.5 * coveringRadius(points, channels, random));
    expect(Array.from(await greedyCoreset(gpu, points, channels, 600, { projectionDims: 128, seed: 2 }))).toEqual(Array.from({ length: 600 }, (_, i) => i));
  });
});

describe('memory bank file', () => {
  const bank: MemoryBank = {
    header: {
      ...PATCHCORE_DEFAULTS, version: BANK_VERSION, backbone: 'mobilenetv2', weights: 'test', layers: ['block_2_add'],
      patches: 3, channels: 2, images: 1, sourcePatches: 30,
      geometryScales: [], rgbChannels: 2, geometryChannels: 0, normalization: null,
    },
    features: Float32Array.from([1, 2, 3, 4.5, -5, 6]),
  };

  it('round-trips', () => {
    const bytes = encodeBank(bank);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('TTTBANK1');
    expect((bytes.length - 12) % 4).toBe(0);
    const back = decodeBank(bytes);
    expect(back.header).toEqual(bank.header);
    expect(back.features).toEqual(bank.features);
  });

  it('rejects truncated, corrupt and foreign files with a typed error', () => {
    const bytes = encodeBank(bank);
    const headerLength = new DataView(bytes.buffer).getUint32(8, true);
    expect(() => decodeBank(bytes.subarray(0, bytes.length - 4), 'b.bin')).toThrow(/b.bin: corrupt memory bank: truncated: 3 patches x 2 channels need 24 bytes/);
    expect(() => decodeBank(Uint8Array.from([...bytes, 0, 0, 0, 0]), 'b.bin')).toThrow(/trailing data/);
    expect(() => decodeBank(new TextEncoder().encode('PNG not a bank'), 'b.bin')).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_FORMAT' }));
    const badJson = bytes.slice();
    badJson[12] = 0x5b; // '[' instead of '{'
    expect(() => decodeBank(badJson, 'b.bin')).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    const huge = bytes.slice();
    new DataView(huge.buffer).setUint32(8, 1e9, true);
    expect(() => decodeBank(huge, 'b.bin')).toThrow(/header length 1000000000 does not fit/);
    const nan = bytes.slice();
    new DataView(nan.buffer).setFloat32(12 + headerLength + 8, NaN, true);
    expect(() => decodeBank(nan, 'b.bin')).toThrow(/patch 1 holds NaN/);
    const future = bytes.slice();
    const at = new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)).indexOf('"version":3');
    future.set(new TextEncoder().encode('"version":9'), 12 + at);
    expect(() => decodeBank(future, 'b.bin')).toThrow(/memory bank version 9 \(this build reads versions 1, 2 and 3\)/);
    const noLayers = encodeBank({ ...bank, header: { ...bank.header, layers: [] } });
    expect(() => decodeBank(noLayers, 'b.bin')).toThrow(/lists no layers/);
  });
});

describe('backbone default layers and old bank files', () => {
  it('each backbone declares its default layers; the scorer and the CLI take them from the bank\'s backbone', () => {
    expect(scorerLayers('resnet50')).toEqual(['stage2', 'stage3']);
    expect(scorerLayers('mobilenetv2')).toEqual(['block_2_add', 'block_5_add', 'block_12_add']);
    expect(PATCHCORE_DEFAULTS.layers).toEqual(BACKBONE_LAYERS[PATCHCORE_DEFAULTS.backbone]);
    expect(() => scorerLayers('vgg16' as never)).toThrow(/backbone "vgg16" \(expected mobilenetv2 or resnet50\)/);
  });

  it('a version 2 file of an old build (extractor mobilenetv2, its default layers) loads and scores as the same bank written today', async () => {
    const patches = 24;
    const values = uniform(patches * 152, 77, 2);
    // As an old build wrote it: `extractor`, no backbone, coreset rows or pre-selection share (weights: a
    // layers model's path, which the weights check leaves alone).
    const header = {
      version: 2, extractor: 'mobilenetv2', modality: 'rgb', weights: '/models/mobilenet_v2/model.json', layers: ['block_2_add', 'block_5_add', 'block_12_add'], geometryScales: [],
      rgbChannels: 152, geometryChannels: 0, normalization: null, size: 64, stride: 8, patches, channels: 152, coresetRatio: 0.1,
      projectionDims: 128, seed: 0, images: 2, sourcePatches: 240,
    };
    const text = JSON.stringify(header);
    const json = new TextEncoder().encode(text.padEnd(Math.ceil(text.length / 4) * 4));
    const file = new Uint8Array(12 + json.length + 4 * values.length);
    file.set(new TextEncoder().encode('TTTBANK1'));
    new DataView(file.buffer).setUint32(8, json.length, true);
    file.set(json, 12);
    values.forEach((v, i) => new DataView(file.buffer).setFloat32(12 + json.length + 4 * i, v, true));
    const old = decodeBank(file, 'old.bin');
    expect(old.header).toMatchObject({ version: 2, backbone: 'mobilenetv2', layers: header.layers, coresetRows: 0, preselect: 1 });
    const today = decodeBank(encodeBank(old));
    expect(today.header.version).toBe(BANK_VERSION);
    const a = await PatchCoreScorer.load(gpu, old);
    const b = await PatchCoreScorer.load(gpu, today);
    const image = texture(64, 48, 6);
    const sa = await a.score(image);
    const sb = await b.score(image);
    expect(Array.from(sa.anomalyMap.data)).toEqual(Array.from(sb.anomalyMap.data));
    expect(sa.predScore).toBeGreaterThan(0);
    a.release();
    b.release();
  });
});

describe('scoring', () => {
  const config = { ...PATCHCORE_DEFAULTS, ...MOBILENET, size: 64, coresetRatio: 0.5 };

  it('score map = bilinear + Gaussian smoothing of the nearest-patch distances (GPU against the reference)', async () => {
    const bank = await buildBank(gpu, [texture(64, 64, 1), texture(64, 48, 2)], config);
    expect(bank.header).toMatchObject({ patches: 56, sourcePatches: 112, channels: 152, images: 2, size: 64 });
    const scorer = await PatchCoreScorer.load(gpu, bank);
    const image = texture(80, 60, 3, { x: 50, y: 25, r: 10 });
    const { anomalyMap, predScore } = await scorer.score(image);
    expect([anomalyMap.width, anomalyMap.height]).toEqual([80, 60]);
    // Reference from the same patch features: nearest distances, then the map.
    const graph = await mobileNetGraph(config.layers);
    const p = patchFeatures(gpu, graph, image, config);
    const stride = Math.ceil(p.patches / 4) * 4;
    const q = await gpu.readF32(p.data, p.channels * stride);
    gpu.release(p.data);
    expect([p.working, p.grid]).toEqual([{ width: 64, height: 48 }, { width: 8, height: 6 }]);
    const nn = referenceNearest(bank.features, 152, q, p.patches, stride);
    const want = referenceScoreMap(Float32Array.from(nn.distance), p.grid, p.working, smoothingSigma(64), anomalyMap);
    let diff = 0;
    let top = 0;
    for (let i = 0; i < want.length; i++) {
      diff = Math.max(diff, Math.abs(anomalyMap.data[i] - want[i]));
      top = Math.max(top, want[i]);
    }
    expect(diff / top).toBeLessThan(1e-4);
    expect(predScore).toBe(Math.max(...anomalyMap.data));
    // The defect scores above the nominal texture.
    let inside = 0;
    let outside = 0;
    let n = 0;
    anomalyMap.data.forEach((v, i) => {
      if (Math.hypot((i % 80) - 50, Math.floor(i / 80) - 25) <= 10) {
        inside += v;
        n++;
      } else outside += v;
    });
    expect(inside / n).toBeGreaterThan(1.2 * (outside / (anomalyMap.data.length - n)));
    scorer.release();
  });

  it('banks of subsets of one bankRows pass equal buildBank of the same images', async () => {
    const images = [texture(64, 64, 1), texture(64, 48, 2), texture(48, 64, 4)];
    const rows = await bankRows(gpu, images, config);
    expect(rows.perImage.map((r) => r.rows.length / rows.channels)).toEqual([64, 48, 48]);
    for (const pick of [[0, 2], [0, 1, 2]]) {
      const direct = await buildBank(gpu, pick.map((k) => images[k]), config);
      const fromRows = await bankFromRows(gpu, { ...rows, perImage: pick.map((k) => rows.perImage[k]) }, config);
      expect(fromRows.header).toEqual(direct.header);
      expect(Buffer.from(fromRows.features.buffer).equals(Buffer.from(direct.features.buffer))).toBe(true);
    }
    expect(rows.perImage).toHaveLength(3); // not consumed
  });

  it('keeps no host copy of the bank: a projected scorer answers an exact search from its GPU rows', async () => {
    // 152 channels projected to 32: the projected search by default.
    const bank = await buildBank(gpu, [texture(64, 64, 1), texture(64, 48, 2)], { ...config, projectionDims: 32 });
    const exact = await PatchCoreScorer.load(gpu, { ...bank, features: Float32Array.from(bank.features) }, { search: 'exact' });
    const scorer = await PatchCoreScorer.load(gpu, bank);
    expect([scorer.search, exact.search]).toEqual(['projected', 'exact']);
    const { patches } = bank.header;
    const nb = Math.ceil(patches / 8) * 8;
    // The rows (patches x 152), the projected bank and its norms (32 + 1 planes of nb), the projection (152 x 32 weights, padded to the tile, and a bias).
    const held = patches * 152 * 4 + 33 * nb * 4;
    expect(scorer.deviceBytes - held).toBeGreaterThanOrEqual(152 * 32 * 4);
    expect(scorer.deviceBytes - held).toBeLessThan(152 * 64 * 4 + 4 * 256);
    // The caller's array is not the scorer's: zeroing it changes nothing (the scorer used to keep it to upload the exact search's bank from).
    bank.features.fill(0);
    const image = texture(64, 48, 3, { x: 40, y: 20, r: 8 });
    const want = await exact.nearestPatches(image);
    const got = await scorer.nearestPatches(image, null, 'exact');
    expect(Array.from(got.index)).toEqual(Array.from(want.index));
    for (let i = 0; i < want.distance.length; i++) expect(Math.abs(got.distance[i] - want.distance[i])).toBeLessThanOrEqual(1e-6 * want.distance[i]);
    // Now it holds the dimension-major bank as well (patches x 152 values and the norms, in parts of 8 entries).
    expect(scorer.deviceBytes - held).toBeGreaterThanOrEqual(nb * 153 * 4);
    // The projected search is never closer than the exact one.
    const approx = await scorer.nearestPatches(image);
    approx.distance.forEach((d, i) => expect(d).toBeGreaterThanOrEqual(want.distance[i] * (1 - 1e-6)));
    scorer.release();
    exact.release();
  });

  it('keeps the map on the device for segment, which then does not upload it again and gives the same result', async () => {
    const bank = await buildBank(gpu, [texture(64, 64, 1), texture(64, 48, 2)], config);
    const scorer = await PatchCoreScorer.load(gpu, bank);
    const image = texture(64, 48, 3, { x: 40, y: 20, r: 8 });
    const s = await scorer.score(image, null, image, true);
    expect(Array.from(await gpu.readF32(s.device!, 64 * 48))).toEqual(Array.from(s.anomalyMap.data));
    const options = resolveOptions({ 'compute.stages': 'gpu', 'features.extractor': 'filterbank', 'pseudoLabels.nominalCount': 300 });
    // Count the uploads of the map's values.
    const upload = gpu.upload;
    let mapUploads = 0;
    gpu.upload = (data) => {
      if (data === s.anomalyMap.data) mapUploads++;
      return upload.call(gpu, data);
    };
    try {
      const a = await segment(gpu, { image, scoreMap: s.anomalyMap }, options);
      expect(mapUploads).toBe(1);
      const b = await segment(gpu, { image, scoreMap: s.anomalyMap, scoreMapDevice: s.device }, options);
      expect(mapUploads).toBe(1);
      expect(b.predMask).toEqual(a.predMask);
      expect(b.predScore).toBe(a.predScore);
      expect(b.anomalyMap.percentiles).toEqual(a.anomalyMap.percentiles);
    } finally {
      gpu.upload = upload;
    }
    const short = gpu.alloc(10);
    await expect(segment(gpu, { image, scoreMap: s.anomalyMap, scoreMapDevice: short }, options)).rejects.toThrow(/3072 values with 10 on the device/);
    gpu.release(short, s.device);
    scorer.release();
  });

  it('refuses a bank whose channels do not match its layers', async () => {
    const bank = await buildBank(gpu, [texture(32, 32, 1)], { ...config, size: 32, coresetRatio: 1 });
    const wrong = { ...bank, header: { ...bank.header, layers: ['block_2_add'] } };
    await expect(PatchCoreScorer.load(gpu, wrong)).rejects.toThrow(/152-channel image features but layers block_2_add .* give 24/);
  });
});

describe('AUROC', () => {
  it('equals the pairwise count with ties as one half', () => {
    const pos = uniform(300, 1).map((v) => Math.round(v * 20));
    const neg = uniform(500, 2).map((v) => Math.round(v * 14));
    let s = 0;
    for (const p of pos) for (const n of neg) s += p > n ? 1 : p === n ? 0.5 : 0;
    expect(auroc(pos.slice(), neg.slice())).toBeCloseTo(s / pos.length / neg.length, 12);
    expect(auroc(Float32Array.of(2, 3), Float32Array.of(0, 1))).toBe(1);
    expect(auroc(Float32Array.of(1), Float32Array.of())).toBeNaN();
  });
});

describe('ttt bank build / ttt score', () => {
  it('builds a bank from a folder and writes an anomaly map (.npy at the image size) and a heat map', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ttt-bank-'));
    const png = (img: ImageTensor) =>
      sharp(Buffer.from(img.data.map((v) => Math.round(v * 255))), { raw: { width: img.width, height: img.height, channels: 1 } }).png().toBuffer();
    for (let i = 0; i < 3; i++) writeFileSync(join(dir, `good_${i}.png`), await png(texture(64, 64, i)));
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
    const test = join(dir, 'test.png');
    writeFileSync(test, await png(texture(72, 64, 9, { x: 20, y: 30, r: 5 })));
    const out = join(dir, 'bank.bin');
    const log: string[] = [];
    const orig = console.log;
    console.log = (s: string) => log.push(s);
    try {
      await bankCommand.run(['build', '--images', dir, '--out', out, '--size', '64', '--coreset', '0.25', '--limit', '2']);
      await scoreCommand.run(['--bank', out, '--image', test, '--out', join(dir, 'map.npy'), '--png', join(dir, 'heat.png')]);
    } finally {
      console.log = orig;
    }
    const bank = decodeBank(readFileSync(out));
    expect(bank.header).toMatchObject({ images: 2, sourcePatches: 128, patches: 32, channels: 1536, size: 64, coresetRatio: 0.25, coresetRows: 0, backbone: 'resnet50', layers: ['stage2', 'stage3'], preselect: 1 });
    const npy = readFileSync(join(dir, 'map.npy'));
    expect(npy.subarray(1, 6).toString()).toBe('NUMPY');
    expect(npy.toString('latin1', 10, 80)).toContain("'shape': (64, 72)");
    expect(npy.length - 10 - npy.readUInt16LE(8)).toBe(64 * 72 * 4);
    expect((await sharp(join(dir, 'heat.png')).metadata()).width).toBe(72);
    expect(JSON.parse(log[1])).toMatchObject({ width: 72, height: 64 });
    await expect(bankCommand.run(['build', '--images', join(dir, 'missing'), '--out', out])).rejects.toThrow(/is not a folder/);
    await expect(bankCommand.run(['build', '--images', dir, '--out', out, '--coreset', '2'])).rejects.toThrow(/--coreset expects a share in \(0, 1\]/);
    await expect(bankCommand.run(['build', '--images', dir, '--out', out, '--backbone', 'vgg'])).rejects.toThrow(/--backbone expects mobilenetv2 or resnet50, got "vgg"/);
    await expect(bankCommand.run(['build', '--images', dir, '--out', out, '--preselect', '0'])).rejects.toThrow(/--preselect expects a share in \(0, 1\] or auto/);
    // MobileNetV2 with a row target and a pre-selection: 2 images of 64 patches keep 16 each, the bank 20.
    await bankCommand.run(['build', '--images', dir, '--out', out, '--size', '64', '--backbone', 'mobilenetv2', '--coreset-rows', '20', '--preselect', '0.25', '--limit', '2']);
    expect(decodeBank(readFileSync(out)).header).toMatchObject({ images: 2, sourcePatches: 128, patches: 20, channels: 152, backbone: 'mobilenetv2', layers: ['block_2_add', 'block_5_add', 'block_12_add'], coresetRows: 20, preselect: 0.25 });
    writeFileSync(join(dir, 'cut.bin'), readFileSync(out).subarray(0, readFileSync(out).length - 100));
    await expect(scoreCommand.run(['--bank', join(dir, 'cut.bin'), '--image', test, '--out', join(dir, 'x.npy')])).rejects.toThrow(/truncated/);
  });
});
