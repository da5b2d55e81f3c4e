// Synthetic organized point clouds with known geometry, for tests and the synthetic MVTec 3D-AD-layout
// dataset: a height field z(x, y) seen by a camera at the origin looking along +z, sampled on a regular
// x, y grid (one point per pixel); pixels where the surface is absent are holes (0, 0, 0) or NaN.
// Seeded and runtime-agnostic (no Node APIs).

import type { ImageTensor, PointCloud, ScoreMap } from './core/types.ts';
import { uniformStream } from './synthetic.ts';

export interface GridOptions {
  width: number;
  height: number;
  /** Distance between neighbouring points in x and y. */
  spacing: number;
}

/** Grid coordinates of pixel (u, v): centred on the optical axis. */
export const gridX = (u: number, g: GridOptions): number => (u - (g.width - 1) / 2) * g.spacing;
export const gridY = (v: number, g: GridOptions): number => (v - (g.height - 1) / 2) * g.spacing;

/** Samples z = surface(x, y); null (or NaN) marks a hole, written as (0, 0, 0) or, with `nanHoles`, NaN. */
export function renderPointCloud(g: GridOptions, surface: (x: number, y: number) => number | null, nanHoles = false): PointCloud {
  const data = new Float32Array(g.width * g.height * 3);
  for (let v = 0; v < g.height; v++) {
    for (let u = 0; u < g.width; u++) {
      const x = gridX(u, g);
      const y = gridY(v, g);
      const z = surface(x, y);
      const i = 3 * (v * g.width + u);
      if (z === null || Number.isNaN(z)) {
        if (nanHoles) data.fill(NaN, i, i + 3);
        continue;
      }
      data[i] = x;
      data[i + 1] = y;
      data[i + 2] = z;
    }
  }
  return { data, width: g.width, height: g.height };
}

/** A plane z = z0 + sx x + sy y. */
export const planeSurface = (z0: number, sx = 0, sy = 0) => (x: number, y: number): number => z0 + sx * x + sy * y;

/** The front cap of a sphere of radius r centred at (0, 0, zc): holes outside its silhouette. */
export const sphereSurface = (r: number, zc: number) => (x: number, y: number): number | null => {
  const d2 = r * r - x * x - y * y;
  return d2 <= 0 ? null : zc - Math.sqrt(d2);
};

/** A Gaussian dent (depth > 0: away from the camera) or bump (depth < 0) of std `sigma` at (cx, cy). */
export const gaussianDent = (cx: number, cy: number, sigma: number, depth: number) => (x: number, y: number): number =>
  depth * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma));

export interface Synthetic3dSample {
  image: ImageTensor;
  pointCloud: PointCloud;
  /** A multimodal detector's map: smooth peaks over the defects (blurred wider than them), background noise. */
  scoreMap: ScoreMap;
  groundTruth: Uint8Array;
}

export interface Synthetic3dOptions {
  width: number;
  height: number;
  seed: number;
  /** Dents and bumps; 0 gives a defect-free part. */
  defects: number;
}

/**
 * An object on a table: a rounded slab (a smooth low dome) whose top carries shallow dents and bumps. The
 * image is a smooth colour texture that does not change over a defect (a dent invisible in RGB); the
 * point cloud has holes around the object (no measurement off the table's edge), and the ground truth
 * marks where the surface departs from the nominal shape by more than a quarter of the defect's depth.
 */
export function synthetic3dSample(opts: Synthetic3dOptions): Synthetic3dSample {
  const { width, height, seed, defects } = opts;
  const rnd = uniformStream(seed);
  const g: GridOptions = { width, height, spacing: 1 / Math.max(width, height) };
  const halfW = gridX(width - 1, g);
  const halfH = gridY(height - 1, g);
  const dents: { cx: number; cy: number; sigma: number; depth: number }[] = [];
  for (let k = 0; k < defects; k++) {
    const sigma = (0.02 + 0.02 * rnd()) * (width / Math.max(width, height));
    dents.push({
      cx: (rnd() - 0.5) * 1.2 * halfW,
      cy: (rnd() - 0.5) * 1.2 * halfH,
      sigma,
      depth: (k % 2 === 0 ? 1 : -1) * (0.6 + 0.4 * rnd()) * sigma,
    });
  }
  const tilt = (rnd() - 0.5) * 0.1;
  const nominal = (x: number, y: number) => 1 + tilt * x - 0.15 * Math.exp(-(x * x + y * y) / 0.08);
  const defect = (x: number, y: number) => dents.reduce((a, d) => a + gaussianDent(d.cx, d.cy, d.sigma, d.depth)(x, y), 0);
  const inside = (x: number, y: number) => (x / (0.9 * halfW)) ** 2 + (y / (0.9 * halfH)) ** 2 < 1;
  const pointCloud = renderPointCloud(g, (x, y) => (inside(x, y) ? nominal(x, y) + defect(x, y) : null));
  const n = width * height;
  const groundTruth = new Uint8Array(n);
  const raw = new Float32Array(n);
  const image = new Float32Array(3 * n);
  const phase = rnd() * 6.28;
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      const i = v * width + u;
      const x = gridX(u, g);
      const y = gridY(v, g);
      let peak = 0;
      for (const d of dents) {
        const e = Math.abs(gaussianDent(d.cx, d.cy, d.sigma, d.depth)(x, y));
        if (inside(x, y) && e > 0.25 * Math.abs(d.depth)) groundTruth[i] = 1;
        // The detector localizes coarsely: a peak twice as wide as the defect.
        peak = Math.max(peak, Math.exp(-((x - d.cx) ** 2 + (y - d.cy) ** 2) / (2 * (2 * d.sigma) ** 2)));
      }
      raw[i] = peak + 0.15 * rnd();
      // Texture: smooth stripes in colour, the same whether or not the surface is dented.
      const t = 0.5 + 0.2 * Math.sin(40 * x + phase) * Math.cos(30 * y) + 0.05 * (rnd() - 0.5);
      image[i] = inside(x, y) ? t : 0.1;
      image[n + i] = inside(x, y) ? 0.8 * t : 0.1;
      image[2 * n + i] = inside(x, y) ? 0.6 * t + 0.1 : 0.1;
    }
  }
  return {
    image: { data: image, width, height, channels: 3 },
    pointCloud,
    scoreMap: { data: raw, width, height },
    groundTruth,
  };
}
