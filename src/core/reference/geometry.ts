// Reference of the 3-D features (shaders/geometry.wgsl, features/geometry.ts) in f64 with f32 storage:
// the same plane fit, windows, eigen-solution, orientation and channel order.

import {
  GEOMETRY_SCALE_CHANNELS,
  geometryChannels,
  geometryWindow,
  solvePlane,
  type BackgroundPlane,
  type PreparedPointCloud,
} from '../features/geometry.ts';
import type { FeatureTensor } from '../types.ts';
import { resampleValidity } from '../validity.ts';
import { referenceBilinear, referenceStandardize } from './features.ts';

/** The least-squares background plane over the valid points, relative to the origin. */
export function referencePlane(pc: PreparedPointCloud): BackgroundPlane {
  const n = pc.width * pc.height;
  const s = new Float64Array(9);
  const [ox, oy, oz] = pc.origin;
  for (let i = 0; i < n; i++) {
    if (!pc.valid[i]) continue;
    const x = pc.points[i] - ox;
    const y = pc.points[n + i] - oy;
    const z = pc.points[2 * n + i] - oz;
    s[0] += 1;
    s[1] += x;
    s[2] += y;
    s[3] += z;
    s[4] += x * x;
    s[5] += x * y;
    s[6] += y * y;
    s[7] += x * z;
    s[8] += y * z;
  }
  return solvePlane(s);
}

/**
 * The eigenvector of the smallest eigenvalue of a symmetric 3x3 matrix (trace 1) and that eigenvalue,
 * by the trigonometric formula, the largest cross product of two rows of A - l0 I, and its Rayleigh quotient.
 */
export function smallestEigen(a00: number, a01: number, a02: number, a11: number, a12: number, a22: number): { v: [number, number, number]; l0: number } {
  const p1 = a01 * a01 + a02 * a02 + a12 * a12;
  let l0: number;
  if (p1 <= 1e-20) {
    l0 = Math.min(a00, a11, a22);
  } else {
    const q = (a00 + a11 + a22) / 3;
    const b00 = a00 - q;
    const b11 = a11 - q;
    const b22 = a22 - q;
    const p = Math.sqrt((b00 * b00 + b11 * b11 + b22 * b22 + 2 * p1) / 6);
    const det = b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02) + a02 * (a01 * a12 - b11 * a02);
    const r = Math.min(1, Math.max(-1, det / (2 * p * p * p)));
    l0 = q + 2 * p * Math.cos(Math.acos(r) / 3 + (2 * Math.PI) / 3);
  }
  const r0 = [a00 - l0, a01, a02];
  const r1 = [a01, a11 - l0, a12];
  const r2 = [a02, a12, a22 - l0];
  const cross = (u: number[], w: number[]): [number, number, number] => [u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]];
  let best: [number, number, number] = [0, 0, 0];
  let bestNorm = 0;
  for (const c of [cross(r0, r1), cross(r0, r2), cross(r1, r2)]) {
    const d = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
    if (d > bestNorm) {
      best = c;
      bestNorm = d;
    }
  }
  if (bestNorm <= 1e-30) return { v: [0, 0, 0], l0: Math.max(l0, 0) };
  const k = 1 / Math.sqrt(bestNorm);
  const u: [number, number, number] = [best[0] * k, best[1] * k, best[2] * k];
  // The Rayleigh quotient, as the shader (which needs it for precision).
  const q0 = a00 * u[0] + a01 * u[1] + a02 * u[2];
  const q1 = a01 * u[0] + a11 * u[1] + a12 * u[2];
  const q2 = a02 * u[0] + a12 * u[1] + a22 * u[2];
  return { v: u, l0: Math.max(u[0] * q0 + u[1] * q1 + u[2] * q2, 0) };
}

/** The raw 3-D channels at the point cloud's resolution (geometryChannelsRaw). */
export function referenceGeometryRaw(pc: PreparedPointCloud, scales: readonly number[], working: { width: number; height: number }): FeatureTensor {
  const { width, height, valid, points } = pc;
  const n = width * height;
  const channels = geometryChannels(scales);
  const out = new Float32Array(channels * n);
  const plane = referencePlane(pc);
  const [ox, oy, oz] = pc.origin;
  const rel = (i: number): [number, number, number] => [
    Math.fround(points[i] - ox),
    Math.fround(points[n + i] - oy),
    Math.fround(points[2 * n + i] - oz),
  ];
  const dist = (q: [number, number, number]) => (q[2] - plane.a * q[0] - plane.b * q[1] - plane.c) * plane.inv;
  for (let i = 0; i < n; i++) if (valid[i]) out[i] = dist(rel(i));
  scales.forEach((scale, k) => {
    const { radius: r, step } = geometryWindow(scale, pc, working);
    const base = (1 + k * GEOMETRY_SCALE_CHANNELS.length) * n;
    const neighbours = (x: number, y: number, visit: (q: number) => void) => {
      for (let dy = -r; dy <= r; dy++) {
        const yy = y + dy * step;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -r; dx <= r; dx++) {
          const xx = x + dx * step;
          if (xx < 0 || xx >= width) continue;
          const q = yy * width + xx;
          if (valid[q]) visit(q);
        }
      }
    };
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        if (!valid[i]) continue;
        const c = rel(i);
        const hc = dist(c);
        let cnt = 0;
        const s = [0, 0, 0];
        const m2 = [0, 0, 0, 0, 0, 0]; // xx xy xz yy yz zz
        let sh = 0;
        let shh = 0;
        neighbours(x, y, (q) => {
          const qr = rel(q);
          const d = [qr[0] - c[0], qr[1] - c[1], qr[2] - c[2]];
          cnt++;
          s[0] += d[0];
          s[1] += d[1];
          s[2] += d[2];
          m2[0] += d[0] * d[0];
          m2[1] += d[0] * d[1];
          m2[2] += d[0] * d[2];
          m2[3] += d[1] * d[1];
          m2[4] += d[1] * d[2];
          m2[5] += d[2] * d[2];
          const dh = dist(qr) - hc;
          sh += dh;
          shh += dh * dh;
        });
        if (cnt < 3) continue;
        const m = s.map((v) => v / cnt);
        const a00 = m2[0] / cnt - m[0] * m[0];
        const a01 = m2[1] / cnt - m[0] * m[1];
        const a02 = m2[2] / cnt - m[0] * m[2];
        const a11 = m2[3] / cnt - m[1] * m[1];
        const a12 = m2[4] / cnt - m[1] * m[2];
        const a22 = m2[5] / cnt - m[2] * m[2];
        const tr = a00 + a11 + a22;
        if (tr > 0) {
          const e = smallestEigen(a00 / tr, a01 / tr, a02 / tr, a11 / tr, a12 / tr, a22 / tr);
          let v = e.v;
          if (v[0] * points[i] + v[1] * points[n + i] + v[2] * points[2 * n + i] > 0) v = [-v[0], -v[1], -v[2]];
          out[base + i] = v[0];
          out[base + n + i] = v[1];
          out[base + 2 * n + i] = v[2];
          out[base + 3 * n + i] = e.l0;
        }
        const mh = sh / cnt;
        out[base + 4 * n + i] = Math.sqrt(Math.max(shh / cnt - mh * mh, 0));
      }
    }
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        if (!valid[i]) continue;
        let cnt = 0;
        const s = [0, 0, 0];
        neighbours(x, y, (q) => {
          s[0] += out[base + q];
          s[1] += out[base + n + q];
          s[2] += out[base + 2 * n + q];
          cnt++;
        });
        out[base + 5 * n + i] = Math.max(1 - Math.hypot(s[0] / cnt, s[1] / cnt, s[2] / cnt), 0);
      }
    }
  });
  return { data: out, channels, width, height };
}

/** The 3-D features at the working resolution, standardized over the valid pixels (geometryFeatures). */
export function referenceGeometryFeatures(
  pc: PreparedPointCloud,
  working: { width: number; height: number },
  scales: readonly number[],
): { features: FeatureTensor; valid: Uint8Array } {
  const raw = referenceGeometryRaw(pc, scales, working);
  const same = pc.width === working.width && pc.height === working.height;
  const data = same ? raw.data : referenceBilinear(raw.data, raw.channels, pc, working);
  const valid = resampleValidity(pc.valid, pc, working);
  return { features: referenceStandardize({ data, channels: raw.channels, width: working.width, height: working.height }, valid), valid };
}
