// The built-in scorer's approximations against plain-TS references of the same algorithms: the projected
// search (candidates per slice in the random projection, exact re-rank) and the streamed bank build
// (per-image greedy pre-selection in the projected space, then the global greedy coreset over the union).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { greedyCoreset, hostGreedy, projectionMatrix, projectPlanar, setProjectionTile } from '../../src/core/patchcore/coreset.ts';
import { bankFromRows, bankRows, PATCHCORE_DEFAULTS, type PatchCoreConfig } from '../../src/core/patchcore/patchcore.ts';
import type { ImageTensor } from '../../src/core/types.ts';
import { registerMobileNet } from '../../src/models/nsfwjs.ts';
import { nearestDistances, projectBank, projectedNearest, releaseBank, releaseProjectedBank, uploadBank } from '../../src/core/patchcore/knn.ts';
import { referenceCoreset, referenceNearest, referenceProjectedNearest } from '../../src/core/reference/patchcore.ts';
import { pcgHash } from '../../src/core/rng.ts';
import { testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
  registerMobileNet();
});

const uniform = (n: number, seed: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => (pcgHash((i * 2654435761 + seed) >>> 0) / 4294967296) * scale);

describe('projected search (GPU) against the reference', () => {
  const channels = 96;
  const dims = 16;
  const size = 2000;
  const nq = 45;
  const stride = 48;
  const bank = uniform(size * channels, 11);
  const queries = uniform(channels * stride, 12);

  it('picks the reference entry and its exact distance, over a full bank and its rows split across buffers', async () => {
    const full = uploadBank(gpu, bank, channels, 512);
    expect(full.parts.length).toBe(4);
    const pb = (await projectBank(gpu, full, bank, dims, 3, 8, 600))!;
    expect([pb.slice, pb.slices]).toEqual([256, 8]);
    // The re-rank's patch-major rows split across buffers too (600 entries each, not aligned to the slices).
    expect(pb.rows.map((r) => [r.base, r.count])).toEqual([[0, 600], [600, 600], [1200, 600], [1800, 200]]);
    const q = gpu.upload(queries);
    const { distance, index } = projectedNearest(gpu, pb, q, nq);
    const d = await gpu.readF32(distance, nq);
    const ix = await gpu.readU32(index, nq);
    gpu.release(q, distance, index);
    releaseProjectedBank(gpu, pb);
    releaseBank(gpu, full);
    const ref = referenceProjectedNearest(bank, channels, queries, nq, stride, dims, 3, 256);
    expect(Array.from(ix)).toEqual(Array.from(ref.index));
    for (let i = 0; i < nq; i++) expect(Math.abs(d[i] - ref.distance[i]) / ref.distance[i]).toBeLessThan(1e-5);
    // The approximation is real: with 16 of 96 dimensions and 8 candidates, some queries miss their true
    // nearest entry, and then their distance is larger than the exact one (never smaller).
    const exact = referenceNearest(bank, channels, queries, nq, stride);
    const hits = exact.index.filter((e, i) => e === ix[i]).length;
    expect(hits).toBeLessThan(nq);
    for (let i = 0; i < nq; i++) expect(d[i]).toBeGreaterThanOrEqual(exact.distance[i] * (1 - 1e-5));
  });

  it('re-ranks 13 candidates per query (a group of 8, then 5) as the reference does; the projection gives the same values on either pointwise tile', async () => {
    const full = uploadBank(gpu, bank, channels);
    const pb = (await projectBank(gpu, full, bank, dims, 5, 13))!;
    expect([pb.slice, pb.slices]).toEqual([160, 13]);
    const q = gpu.upload(queries);
    const { distance, index } = projectedNearest(gpu, pb, q, nq);
    const d = await gpu.readF32(distance, nq);
    const ix = await gpu.readU32(index, nq);
    gpu.release(distance, index);
    const ref = referenceProjectedNearest(bank, channels, queries, nq, stride, dims, 5, 160);
    expect(Array.from(ix)).toEqual(Array.from(ref.index));
    for (let i = 0; i < nq; i++) expect(Math.abs(d[i] - ref.distance[i]) / ref.distance[i]).toBeLessThan(1e-5);
    // The projection (16 dims: the 16-channel tile) = the 8-channel tile, bit for bit (same sums in the same order).
    const planes: Float32Array[] = [];
    for (const tile of ['wider', 'narrow'] as const) {
      setProjectionTile(tile);
      const out = projectPlanar(gpu, pb.projection, q, stride);
      planes.push(await gpu.readF32(out, dims * stride));
      gpu.release(out);
    }
    setProjectionTile('wider');
    expect(planes[0].some((v) => v !== 0)).toBe(true);
    expect(Array.from(planes[0])).toEqual(Array.from(planes[1]));
    gpu.release(q);
    releaseProjectedBank(gpu, pb);
    releaseBank(gpu, full);
  });

  it('finds the true nearest entry more often with more slices (slices of one group of 8 entries)', async () => {
    const small = bank.subarray(0, 256 * channels);
    const full = uploadBank(gpu, small, channels);
    const q = gpu.upload(queries);
    const exact = nearestDistances(gpu, full, q, nq);
    const want = await gpu.readU32(exact.index, nq);
    gpu.release(exact.distance, exact.index);
    const hits: number[] = [];
    for (const [slices, slice] of [[2, 128], [1000, 8]]) {
      const pb = (await projectBank(gpu, full, small, dims, 3, slices))!;
      expect([pb.slice, pb.slices]).toEqual([slice, 256 / slice]);
      const a = projectedNearest(gpu, pb, q, nq);
      const got = await gpu.readU32(a.index, nq);
      gpu.release(a.distance, a.index);
      releaseProjectedBank(gpu, pb);
      const ref = referenceProjectedNearest(small, channels, queries, nq, stride, dims, 3, slice);
      expect(Array.from(got)).toEqual(Array.from(ref.index));
      hits.push(want.filter((e, i) => e === got[i]).length);
    }
    gpu.release(q);
    releaseBank(gpu, full);
    expect(hits[1]).toBeGreaterThan(hits[0] + 5);
  });
});

describe('host greedy selection', () => {
  it('selects what the reference selects', () => {
    const dims = 10;
    const points = uniform(500 * dims, 21);
    expect(Array.from(hostGreedy(points, dims, 50, 7))).toEqual(Array.from(referenceCoreset(points, dims, 50, 128, 7)));
    expect(Array.from(hostGreedy(points, dims, 500, 7))).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });
});

/** A nominal texture (oriented stripes with noise). */
function texture(width: number, height: number, seed: number): ImageTensor {
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data[y * width + x] = 0.5 + 0.2 * Math.sin(x * 0.9 + y * 0.15 + seed) + 0.1 * (pcgHash((y * width + x + seed * 7919) >>> 0) / 4294967296 - 0.5);
  }
  return { data, width, height, channels: 1 };
}

const rowsOf = (rows: Float32Array, width: number, pick: ArrayLike<number>) => {
  const out = new Float32Array(pick.length * width);
  for (let i = 0; i < pick.length; i++) out.set(rows.subarray(pick[i] * width, (pick[i] + 1) * width), i * width);
  return out;
};
const concat = (arrays: Float32Array[]) => {
  const out = new Float32Array(arrays.reduce((a, r) => a + r.length, 0));
  let o = 0;
  for (const r of arrays) {
    out.set(r, o);
    o += r.length;
  }
  return out;
};

describe('streamed bank build (per-image pre-selection, then the global coreset) against the reference', () => {
  // 152 MobileNetV2 channels projected to 32; 3 images of 64 patches; each keeps 16, the bank 40 of the 48.
  const config: PatchCoreConfig = { ...PATCHCORE_DEFAULTS, backbone: 'mobilenetv2', layers: ['block_2_add', 'block_5_add', 'block_12_add'], size: 64, projectionDims: 32, coresetRows: 40, preselect: 0.25, seed: 3 };
  const images = [texture(64, 64, 1), texture(64, 64, 2), texture(64, 48, 5)];

  it('projects each image on the GPU, keeps its greedy subset and selects over the union as the reference does', async () => {
    const all = await bankRows(gpu, images, { ...config, preselect: 1 });
    const pre = await bankRows(gpu, images, config);
    expect(all.perImage.map((r) => [r.patches, r.rows.length / 152, r.projected!.length / 32])).toEqual([[64, 64, 64], [64, 64, 64], [48, 48, 48]]);
    expect(pre.perImage.map((r) => [r.patches, r.rows.length / 152, r.projected!.length / 32])).toEqual([[64, 16, 16], [64, 16, 16], [48, 12, 12]]);
    // The projection against the seeded matrix (f64 sums): 1e-5 of the rows' scale.
    const r = projectionMatrix(152, 32, 3);
    const first = all.perImage[0];
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < 64; i++) {
      for (let d = 0; d < 32; d++) {
        let v = 0;
        for (let k = 0; k < 152; k++) v += first.rows[i * 152 + k] * r[k * 32 + d];
        worst = Math.max(worst, Math.abs(v - first.projected![i * 32 + d]));
        scale = Math.max(scale, Math.abs(v));
      }
    }
    expect(worst).toBeLessThan(1e-5 * scale);
    // Per image: the reference greedy selection of the image's projected patches (seed + position), in index order.
    all.perImage.forEach((img, k) => {
      const want = Array.from(referenceCoreset(img.projected!, 32, pre.perImage[k].rows.length / 152, 32, 3 + k)).sort((a, b) => a - b);
      expect(Array.from(pre.perImage[k].projected!)).toEqual(Array.from(rowsOf(img.projected!, 32, want)));
      expect(Array.from(pre.perImage[k].rows)).toEqual(Array.from(rowsOf(img.rows, 152, want)));
    });
    // Global: the reference greedy coreset of the union, in the projected space.
    const union = concat(pre.perImage.map((x) => x.projected!));
    const chosen = referenceCoreset(union, 32, 40, 32, 3);
    const bank = await bankFromRows(gpu, pre, config);
    expect(Array.from(bank.features)).toEqual(Array.from(rowsOf(concat(pre.perImage.map((x) => x.rows)), 152, chosen)));
    expect(bank.header).toMatchObject({ patches: 40, sourcePatches: 176, images: 3, coresetRows: 40, preselect: 0.25, channels: 152 });
  });

  it('without the pre-selection is the exact greedy coreset of all patches (the GPU kernel on the full rows)', async () => {
    const all = await bankRows(gpu, images, { ...config, preselect: 1 });
    const rows = concat(all.perImage.map((x) => x.rows));
    const exact = await greedyCoreset(gpu, rows, 152, 40, { projectionDims: 32, seed: 3 });
    const bank = await bankFromRows(gpu, all, { ...config, preselect: 1 });
    expect(Array.from(bank.features)).toEqual(Array.from(rowsOf(rows, 152, exact)));
    // The ratio decides without a row target: 10% of 176 patches.
    const byRatio = await bankFromRows(gpu, all, { ...config, preselect: 1, coresetRows: 0 });
    expect(byRatio.header.patches).toBe(18);
    await expect(bankRows(gpu, images, { ...config, preselect: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});
