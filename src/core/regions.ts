// Connected components of a mask, with area, bounding box, centroid and the mean and max anomaly score of
// each region. On the CPU, after the mask is read back: measured in docs/benchmarks.md, a union-find pass
// over the read-back mask costs less than the dozens of full-image label-propagation passes a GPU version
// needs on these machines, and the mask must come back to the host anyway.

import type { Region } from './types.ts';

/**
 * Morphological closing of a binary mask in place: a dilation then an erosion by a (2r+1)^2 square, with
 * the window clipped at the image border (OpenCV's default border for both). Joins the pieces of one defect
 * that the per-pixel classifier split, without growing isolated regions.
 */
export function closeMask(mask: Uint8Array, width: number, height: number, radius: number): void {
  if (radius <= 0) return;
  const dilated = boxFilter(mask, width, height, radius, 'any');
  mask.set(boxFilter(dilated, width, height, radius, 'all'));
}

/** Per pixel, whether any (or all) of the clipped (2r+1)^2 window is set: separable running counts. */
function boxFilter(src: Uint8Array, width: number, height: number, r: number, rule: 'any' | 'all'): Uint8Array {
  const pass = (input: Uint8Array, len: number, lines: number, stride: number, step: number): Uint8Array => {
    const out = new Uint8Array(input.length);
    for (let l = 0; l < lines; l++) {
      const base = l * stride;
      let count = 0;
      for (let k = 0; k < Math.min(r, len - 1) + 1; k++) count += input[base + k * step] ? 1 : 0;
      for (let i = 0; i < len; i++) {
        const lo = Math.max(i - r, 0);
        const hi = Math.min(i + r, len - 1);
        out[base + i * step] = rule === 'any' ? (count > 0 ? 1 : 0) : count === hi - lo + 1 ? 1 : 0;
        if (i + r + 1 < len && input[base + (i + r + 1) * step]) count++;
        if (i - r >= 0 && input[base + (i - r) * step]) count--;
      }
    }
    return out;
  };
  return pass(pass(src, width, height, width, 1), height, width, 1, width);
}

/**
 * Fills the holes of a binary mask in place: clear pixels that no 4-connected path of clear pixels joins to
 * the image border (scipy's binary_fill_holes).
 */
export function fillHoles(mask: Uint8Array, width: number, height: number): void {
  const n = width * height;
  const outside = new Uint8Array(n);
  const stack = new Int32Array(n);
  let top = 0;
  const push = (i: number): void => {
    if (!mask[i] && !outside[i]) {
      outside[i] = 1;
      stack[top++] = i;
    }
  };
  for (let x = 0; x < width; x++) {
    push(x);
    push((height - 1) * width + x);
  }
  for (let y = 0; y < height; y++) {
    push(y * width);
    push(y * width + width - 1);
  }
  while (top > 0) {
    const i = stack[--top];
    const x = i % width;
    if (x > 0) push(i - 1);
    if (x < width - 1) push(i + 1);
    if (i >= width) push(i - width);
    if (i + width < n) push(i + width);
  }
  for (let i = 0; i < n; i++) if (!outside[i]) mask[i] = 1;
}

/**
 * The 4- or 8-connected components of `mask` (width x height, non-zero = set): a label per pixel (-1
 * clear), numbered in raster order of each component's first pixel, and their count. One union-find pass.
 */
export function componentLabels(mask: Uint8Array, width: number, height: number, connectivity: 4 | 8 = 8): { labels: Int32Array; count: number } {
  const n = width * height;
  // Defect masks are mostly empty: skip runs of four clear pixels at a time when aligned.
  const words = mask.byteOffset % 4 === 0 ? new Uint32Array(mask.buffer, mask.byteOffset, n >> 2) : null;
  const parent = new Int32Array(n);
  const find = (i: number): number => {
    let r = i;
    while (parent[r] !== r) r = parent[r];
    while (parent[i] !== r) {
      const next = parent[i];
      parent[i] = r;
      i = next;
    }
    return r;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra < rb) parent[rb] = ra;
    else if (rb < ra) parent[ra] = rb;
  };
  const clearWord = (i: number): boolean => words !== null && (i & 3) === 0 && i + 3 < n && words[i >> 2] === 0;
  for (let i = 0; i < n; i++) {
    if (clearWord(i)) {
      i += 3;
      continue;
    }
    if (!mask[i]) continue;
    const x = i % width;
    parent[i] = i;
    if (x > 0 && mask[i - 1]) union(i, i - 1);
    if (i >= width) {
      const up = i - width;
      if (mask[up]) union(i, up);
      if (connectivity === 8) {
        if (x > 0 && mask[up - 1]) union(i, up - 1);
        if (x < width - 1 && mask[up + 1]) union(i, up + 1);
      }
    }
  }
  // Roots are the smallest pixel index of each component, so raster order of roots = order of first pixels.
  const labels = new Int32Array(n).fill(-1);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (clearWord(i)) {
      i += 3;
      continue;
    }
    if (!mask[i]) continue;
    const r = find(i);
    labels[i] = r === i ? count++ : labels[r];
  }
  return { labels, count };
}

/**
 * Labels the 4- or 8-connected regions of `mask` (width x height, non-zero = set), in raster order of
 * their first pixel, and measures each. Regions under `minArea` are dropped and cleared in `mask`.
 */
export function connectedComponents(
  mask: Uint8Array,
  width: number,
  height: number,
  scores: Float32Array,
  connectivity: 4 | 8 = 8,
  minArea = 0,
): Region[] {
  const n = width * height;
  const { labels, count } = componentLabels(mask, width, height, connectivity);
  const acc = Array.from({ length: count }, () => ({ area: 0, x0: Infinity, y0: Infinity, x1: -1, y1: -1, sx: 0, sy: 0, ss: 0, mx: -Infinity }));
  for (let i = 0; i < n; i++) {
    const k = labels[i];
    if (k < 0) continue;
    const a = acc[k];
    const x = i % width;
    const y = (i - x) / width;
    const s = scores[i];
    a.area++;
    if (x < a.x0) a.x0 = x;
    if (x > a.x1) a.x1 = x;
    if (y < a.y0) a.y0 = y;
    if (y > a.y1) a.y1 = y;
    a.sx += x;
    a.sy += y;
    a.ss += s;
    if (s > a.mx) a.mx = s;
  }
  if (minArea > 0) {
    for (let i = 0; i < n; i++) if (labels[i] >= 0 && acc[labels[i]].area < minArea) mask[i] = 0;
  }
  const regions: Region[] = [];
  for (const a of acc) {
    if (a.area < minArea) continue;
    regions.push({
      id: regions.length + 1,
      area: a.area,
      bbox: { x: a.x0, y: a.y0, width: a.x1 - a.x0 + 1, height: a.y1 - a.y0 + 1 },
      centroid: { x: a.sx / a.area, y: a.sy / a.area },
      meanScore: a.ss / a.area,
      maxScore: a.mx,
    });
  }
  return regions;
}

/** The square dilation of a mask by a (2r+1)^2 window clipped at the border (a copy; r <= 0: unchanged). */
export function dilateMask(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  return radius <= 0 ? mask.slice() : boxFilter(mask, width, height, radius, 'any');
}

/**
 * The peak floors of the classifier's mask, per 8-connected component, on the map at the working resolution:
 * - mask.regionFraction: a component whose highest score is below floor + regionFraction x (the image's
 *   highest component peak - floor) goes (weak regions beside a strong defect);
 * - mask.peakFraction: in a compact component (its pixels at half its peak at most compactShare of the
 *   image; 0: every component), only the pixels at least floor + fraction x (its peak - floor) stay: the
 *   extent follows the component's own peak, near the half-maximum contour where a small defect's blurred
 *   peak has its edge; a wide component (a large defect, a low band) stays whole.
 * A floor of -Infinity (no calibration) counts from each component's lowest score (the region cut from the
 * lowest of them).
 */
export function peakFloorMask(mask: Uint8Array, scores: Float32Array, width: number, height: number, floor: number, fraction: number, compactShare = 0, regionFraction = 0): Uint8Array {
  if (fraction <= 0 && regionFraction <= 0) return mask;
  const comp = componentLabels(mask, width, height);
  const peak = new Float64Array(comp.count).fill(-Infinity);
  const low = new Float64Array(comp.count).fill(Infinity);
  for (let i = 0; i < mask.length; i++) {
    const k = comp.labels[i];
    if (k < 0) continue;
    if (scores[i] > peak[k]) peak[k] = scores[i];
    if (scores[i] < low[k]) low[k] = scores[i];
  }
  const baseOf = (k: number) => (Number.isFinite(floor) ? Math.min(floor, low[k]) : low[k]);
  // Each component's area at half its peak: a compact peak (a small defect) gets the fraction, a wide one stays whole.
  const half = new Float64Array(comp.count);
  for (let i = 0; i < mask.length; i++) {
    const k = comp.labels[i];
    if (k >= 0 && scores[i] >= baseOf(k) + 0.5 * (peak[k] - baseOf(k))) half[k]++;
  }
  const compactArea = compactShare > 0 ? compactShare * mask.length : Infinity;
  // mask.regionFraction: a component whose peak is below this fraction of the way from the floor to the
  // image's highest peak goes.
  let top = -Infinity;
  let bottom = Infinity;
  for (let k = 0; k < comp.count; k++) {
    top = Math.max(top, peak[k]);
    bottom = Math.min(bottom, baseOf(k));
  }
  const regionCut = regionFraction > 0 ? bottom + regionFraction * (top - bottom) : -Infinity;
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) {
    const k = comp.labels[i];
    if (k < 0 || peak[k] < regionCut) continue;
    const base = baseOf(k);
    out[i] = fraction <= 0 || half[k] > compactArea || scores[i] >= base + fraction * (peak[k] - base) ? 1 : 0;
  }
  return out;
}
