// The 3-D features on synthetic surfaces of known geometry (plane, sphere, dent), the GPU kernels against
// their reference, and the validity mask (holes of the point cloud) through every stage.
import { beforeAll, describe, expect, it } from 'vitest';
import { readMask } from '../../src/core/binarize.ts';
import { predict, trainClassifier } from '../../src/core/classifier.ts';
import { geometryChannels, geometryChannelsRaw, geometryFeatures, preparePointCloud, solvePlane, type PreparedPointCloud } from '../../src/core/features/geometry.ts';
import { extractFeatures } from '../../src/core/features/index.ts';
import { filterbankExtractor } from '../../src/core/features/filterbank.ts';
import { gatherTrainingSet } from '../../src/core/gather.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { confusion, pixelMetrics } from '../../src/core/metrics.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { segment } from '../../src/core/pipeline.ts';
import { pseudoLabels } from '../../src/core/pseudoLabels.ts';
import { referenceGeometryFeatures, referenceGeometryRaw, smallestEigen } from '../../src/core/reference/geometry.ts';
import { referenceSegment } from '../../src/core/reference/pipeline.ts';
import { referencePseudoLabels } from '../../src/core/reference/pseudoLabels.ts';
import { referenceAnalyzeScoreMap } from '../../src/core/reference/stats.ts';
import { analyzeScoreMap } from '../../src/core/stats.ts';
import type { PointCloud, ScoreMap } from '../../src/core/types.ts';
import { pointValidity, resampleValidity, uploadValidity } from '../../src/core/validity.ts';
import { uniformStream } from '../../src/synthetic.ts';
import { gaussianDent, gridX, gridY, planeSurface, renderPointCloud, sphereSurface, synthetic3dSample } from '../../src/synthetic3d.ts';
import { agreement, maxAbsDiff, testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const GRID = { width: 48, height: 40, spacing: 0.01 };
const SCALES = [2, 4];
const PER_SCALE = 6;

/** The raw channels (before resampling and standardization) at the point cloud's resolution, from the GPU. */
async function rawChannels(pc: PreparedPointCloud, scales = SCALES): Promise<Float32Array> {
  const { data } = await geometryChannelsRaw(gpu, pc, scales, pc);
  const out = await gpu.readF32(data, geometryChannels(scales) * pc.width * pc.height);
  gpu.release(data);
  return out;
}

const channel = (all: Float32Array, c: number, n: number) => all.subarray(c * n, (c + 1) * n);
const scaleChannel = (all: Float32Array, scale: number, k: number, n: number) => channel(all, 1 + scale * PER_SCALE + k, n);

/**
 * Surface variation of a small (2r+1)^2 window with spacing d on a sphere of radius R, to second order:
 * the height h = rho^2 / 2R varies by Var(rho^2) / 4R^2 against the tangent variance E[x^2] per axis,
 * with the discrete moments of the window's offsets.
 */
function expectedVariation(r: number, d: number, R: number): number {
  const offs = Array.from({ length: 2 * r + 1 }, (_, k) => (k - r) * d);
  const m2 = offs.reduce((a, o) => a + o * o, 0) / offs.length;
  const m4 = offs.reduce((a, o) => a + o ** 4, 0) / offs.length;
  const varRho2 = 2 * m4 + 2 * m2 * m2 - 4 * m2 * m2;
  return varRho2 / (4 * R * R) / (2 * m2);
}

describe('3-D features on surfaces of known geometry', () => {
  it('a tilted plane: constant normal towards the camera, zero curvature, zero plane distance and spread', async () => {
    const pc = preparePointCloud(renderPointCloud(GRID, planeSurface(5, 0.1, 0.05)));
    const n = pc.width * pc.height;
    const all = await rawChannels(pc);
    const norm = Math.hypot(0.1, 0.05, 1);
    const expected = [0.1 / norm, 0.05 / norm, -1 / norm];
    for (let s = 0; s < SCALES.length; s++) {
      for (let k = 0; k < 3; k++) expect(maxAbsDiff(scaleChannel(all, s, k, n), new Float32Array(n).fill(expected[k]))).toBeLessThan(1e-5);
      expect(Math.max(...scaleChannel(all, s, 3, n))).toBeLessThan(1e-6); // surface variation
      expect(Math.max(...scaleChannel(all, s, 4, n))).toBeLessThan(1e-5); // spread of the plane distance
      expect(Math.max(...scaleChannel(all, s, 5, n))).toBeLessThan(1e-5); // normal deviation
    }
    expect(Math.max(...channel(all, 0, n).map(Math.abs))).toBeLessThan(1e-5); // distance to the fitted plane
  });

  it('a sphere: radial normals, surface variation as second-order theory predicts (~ 1 / R^2), holes outside the silhouette', async () => {
    const variation: number[] = [];
    for (const R of [0.15, 0.3]) {
      const cloud = renderPointCloud(GRID, sphereSurface(R, 5));
      const pc = preparePointCloud(cloud);
      const n = pc.width * pc.height;
      const all = await rawChannels(pc);
      let worstAngle = 0;
      const atCentre: number[] = [];
      for (let v = 0; v < GRID.height; v++) {
        for (let u = 0; u < GRID.width; u++) {
          const i = v * GRID.width + u;
          const x = gridX(u, GRID);
          const y = gridY(v, GRID);
          if (!pc.valid[i]) {
            for (let c = 0; c < geometryChannels(SCALES); c++) expect(all[c * n + i]).toBe(0);
            continue;
          }
          // The cap within half the radius: towards the rim the x, y grid samples the surface ever more
          // unevenly, and the fitted plane tilts away from the tangent plane.
          if (Math.hypot(x, y) > R / 2) continue;
          const z = pc.points[2 * n + i];
          const radial = [x / R, y / R, (z - 5) / R]; // outward, towards the camera on the front cap
          const dotp = radial[0] * all[n + i] + radial[1] * all[2 * n + i] + radial[2] * all[3 * n + i];
          worstAngle = Math.max(worstAngle, Math.acos(Math.min(1, dotp)));
          if (Math.hypot(x, y) < 1.5 * GRID.spacing) atCentre.push(scaleChannel(all, 0, 3, n)[i]);
        }
      }
      // Off the apex the window is uneven on the surface (uniform in x, y): the fitted plane tilts by
      // about (window / R)^2 x slope, about 0.01 rad here; 0.02 rad (1.1 degrees) bounds it.
      expect(worstAngle).toBeLessThan(0.02);
      const mean = atCentre.reduce((a, b) => a + b, 0) / atCentre.length;
      // Second-order theory at the apex; higher orders add a few per cent for a 5 x 5 window.
      expect(Math.abs(mean / expectedVariation(2, GRID.spacing, R) - 1)).toBeLessThan(0.05);
      variation.push(mean);
    }
    // Twice the radius: a quarter of the surface variation.
    expect(variation[0] / variation[1]).toBeGreaterThan(3.6);
    expect(variation[0] / variation[1]).toBeLessThan(4.4);
  });

  it('a dent in a plane: farther than the fitted plane, curved, and invisible away from it', async () => {
    const dent = gaussianDent(0, 0, 0.04, 0.02);
    const pc = preparePointCloud(renderPointCloud(GRID, (x, y) => 5 + dent(x, y)));
    const n = pc.width * pc.height;
    const all = await rawChannels(pc);
    const centre = Math.floor(GRID.height / 2) * GRID.width + Math.floor(GRID.width / 2);
    const corner = 2 * GRID.width + 2;
    const depth = channel(all, 0, n);
    // The plane is fitted over the dent too, so it sits a little behind the flat part: relative 15%.
    expect(depth[centre]).toBeGreaterThan(0.85 * 0.02);
    expect(Math.abs(depth[corner])).toBeLessThan(0.15 * 0.02);
    expect(depth[centre] - depth[corner]).toBeGreaterThan(0.9 * 0.02);
    const curv = scaleChannel(all, 1, 3, n);
    expect(curv[centre]).toBeGreaterThan(1e-3);
    expect(curv[corner]).toBeLessThan(1e-6);
    expect(scaleChannel(all, 1, 4, n)[centre]).toBeGreaterThan(100 * scaleChannel(all, 1, 4, n)[corner]);
  });

  it('the plane fit solves the normal equations and falls back to a flat plane when degenerate', () => {
    // Points of z = 2 + 0.5 x - 0.25 y at (0,0), (1,0), (0,1), (1,1).
    const pts = [[0, 0], [1, 0], [0, 1], [1, 1]].map(([x, y]) => [x, y, 2 + 0.5 * x - 0.25 * y]);
    const s = [pts.length, 0, 0, 0, 0, 0, 0, 0, 0];
    for (const [x, y, z] of pts) {
      s[1] += x; s[2] += y; s[3] += z; s[4] += x * x; s[5] += x * y; s[6] += y * y; s[7] += x * z; s[8] += y * z;
    }
    const p = solvePlane(s);
    expect(p.a).toBeCloseTo(0.5, 12);
    expect(p.b).toBeCloseTo(-0.25, 12);
    expect(p.c).toBeCloseTo(2, 12);
    // Collinear points (all on x = y): no unique plane.
    expect(solvePlane([3, 3, 3, 6, 5, 5, 5, 10, 10])).toMatchObject({ a: 0, b: 0, c: 2, inv: 1 });
  });

  it('the eigen-solution: an axis-aligned and a rotated covariance', () => {
    const e = smallestEigen(0.5, 0, 0, 0.3, 0, 0.2);
    expect(e.l0).toBeCloseTo(0.2, 12);
    expect(Math.abs(e.v[2])).toBeCloseTo(1, 12);
    // Rotation about z by 30 degrees of diag(0.6, 0.1, 0.3): the smallest axis is (-sin, cos, 0).
    const c = Math.cos(Math.PI / 6);
    const sn = Math.sin(Math.PI / 6);
    const a00 = 0.6 * c * c + 0.1 * sn * sn;
    const a01 = (0.6 - 0.1) * c * sn;
    const a11 = 0.6 * sn * sn + 0.1 * c * c;
    const r = smallestEigen(a00, a01, 0, a11, 0, 0.3);
    expect(r.l0).toBeCloseTo(0.1, 10);
    expect(Math.abs(r.v[0] * -sn + r.v[1] * c)).toBeCloseTo(1, 10);
  });
});

/** A sphere with NaN holes outside the silhouette and a few random holes inside. */
function holedSphere(seed: number): PointCloud {
  const pc = renderPointCloud(GRID, sphereSurface(0.2, 5), true);
  const rnd = uniformStream(seed);
  for (let i = 0; i < pc.width * pc.height; i++) if (rnd() < 0.03) pc.data.fill(0, 3 * i, 3 * i + 3);
  return pc;
}

describe('3-D features: GPU against the reference', () => {
  it('raw channels agree (normals and curvature 1e-4, distances 1e-6)', async () => {
    const pc = preparePointCloud(holedSphere(1));
    const n = pc.width * pc.height;
    const g = await rawChannels(pc);
    const r = referenceGeometryRaw(pc, SCALES, pc);
    expect(maxAbsDiff(channel(g, 0, n), channel(r.data, 0, n))).toBeLessThan(1e-6);
    for (let s = 0; s < SCALES.length; s++) {
      for (let k = 0; k < 3; k++) expect(maxAbsDiff(scaleChannel(g, s, k, n), scaleChannel(r.data, s, k, n))).toBeLessThan(1e-4);
      expect(maxAbsDiff(scaleChannel(g, s, 3, n), scaleChannel(r.data, s, 3, n))).toBeLessThan(1e-4);
      expect(maxAbsDiff(scaleChannel(g, s, 4, n), scaleChannel(r.data, s, 4, n))).toBeLessThan(1e-6);
      expect(maxAbsDiff(scaleChannel(g, s, 5, n), scaleChannel(r.data, s, 5, n))).toBeLessThan(1e-4);
    }
  });

  for (const working of [{ width: 48, height: 40 }, { width: 24, height: 20 }]) {
    it(`standardized features at ${working.width}x${working.height}: holes are 0, valid pixels agree to 2e-3 standard deviations`, async () => {
      const pc = preparePointCloud(holedSphere(2));
      const valid = resampleValidity(pc.valid, pc, working);
      const v = uploadValidity(gpu, valid);
      const f = await geometryFeatures(gpu, pc, working, SCALES, v);
      const n = working.width * working.height;
      const g = await gpu.readF32(f.chunks[0].data, f.channels * n);
      gpu.release(f.chunks[0].data, v.data);
      const r = referenceGeometryFeatures(pc, working, SCALES);
      expect(Array.from(r.valid)).toEqual(Array.from(valid));
      expect(f.channels).toBe(13);
      expect(f.names.slice(0, 3)).toEqual(['3d.depth', '3d.s2.nx', '3d.s2.ny']);
      // Standardization divides by small spreads (normals vary little over a sphere cap), which amplifies
      // the f32 differences: 2e-3 in standard deviations.
      expect(maxAbsDiff(g, r.features.data)).toBeLessThan(2e-3);
      for (let c = 0; c < f.channels; c++) for (let i = 0; i < n; i++) if (!valid[i]) expect(g[c * n + i]).toBe(0);
      // Over the valid pixels every channel has mean 0 and std 1.
      const count = valid.reduce((a, b) => a + b, 0);
      for (let c = 0; c < f.channels; c++) {
        let s = 0;
        let ss = 0;
        for (let i = 0; i < n; i++) if (valid[i]) { s += g[c * n + i]; ss += g[c * n + i] ** 2; }
        expect(Math.abs(s / count)).toBeLessThan(1e-4);
        expect(Math.abs(ss / count - 1)).toBeLessThan(1e-3);
      }
    });
  }
});

describe('holes of the point cloud through the stages', () => {
  it('validity: NaN and (0, 0, 0) are holes; resampling keeps a pixel only when all its taps are valid', () => {
    const pc: PointCloud = { data: new Float32Array([1, 2, 3, 0, 0, 0, NaN, 1, 1, 0, 0, 1e-9, 1, NaN, 2, 5, 5, 5]), width: 3, height: 2 };
    expect(Array.from(pointValidity(pc))).toEqual([1, 0, 0, 1, 0, 1]);
    const valid = new Uint8Array(16).fill(1);
    valid[5] = 0; // (1, 1)
    const half = resampleValidity(valid, { width: 4, height: 4 }, { width: 2, height: 2 });
    // Output (0, 0) reads source (0..1, 0..1)... with scale 2 the taps are x0 = floor(0.5) = 0 and x1 = 1.
    expect(Array.from(half)).toEqual([0, 1, 1, 1]);
  });

  function mapWithHoles(seed: number) {
    const width = 90;
    const height = 70;
    const rnd = uniformStream(seed);
    const data = new Float32Array(width * height);
    const valid = new Uint8Array(width * height);
    for (let i = 0; i < data.length; i++) {
      data[i] = rnd() + 0.3 * Math.sin(i / 50);
      valid[i] = (i % width) > 20 || rnd() < 0.2 ? 1 : 0;
      // The highest scores lie in the holes: a mask that ignored validity would seed there.
      if (!valid[i]) data[i] += 2;
    }
    return { map: { data, width, height } as ScoreMap, valid };
  }

  it('statistics, percentiles and pseudo-labels over the valid pixels match the reference; no label in a hole', async () => {
    const { map, valid } = mapWithHoles(3);
    const options = resolveOptions({ 'pseudoLabels.nominalPercentile': 100, 'pseudoLabels.nominalCount': 800 });
    const v = uploadValidity(gpu, valid);
    const m = { data: gpu.upload(map.data), width: map.width, height: map.height };
    const qs = [99, 100, 50];
    const a = await analyzeScoreMap(gpu, m, qs, v);
    const r = referenceAnalyzeScoreMap(map, qs, valid);
    expect(a.stats.count).toBe(valid.reduce((x, y) => x + y, 0));
    expect(a.stats.max).toBe(r.stats.max);
    expect(a.stats.max).toBeLessThan(1.5); // the holes' scores (> 2) are not in the statistics
    expect(a.bins).toEqual(r.bins);
    const g = await pseudoLabels(gpu, m, a.qbins, { min: a.stats.min, scale: a.scale }, options, -Infinity, v);
    const labels = await gpu.readU32(g.labels, map.width * map.height);
    const ref = referencePseudoLabels(map, { anomalous: r.bins[0], nominal: r.bins[1] }, { min: r.stats.min, scale: r.scale }, options, -Infinity, valid);
    expect(g.counts).toEqual(ref.counts);
    expect(Array.from(labels)).toEqual(Array.from(ref.labels));
    for (let i = 0; i < labels.length; i++) if (!valid[i]) expect(labels[i]).toBe(0);
    expect(g.counts.anomalous).toBeGreaterThan(0);
    expect(g.counts.nominal).toBe(800);

    // The classifier's mask is 0 in the holes even where the decision is positive.
    const feats = await extractFeatures(gpu, { data: map.data, width: map.width, height: map.height, channels: 1 }, filterbankExtractor([1]));
    const set = gatherTrainingSet(gpu, g, g.counts.anomalous + g.counts.nominal, feats);
    const { model } = await trainClassifier(gpu, set, g.counts, options);
    const masked = await readMask(gpu, predict(gpu, model, feats, m.data, -Infinity, v).mask, labels.length);
    const plain = await readMask(gpu, predict(gpu, model, feats, m.data).mask, labels.length);
    let holesFlagged = 0;
    for (let i = 0; i < labels.length; i++) {
      if (!valid[i]) {
        expect(masked[i]).toBe(0);
        holesFlagged += plain[i];
      } else {
        expect(masked[i]).toBe(plain[i]);
      }
    }
    expect(holesFlagged).toBeGreaterThan(0); // the mask had something to remove
    gpu.release(v.data, m.data, a.qbins, g.labels, g.blockCounts, set.x, set.targets, set.pixels, model, ...feats.chunks.map((c) => c.data));
  });
});

describe('segment() with a point cloud', () => {
  const sample = synthetic3dSample({ width: 96, height: 72, seed: 4, defects: 2 });

  it.each(['gpu', 'host'] as const)('GPU and reference pipelines agree (filterbank + 3-D features), and the mask is empty in the holes (compute.stages=%s)', async (stages) => {
    const options = resolveOptions({ 'features.extractor': 'filterbank', 'features.sigmas': [1, 2], 'compute.stages': stages });
    const input = { image: sample.image, scoreMap: sample.scoreMap, pointCloud: sample.pointCloud };
    const g = await segment(gpu, input, options);
    const r = referenceSegment(input, options);
    expect(g.placement.classifier).toBe(stages);
    expect(g.featureChannels).toBe(3 + 11 * 2 + 13);
    expect(g.pseudoLabels).toEqual(r.pseudoLabels);
    expect(agreement(g.predMask, r.predMask)).toBeGreaterThan(0.995);
    const valid = pointValidity(sample.pointCloud);
    let holes = 0;
    for (let i = 0; i < valid.length; i++) if (!valid[i]) { holes++; expect(g.predMask[i]).toBe(0); }
    expect(holes).toBeGreaterThan(0.1 * valid.length);
    expect(g.predLabel).toBe(true);
  });

  it('a dent invisible in the image: 3-D features segment it, image features alone do not', async () => {
    const f1: Record<string, number> = {};
    for (const modality of ['rgb', '3d', 'both']) {
      // The features' own masks: without the peak floor, which trims any mask to the map's peaks.
      const options = resolveOptions({ 'features.extractor': 'filterbank', 'features.modality': modality, 'mask.peakFraction': 0 });
      const r = await segment(gpu, { image: sample.image, scoreMap: sample.scoreMap, pointCloud: sample.pointCloud }, options);
      f1[modality] = pixelMetrics(confusion(r.predMask, sample.groundTruth)).f1;
    }
    expect(f1.rgb).toBeLessThan(0.3);
    expect(f1['3d']).toBeGreaterThan(0.4);
    expect(f1.both).toBeGreaterThan(f1.rgb + 0.2);
  });

  it('bad point clouds: typed errors', async () => {
    const base = { image: sample.image, scoreMap: sample.scoreMap };
    const o = resolveOptions({ 'features.extractor': 'filterbank' });
    await expect(segment(gpu, base, resolveOptions({ 'features.extractor': 'filterbank', 'features.modality': '3d' }))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    const holes = { ...sample.pointCloud, data: new Float32Array(sample.pointCloud.data.length) };
    await expect(segment(gpu, { ...base, pointCloud: holes }, o)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('no valid point') });
    const inf = { ...sample.pointCloud, data: sample.pointCloud.data.slice() };
    inf.data[3 * 500 + 2] = Infinity;
    await expect(segment(gpu, { ...base, pointCloud: inf }, o)).rejects.toMatchObject({ code: 'NON_FINITE' });
    const short = { ...sample.pointCloud, data: sample.pointCloud.data.subarray(3) };
    await expect(segment(gpu, { ...base, pointCloud: short }, o)).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    const wide = renderPointCloud({ width: 96, height: 30, spacing: 0.01 }, planeSurface(1));
    await expect(segment(gpu, { ...base, pointCloud: wide }, o)).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
  });
});
