// MEBin ("Main Element Binarization", AnomalyNCD, Huang et al., CVPR 2025): a per-image threshold where the
// number of connected components of the eroded binary map stays stable longest while the threshold sweeps
// from high to low. Followed: HUST-SLOW/AnomalyNCD models/modules/_MEBin.py (MEBin.get_threshold,
// bin_and_erode, binarize_anomaly_maps; read from the public copy xzwsloser/AnomalyNCD at commit 39018a98)
// with the parameters of its configs/AnomalyNCD.yaml ("the results from the paper"): sample_rate 4,
// min_interval_len 4, erode true (6x6 all-ones kernel, one iteration), 8-connected components. As there,
// the final mask is eroded too. Deviations, because we binarize one float map per call:
// - The source's search range is [min, max] of the per-image maxima of a whole test set; for one map that
//   range is empty, and like anomalib's port (post_processing/mebin.py, identical peaks) we fall back to
//   the map's own [min, max]. So nothing lies below the range and the source's clip-to-0 never applies.
// - The source truncates the mapped-back threshold with int() (its maps are 8-bit images); float scores
//   keep the exact value t_norm * (max - min) / 255 + min.
// - No stable interval: the source returns 255 on the 8-bit map (an empty mask); we return the map's
//   maximum, which gives the same empty mask.
// Erosion commutes with thresholding (erode(v > t) = erode(v) > t, as erosion is a minimum filter and the
// normalization is monotone), so the map is eroded once, not once per threshold; and because the masks of
// a descending sweep are nested, one union-find pass that adds pixels as the threshold falls counts the
// components at all 64 thresholds (O(N), against 64 full labellings).

/** The published parameters (configs/AnomalyNCD.yaml, the kernel in bin_and_erode). */
export const MEBIN = {
  /** Threshold step in the [0, 255] normalized range: thresholds 255, 251, ..., 3. */
  sampleRate: 4,
  /** A count must hold for at least this many consecutive thresholds. */
  minIntervalLen: 4,
  /** cv2.erode with a 6x6 kernel anchored at (3, 3): the window covers offsets -3..+2 in x and y. */
  erodeLo: -3,
  erodeHi: 2,
} as const;

/** The normalized thresholds of the sweep, high to low (Python's range(255, 0, -sample_rate)). */
export const sweepThresholds = (): number[] => {
  const out: number[] = [];
  for (let t = 255; t > 0; t -= MEBIN.sampleRate) out.push(t);
  return out;
};

/**
 * Number of 8-connected components of {p : norm(eroded[p]) > t} for each sweep threshold t, where
 * norm(v) = (v - min) / (max - min) * 255 and [min, max] is the range of the map before erosion.
 */
export function sweepComponentCounts(eroded: Float32Array, width: number, height: number, min: number, max: number): number[] {
  const thresholds = sweepThresholds();
  const steps = thresholds.length;
  const n = width * height;
  const range = max - min;
  // The sweep step at which each pixel joins the mask (steps = never).
  const joins = new Int32Array(n);
  const bucketSize = new Int32Array(steps + 1);
  for (let i = 0; i < n; i++) {
    const v = ((eroded[i] - min) / range) * 255;
    let k = Math.min(steps, Math.max(0, Math.floor((255 - v) / MEBIN.sampleRate) + 1));
    // Settle the rounding of the estimate against the comparison itself.
    while (k > 0 && v > thresholds[k - 1]) k--;
    while (k < steps && !(v > thresholds[k])) k++;
    joins[i] = k;
    bucketSize[k]++;
  }
  const start = new Int32Array(steps + 2);
  for (let k = 0; k <= steps; k++) start[k + 1] = start[k] + bucketSize[k];
  const order = new Int32Array(n);
  const fill = start.slice(0, steps + 1);
  for (let i = 0; i < n; i++) order[fill[joins[i]]++] = i;

  const parent = new Int32Array(n).fill(-1);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  };
  let components = 0;
  const link = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra === rb) return;
    if (ra < rb) parent[rb] = ra;
    else parent[ra] = rb;
    components--;
  };
  const counts: number[] = [];
  for (let k = 0; k < steps; k++) {
    for (let j = start[k]; j < start[k + 1]; j++) {
      const p = order[j];
      parent[p] = p;
      components++;
      const x = p % width;
      const y = (p - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if ((dx === 0 && dy === 0) || xx < 0 || xx >= width) continue;
          const q = yy * width + xx;
          if (parent[q] >= 0) link(p, q);
        }
      }
    }
    counts.push(components);
  }
  return counts;
}

/**
 * The sweep index the threshold is taken from, or null when no stable interval exists. As get_threshold:
 * runs of one non-zero count at least minIntervalLen long; the count whose longest run is longest wins
 * (ties: the count seen first, i.e. at the higher threshold); among that count's runs the longest (ties:
 * the last); its last index (the lowest threshold of the run) is the answer.
 */
export function stableIntervalEnd(counts: readonly number[], minIntervalLen: number = MEBIN.minIntervalLen): number | null {
  const runs = new Map<number, [number, number][]>();
  let i = 0;
  while (i < counts.length) {
    let end = i;
    while (end + 1 < counts.length && counts[end + 1] === counts[i]) end++;
    if (counts[i] !== 0 && end - i + 1 >= minIntervalLen) {
      const list = runs.get(counts[i]) ?? [];
      list.push([i, end]);
      runs.set(counts[i], list);
    }
    i = end + 1;
  }
  let best: [number, number][] | null = null;
  let bestLen = -1;
  for (const list of runs.values()) {
    const len = Math.max(...list.map(([s, e]) => e - s));
    if (len > bestLen) {
      bestLen = len;
      best = list;
    }
  }
  if (!best) return null;
  let chosen = best[0];
  for (const r of best) if (r[1] - r[0] >= chosen[1] - chosen[0]) chosen = r;
  return chosen[1];
}

export interface MebinChoice {
  /** The threshold in score units (before the f32 rounding the mask comparison applies). */
  threshold: number;
  /** The stable component count (the source's est_anomaly_num); 0 when no interval was found. */
  components: number;
  /** Component counts along the sweep, for reports and tests. */
  counts: number[];
}

/** Chooses the MEBin threshold from the eroded map and the [min, max] range of the map before erosion. */
export function mebinThreshold(eroded: Float32Array, width: number, height: number, min: number, max: number): MebinChoice {
  const counts = sweepComponentCounts(eroded, width, height, min, max);
  const end = stableIntervalEnd(counts);
  if (end === null) return { threshold: max, components: 0, counts };
  const normalized = 255 - end * MEBIN.sampleRate;
  return { threshold: (normalized * (max - min)) / 255 + min, components: counts[end], counts };
}
