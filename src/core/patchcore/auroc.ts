// Area under the ROC curve of scores against binary labels: the probability that a positive scores above a
// negative, ties counting one half (the Mann-Whitney U statistic). Exact, by sorting each class once.

/** AUROC of positive and negative scores (each array is sorted in place). NaN when a class is empty. */
export function auroc(positives: Float32Array, negatives: Float32Array): number {
  if (positives.length === 0 || negatives.length === 0) return NaN;
  positives.sort();
  negatives.sort();
  let below = 0; // negatives strictly below the current positive
  let equal = 0; // negatives equal to it
  let sum = 0;
  for (let i = 0; i < positives.length; i++) {
    const p = positives[i];
    if (i === 0 || p !== positives[i - 1]) {
      below += equal;
      while (below < negatives.length && negatives[below] < p) below++;
      equal = 0;
      while (below + equal < negatives.length && negatives[below + equal] === p) equal++;
    }
    sum += below + equal / 2;
  }
  return sum / positives.length / negatives.length;
}

/** Splits a map's values by a same-sized 0/1 mask into positives and negatives. */
export function splitByMask(scores: Float32Array, mask: Uint8Array): { positives: Float32Array; negatives: Float32Array } {
  let n = 0;
  for (const m of mask) n += m ? 1 : 0;
  const positives = new Float32Array(n);
  const negatives = new Float32Array(mask.length - n);
  let p = 0;
  let q = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) positives[p++] = scores[i];
    else negatives[q++] = scores[i];
  }
  return { positives, negatives };
}
