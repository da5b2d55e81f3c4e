// The built-in scorer's approximations against plain-TS references of the same algorithms: the projected
// search (candidates per slice in the random projection, exact re-rank) and the streamed bank build
// (per-image greedy pre-selection in the projected space, then the global greedy coreset over the union).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { greedyCoreset, hostGreedy, projectionMatrix, projectPlanar, setProjectionTile } from '../../src/core/patchcore/coreset.ts';
import { bankFromRows, bankRows, fillHolePatches, PATCHCORE_DEFAULTS, type PatchCoreConfig } from '../../src/core/patchcore/patchcore.ts';
import type { ImageTensor } from '../../src/core/types.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';
import { bankOfRows, nearestDistances, projectBank, projectedNearest, releaseBank, releaseProjectedBank, releaseRows, uploadBank, uploadRows } from '../../src/core/patchcore/knn.ts';
import { referenceCoreset, referenceFillHoles, referenceNearest, referenceProjectedNearest } from '../../src/core/reference/patchcore.ts';
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
    // Rows in buffers of 600 entries, projected in chunks of 512 (neither aligned to the other nor to the slices).
    const pb = projectBank(gpu, uploadRows(gpu, bank, channels, 600), dims, 3, 8, 512)!;
    expect([pb.slice, pb.slices]).toEqual([256, 8]);
    // The re-rank's patch-major rows split across buffers too (600 entries each, not aligned to the slices).
    expect(pb.rows.parts.map((r) => [r.base, r.count])).toEqual([[0, 600], [600, 600], [1200, 600], [1800, 200]]);
    const q = gpu.upload(queries);
    const { distance, index } = projectedNearest(gpu, pb, q, nq);
    const d = await gpu.readF32(distance, nq);
    const ix = await gpu.readU32(index, nq);
    gpu.release(q, distance, index);
    releaseProjectedBank(gpu, pb);
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
    const pb = projectBank(gpu, uploadRows(gpu, bank, channels), dims, 5, 13)!;
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
      const pb = projectBank(gpu, uploadRows(gpu, small, channels), dims, 3, slices)!;
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

describe('bank layouts built on the GPU at load (no read-back) against host references', () => {
  const channels = 96;
  const size = 1234;
  const bank = uniform(size * channels, 31, 2);

  /** The host's dimension-major copy and norms (f64 sums) of entries [first, first + count), padded to nb. */
  const hostPlanar = (first: number, count: number, nb: number) => {
    const t = new Float32Array(channels * nb);
    const norms = new Float64Array(nb).fill(3.0e38);
    for (let i = 0; i < count; i++) {
      let n = 0;
      for (let k = 0; k < channels; k++) {
        const v = bank[(first + i) * channels + k];
        t[k * nb + i] = v;
        n += v * v;
      }
      norms[i] = n;
    }
    return { t, norms };
  };

  it('transposes patch-major rows split across buffers into the exact search\'s parts, with their norms', async () => {
    // Rows in buffers of 500 entries; bank parts of 512: a part spans two row buffers.
    const rows = uploadRows(gpu, bank, channels, 500);
    expect(rows.parts.map((r) => [r.base, r.count])).toEqual([[0, 500], [500, 500], [1000, 234]]);
    const b = bankOfRows(gpu, rows, 512);
    expect(b.parts.map((p) => [p.base, p.count, p.nb])).toEqual([[0, 512, 512], [512, 512, 512], [1024, 210, 216]]);
    for (const p of b.parts) {
      const want = hostPlanar(p.base, p.count, p.nb);
      // A copy: bit-exact, padding zero.
      expect(Array.from(await gpu.readF32(p.data, channels * p.nb))).toEqual(Array.from(want.t));
      const norms = await gpu.readF32(p.norms, p.nb);
      for (let i = 0; i < p.nb; i++) {
        if (i >= p.count) expect(norms[i]).toBe(Math.fround(3.0e38));
        else expect(Math.abs(norms[i] - want.norms[i]) / want.norms[i]).toBeLessThan(1e-6);
      }
    }
    // The same bank as the host's upload (the exact search's other way in).
    const host = uploadBank(gpu, bank, channels, 512);
    expect(Array.from(await gpu.readF32(host.parts[2].data, channels * 216))).toEqual(Array.from(await gpu.readF32(b.parts[2].data, channels * 216)));
    releaseBank(gpu, host);
    releaseBank(gpu, b);
    releaseRows(gpu, rows);
  });

  it('projects the rows into one [dims][nb] buffer with its norms as the seeded projection does (f64 reference), chunked or not', async () => {
    const dims = 16;
    const nb = Math.ceil(size / 8) * 8;
    const r = projectionMatrix(channels, dims, 5);
    const want = new Float64Array(dims * nb);
    const wantNorms = new Float64Array(nb).fill(3.0e38);
    let scale = 0;
    for (let i = 0; i < size; i++) {
      let n = 0;
      for (let d = 0; d < dims; d++) {
        let v = 0;
        for (let k = 0; k < channels; k++) v += bank[i * channels + k] * r[k * dims + d];
        want[d * nb + i] = v;
        n += v * v;
        scale = Math.max(scale, Math.abs(v));
      }
      wantNorms[i] = n;
    }
    for (const [perRows, chunk] of [[size, 1 << 20], [500, 256]]) {
      const pb = projectBank(gpu, uploadRows(gpu, bank, channels, perRows), dims, 5, 4, chunk)!;
      expect([pb.projected.nb, pb.projected.count, pb.slices]).toEqual([nb, size, 4]);
      const got = await gpu.readF32(pb.projected.data, dims * nb);
      const norms = await gpu.readF32(pb.projected.norms, nb);
      let worst = 0;
      for (let j = 0; j < got.length; j++) worst = Math.max(worst, Math.abs(got[j] - want[j]));
      expect(worst).toBeLessThan(1e-5 * scale);
      for (let i = 0; i < nb; i++) {
        if (i >= size) expect(norms[i]).toBe(Math.fround(3.0e38));
        else expect(Math.abs(norms[i] - wantNorms[i]) / wantNorms[i]).toBeLessThan(1e-5);
      }
      releaseProjectedBank(gpu, pb);
    }
  });
});

describe('hole patches filled on the GPU against the reference', () => {
  it('gives every hole the lowest valid distance, in place; leaves the valid ones; no valid patch: 3.0e38', async () => {
    const n = 1001;
    const d = uniform(n, 41, 5);
    for (const allHoles of [false, true]) {
      const valid = Uint8Array.from({ length: n }, (_, i) => (allHoles || i % 3 === 0 ? 0 : 1));
      const a = gpu.upload(d);
      fillHolePatches(gpu, a, valid);
      const got = await gpu.readF32(a, n);
      gpu.release(a);
      const want = referenceFillHoles(d, valid);
      expect(Array.from(got)).toEqual(Array.from(want));
      if (!allHoles) {
        let low = Infinity;
        for (let i = 0; i < n; i++) if (i % 3 !== 0) low = Math.min(low, d[i]);
        expect(got[0]).toBe(low);
        expect(got[1]).toBe(d[1]);
      } else expect(got[5]).toBe(Math.fround(3.0e38));
    }
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
