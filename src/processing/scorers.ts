// The built-in scorers of BUILTIN products, loaded on the GPU once per process and bank version: a job
// scores with the cached scorer while its product's bank is unchanged, and a new bank replaces (and
// releases) the old one. Used only inside `withGpu`, so loading, scoring and releasing never overlap.
// Bounded in banks (SCORER_CACHE_BANKS) and in the device bytes the loaded banks hold (SCORER_CACHE_MB):
// the least recently used are released first, before a new bank is loaded (its file's size standing for
// what it will hold) and again after; the bank a job needs is always loaded, even alone over the bound.

import { TttError } from '../core/errors.ts';
import type { Gpu } from '../core/gpu.ts';
import { decodeBank } from '../core/patchcore/bank.ts';
import { PatchCoreScorer } from '../core/patchcore/patchcore.ts';
import { DEFAULT_SCORER_CACHE, type ScorerCacheBounds } from '../service/config.ts';

/** Banks kept on the GPU at once by default (SCORER_CACHE_BANKS); the least recently used one is released beyond this. */
export const MAX_LOADED_BANKS = DEFAULT_SCORER_CACHE.banks;

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
  /** The banks loaded now and the device bytes they hold. */
  readonly usage: { banks: number; bytes: number };
}

export function createScorerCache(bounds: ScorerCacheBounds = DEFAULT_SCORER_CACHE): ScorerCache {
  if (!(Number.isInteger(bounds.banks) && bounds.banks >= 1)) throw new TttError('INVALID_OPTION', `a scorer cache of ${bounds.banks} banks (expected at least 1)`);
  if (!(bounds.bytes > 0)) throw new TttError('INVALID_OPTION', `a scorer cache of ${bounds.bytes} bytes (expected more than 0)`);
  // Map order is recency order: a hit is re-inserted at the end.
  const loaded = new Map<string, { version: number; scorer: PatchCoreScorer; bytes: number }>();
  let device: Gpu | null = null;
  let held = 0;

  const drop = (productId: string) => {
    const entry = loaded.get(productId);
    if (!entry) return;
    entry.scorer.release();
    held -= entry.bytes;
    loaded.delete(productId);
  };
  /** Releases the least recently used banks until `banks` more banks and `bytes` more bytes fit (or none is left). */
  const makeRoom = (banks: number, bytes: number) => {
    while (loaded.size > 0 && (loaded.size + banks > bounds.banks || held + bytes > bounds.bytes)) drop(loaded.keys().next().value!);
  };

  return {
    async get(gpu, productId, version, read) {
      if (device !== gpu) {
        // A new device (after a loss): the old device's buffers are gone with it.
        loaded.clear();
        held = 0;
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
      makeRoom(1, stored.bytes.length);
      const scorer = await PatchCoreScorer.load(gpu, decodeBank(stored.bytes, 'the product\'s memory bank'));
      const bytes = scorer.deviceBytes;
      makeRoom(1, bytes);
      loaded.set(productId, { version: stored.version, scorer, bytes });
      held += bytes;
      return scorer;
    },
    clear() {
      for (const id of [...loaded.keys()]) drop(id);
    },
    get usage() {
      return { banks: loaded.size, bytes: held };
    },
  };
}
