// The built-in scorers of BUILTIN products, loaded on the GPU once per process and bank version: a job
// scores with the cached scorer while its product's bank is unchanged, and a new bank replaces (and
// releases) the old one. Used only inside `withGpu`, so loading, scoring and releasing never overlap.

import type { Gpu } from '../core/gpu.ts';
import { decodeBank } from '../core/patchcore/bank.ts';
import { PatchCoreScorer } from '../core/patchcore/patchcore.ts';

/** Banks kept on the GPU at once; the least recently used one is released beyond this. */
export const MAX_LOADED_BANKS = 4;

export interface StoredBank {
  /** encodeBank() bytes. */
  bytes: Uint8Array;
  /** Identifies the bank's version (the product's updatedAt when the bank was read). */
  version: number;
}

export interface ScorerCache {
  /**
   * The scorer of `productId`'s bank at `version`; on a miss `read` fetches the stored bank, which is
   * loaded and cached under the version read with it.
   */
  get(gpu: Gpu, productId: string, version: number, read: () => Promise<StoredBank>): Promise<PatchCoreScorer>;
  /** Releases every loaded bank. */
  clear(): void;
}

export function createScorerCache(): ScorerCache {
  // Map order is recency order: a hit is re-inserted at the end.
  const loaded = new Map<string, { version: number; scorer: PatchCoreScorer }>();
  let device: Gpu | null = null;

  const drop = (productId: string) => {
    loaded.get(productId)?.scorer.release();
    loaded.delete(productId);
  };

  return {
    async get(gpu, productId, version, read) {
      if (device !== gpu) {
        // A new device (after a loss): the old device's buffers are gone with it.
        loaded.clear();
        device = gpu;
      }
      const hit = loaded.get(productId);
      if (hit && hit.version === version) {
        loaded.delete(productId);
        loaded.set(productId, hit);
        return hit.scorer;
      }
      const stored = await read();
      const current = loaded.get(productId);
      if (current && current.version === stored.version) return current.scorer;
      drop(productId);
      const scorer = await PatchCoreScorer.load(gpu, decodeBank(stored.bytes, 'the product\'s memory bank'));
      loaded.set(productId, { version: stored.version, scorer });
      while (loaded.size > MAX_LOADED_BANKS) drop(loaded.keys().next().value!);
      return scorer;
    },
    clear() {
      for (const id of [...loaded.keys()]) drop(id);
    },
  };
}
