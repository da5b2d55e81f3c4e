// Which pixels carry a measurement. An organized point cloud has holes (no depth: (0, 0, 0) or NaN); those
// pixels are masked out everywhere: never pseudo-labels, never in a mask, not in the statistics of the map
// or of the 3-D features, not in the evaluation's counts. The mask is computed on the host (NaN tests are
// not reliable in WGSL, which may assume finite floats) and travels to the GPU packed 4 pixels per u32.

import type { Gpu, GpuArray, KernelSpec } from './gpu.ts';
import type { PointCloud } from './types.ts';

/** 1 where the point is measured: finite coordinates, not all zero. */
export function pointValidity(pc: PointCloud): Uint8Array {
  const n = pc.width * pc.height;
  const valid = new Uint8Array(n);
  const d = pc.data;
  for (let i = 0; i < n; i++) {
    const x = d[3 * i];
    const y = d[3 * i + 1];
    const z = d[3 * i + 2];
    valid[i] = Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z) && (x !== 0 || y !== 0 || z !== 0) ? 1 : 0;
  }
  return valid;
}

/**
 * The validity at another resolution: a pixel is valid when every source pixel its bilinear sample reads
 * (the same taps as shaders/features.wgsl `bilinear`) is valid, so no resampled value mixes in a hole.
 */
export function resampleValidity(
  valid: Uint8Array,
  from: { width: number; height: number },
  to: { width: number; height: number },
): Uint8Array {
  if (from.width === to.width && from.height === to.height) return valid;
  const out = new Uint8Array(to.width * to.height);
  const scaleX = Math.fround(from.width / to.width);
  const scaleY = Math.fround(from.height / to.height);
  const taps = (i: number, scale: number, size: number): [number, number] => {
    const s = Math.max(Math.fround(Math.fround(Math.fround(i + 0.5) * scale) - 0.5), 0);
    const a = Math.min(Math.floor(s), size - 1);
    return [a, Math.min(a + 1, size - 1)];
  };
  for (let y = 0; y < to.height; y++) {
    const [y0, y1] = taps(y, scaleY, from.height);
    for (let x = 0; x < to.width; x++) {
      const [x0, x1] = taps(x, scaleX, from.width);
      const w = from.width;
      out[y * to.width + x] = valid[y0 * w + x0] & valid[y0 * w + x1] & valid[y1 * w + x0] & valid[y1 * w + x1];
    }
  }
  return out;
}

export function countValid(valid: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < valid.length; i++) n += valid[i] ? 1 : 0;
  return n;
}

/**
 * The validity on the GPU: one byte per pixel (0 or 1), 4 pixels per u32, as the packed masks. Kernels
 * read it only when compiled with MASKED = 1; unmasked runs bind the device's one-element `noValidity`
 * buffer, which those kernels never read.
 */
export interface GpuValidity {
  readonly data: GpuArray;
  readonly masked: boolean;
}

const unmasked = new WeakMap<Gpu, GpuValidity>();

/** The validity of a run without holes: one buffer per device, shared and never released. */
export function noValidity(gpu: Gpu): GpuValidity {
  let v = unmasked.get(gpu);
  if (!v) unmasked.set(gpu, (v = { data: gpu.alloc(1), masked: false }));
  return v;
}

/** Uploads a validity mask (null: `noValidity`); give it back with `releaseValidity`. */
export function uploadValidity(gpu: Gpu, valid: Uint8Array | null | undefined): GpuValidity {
  if (!valid) return noValidity(gpu);
  const words = new Uint32Array(Math.ceil(valid.length / 4));
  const bytes = new Uint8Array(words.buffer);
  for (let i = 0; i < valid.length; i++) bytes[i] = valid[i] ? 1 : 0;
  return { data: gpu.upload(words), masked: true };
}

/** Releases an uploaded mask (the shared `noValidity` buffer stays). */
export function releaseValidity(gpu: Gpu, v: GpuValidity): void {
  if (v.masked) gpu.release(v.data);
}

/** The masked or unmasked variant of a kernel (a compile-time constant: two pipelines). */
export function maskedSpec(spec: KernelSpec, validity: GpuValidity | null | undefined): KernelSpec {
  return { ...spec, constants: { ...spec.constants, MASKED: validity?.masked ? 1 : 0 } };
}
