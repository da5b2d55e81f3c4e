// Pixel metrics of binary masks against ground truth. Pure functions; masks are width x height bytes,
// non-zero = defective.

export interface Confusion {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

export interface PixelMetrics {
  precision: number;
  recall: number;
  f1: number;
  iou: number;
}

/** Confusion counts of a predicted mask against a ground-truth mask of the same length. */
export function confusion(pred: Uint8Array, truth: Uint8Array, valid?: Uint8Array): Confusion {
  if (pred.length !== truth.length) throw new Error(`mask lengths differ: ${pred.length} vs ${truth.length}`);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  for (let i = 0; i < pred.length; i++) {
    if (valid && !valid[i]) continue;
    const p = pred[i] !== 0;
    const t = truth[i] !== 0;
    if (p && t) tp++;
    else if (p) fp++;
    else if (t) fn++;
    else tn++;
  }
  return { tp, fp, fn, tn };
}

export function addConfusion(a: Confusion, b: Confusion): Confusion {
  return { tp: a.tp + b.tp, fp: a.fp + b.fp, fn: a.fn + b.fn, tn: a.tn + b.tn };
}

/**
 * Precision, recall, F1 and IoU. With no predicted positives precision is 1 when there is nothing to find
 * and 0 otherwise; likewise recall with no true positives to find: an empty prediction of an empty truth
 * scores 1 everywhere.
 */
export function pixelMetrics(c: Confusion): PixelMetrics {
  const predicted = c.tp + c.fp;
  const actual = c.tp + c.fn;
  if (predicted === 0 && actual === 0) return { precision: 1, recall: 1, f1: 1, iou: 1 };
  const precision = predicted === 0 ? 0 : c.tp / predicted;
  const recall = actual === 0 ? 0 : c.tp / actual;
  const f1 = (2 * c.tp) / (2 * c.tp + c.fp + c.fn);
  const iou = c.tp / (c.tp + c.fp + c.fn);
  return { precision, recall, f1, iou };
}

/** Mean of per-image metrics. */
export function meanMetrics(list: readonly PixelMetrics[]): PixelMetrics {
  const n = Math.max(1, list.length);
  const sum = (k: keyof PixelMetrics) => list.reduce((a, m) => a + m[k], 0) / n;
  return { precision: sum('precision'), recall: sum('recall'), f1: sum('f1'), iou: sum('iou') };
}
