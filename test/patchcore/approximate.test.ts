// The built-in scorer's approximations against plain-TS references of the same algorithms: the projected
// search (candidates per slice in the random projection, exact re-rank) and the streamed bank build
// (per-image greedy pre-selection in the projected space, then the global greedy coreset over the union).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { hostGreedy } from '../../src/core/patchcore/coreset.ts';
import { nearestDistances, projectBank, projectedNearest, releaseBank, releaseProjectedBank, uploadBank } from '../../src/core/patchcore/knn.ts';
import { referenceCoreset, referenceNearest, referenceProjectedNearest } from '../../src/core/reference/patchcore.ts';
import { pcgHash } from '../../src/core/rng.ts';
import { testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
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

  it('picks the reference entry and its exact distance, over a full bank split across buffers', async () => {
    const full = uploadBank(gpu, bank, channels, 512);
    expect(full.parts.length).toBe(4);
    const pb = (await projectBank(gpu, full, dims, 3, 8))!;
    expect([pb.slice, pb.slices]).toEqual([256, 8]);
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

  it('finds the true nearest entry more often with more slices (slices of one group of 8 entries)', async () => {
    const small = bank.subarray(0, 256 * channels);
    const full = uploadBank(gpu, small, channels);
    const q = gpu.upload(queries);
    const exact = nearestDistances(gpu, full, q, nq);
    const want = await gpu.readU32(exact.index, nq);
    gpu.release(exact.distance, exact.index);
    const hits: number[] = [];
    for (const [slices, slice] of [[2, 128], [1000, 8]]) {
      const pb = (await projectBank(gpu, full, dims, 3, slices))!;
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
