// Per-group normalization of concatenated feature sources (features.groupNormalize): after every channel
// is standardized (zero mean, unit standard deviation over the image), the channels of a group of k
// channels are multiplied by 1 / sqrt(k). Each group then carries a total variance of 1, so that in the
// classifier's L2-regularized linear fit a source weighs by what it says, not by how many channels say it:
// a 3-channel colour group and a 320-channel network group start level (with unit channels, the network's
// many correlated channels would otherwise let it fit with small weights, which the regularizer favours).
// The GPU path applies the weight in the standardization kernel (per chunk: a group is made of whole
// chunks); the host path folds it into the standardization (sd * sqrt(k)).

import { TttError } from '../errors.ts';
import type { Standardization } from '../hostStage.ts';
import type { FeatureGroup } from '../types.ts';

/** The weight of every channel of a group of `channels` channels. */
export const groupWeight = (channels: number): number => 1 / Math.sqrt(channels);

function checkGroups(groups: readonly FeatureGroup[], channels: number): void {
  const total = groups.reduce((a, g) => a + g.channels, 0);
  if (total !== channels || groups.some((g) => !(g.channels >= 1))) {
    throw new TttError('INTERNAL', `feature groups cover ${total} channels (${groups.map((g) => `${g.name}: ${g.channels}`).join(', ')}), the features have ${channels}`);
  }
}

/** One weight per channel (all 1 without groups). */
export function channelWeights(groups: readonly FeatureGroup[] | undefined, channels: number): Float64Array {
  const w = new Float64Array(channels).fill(1);
  if (!groups) return w;
  checkGroups(groups, channels);
  let c0 = 0;
  for (const g of groups) {
    w.fill(groupWeight(g.channels), c0, c0 + g.channels);
    c0 += g.channels;
  }
  return w;
}

/** One weight per chunk; a chunk must lie inside one group (extractors concatenate whole chunks). */
export function chunkWeights(groups: readonly FeatureGroup[] | undefined, chunks: readonly { channels: number }[]): number[] {
  const channels = chunks.reduce((a, c) => a + c.channels, 0);
  const w = channelWeights(groups, channels);
  let c0 = 0;
  return chunks.map((chunk) => {
    const first = w[c0];
    for (let c = c0; c < c0 + chunk.channels; c++) {
      if (w[c] !== first) throw new TttError('INTERNAL', `feature chunk at channel ${c0} straddles two channel groups`);
    }
    c0 += chunk.channels;
    return first;
  });
}

/**
 * The standardization with group weights folded in: (x - mean) / (sd / w) = w (x - mean) / sd. Channels
 * whose sd is 0 (constant, which standardize to 0) keep it; only the first `channels` of the standardization
 * are the groups' (the rest, e.g. 3-D channels after the image's, keep theirs).
 */
export function weightStandardization(s: Standardization, groups: readonly FeatureGroup[] | undefined, channels: number): Standardization {
  if (!groups) return s;
  const w = channelWeights(groups, channels);
  const sd = Float64Array.from(s.sd);
  for (let c = 0; c < channels; c++) if (sd[c] > 1e-12) sd[c] /= w[c];
  return { mean: s.mean, sd };
}
