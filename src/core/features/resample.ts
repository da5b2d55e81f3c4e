// Bilinear resampling of planar maps on the GPU (half-pixel centres, edges clamped), used for score
// maps and for feature maps of any resolution.

import type { Gpu, GpuArray } from '../gpu.ts';
import { groupsFor, kernels } from '../kernels.ts';

export function resampleBilinear(
  gpu: Gpu,
  src: GpuArray,
  planes: number,
  from: { width: number; height: number },
  to: { width: number; height: number },
): GpuArray {
  const dst = gpu.alloc(planes * to.width * to.height);
  gpu.run(
    kernels.bilinear,
    {
      srcW: from.width,
      srcH: from.height,
      dstW: to.width,
      dstH: to.height,
      planes,
      scaleX: from.width / to.width,
      scaleY: from.height / to.height,
    },
    { src, dst },
    groupsFor(planes * to.width),
  );
  return dst;
}

/**
 * The same bilinear resampling on the host, for the host path (an extractor's coarse maps come back small and
 * are resampled here instead of reading back the full-resolution planes): the GPU kernel's arithmetic in the
 * same order (f32 scales, each source row's horizontal interpolation `top`/`bottom` stored as f32, then the
 * vertical one), computed once per source row and reused for every output row between it and the next.
 * `src` is planar (planes x from.height x from.width); the result is planar at `to`, written into `out`
 * at `offset` when given.
 */
export function resampleBilinearHost(
  src: Float32Array,
  planes: number,
  from: { width: number; height: number },
  to: { width: number; height: number },
  out: Float32Array = new Float32Array(planes * to.width * to.height),
  offset = 0,
): Float32Array {
  const { width: sw, height: sh } = from;
  const { width: dw, height: dh } = to;
  const scaleX = Math.fround(sw / dw);
  const scaleY = Math.fround(sh / dh);
  const x0s = new Int32Array(dw);
  const x1s = new Int32Array(dw);
  const fxs = new Float32Array(dw);
  for (let x = 0; x < dw; x++) {
    const sx = Math.max(Math.fround(Math.fround((x + 0.5) * scaleX) - 0.5), 0);
    const x0 = Math.min(Math.floor(sx), sw - 1);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, sw - 1);
    fxs[x] = Math.fround(sx - x0);
  }
  // Horizontally interpolated source rows (sh x dw), each computed once.
  const rows = new Float32Array(sh * dw);
  for (let c = 0; c < planes; c++) {
    const base = c * sw * sh;
    for (let y = 0; y < sh; y++) {
      const r = base + y * sw;
      const o = y * dw;
      for (let x = 0; x < dw; x++) {
        const a = src[r + x0s[x]];
        rows[o + x] = a + Math.fround((src[r + x1s[x]] - a) * fxs[x]);
      }
    }
    let at = offset + c * dw * dh;
    for (let y = 0; y < dh; y++) {
      const sy = Math.max(Math.fround(Math.fround((y + 0.5) * scaleY) - 0.5), 0);
      const y0 = Math.min(Math.floor(sy), sh - 1);
      const y1 = Math.min(y0 + 1, sh - 1);
      const fy = Math.fround(sy - y0);
      const t0 = y0 * dw;
      const t1 = y1 * dw;
      for (let x = 0; x < dw; x++) {
        const top = rows[t0 + x];
        out[at + x] = top + Math.fround((rows[t1 + x] - top) * fy);
      }
      at += dw;
    }
  }
  return out;
}
