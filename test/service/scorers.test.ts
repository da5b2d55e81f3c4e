// The processor's cache of loaded built-in scorers: one load per product and bank version, a new version
// replaces the old scorer, and at most MAX_LOADED_BANKS stay loaded (least recently used released first).

import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { BANK_VERSION, encodeBank, type MemoryBank } from '../../src/core/patchcore/bank.ts';
import { PATCHCORE_DEFAULTS } from '../../src/core/patchcore/patchcore.ts';
import { pcgHash } from '../../src/core/rng.ts';
import { registerMobileNet } from '../../src/models/nsfwjs.ts';
import { configFromEnv } from '../../src/service/config.ts';
import { createScorerCache, MAX_LOADED_BANKS, type StoredBank } from '../../src/processing/scorers.ts';
import { testGpu } from '../helpers/gpu.ts';

const CHANNELS = 152;

/** A small bank of the default layers' width (the scorer checks it against the network). */
function bank(seed: number, patches = 16): Uint8Array {
  const features = Float32Array.from({ length: patches * CHANNELS }, (_, i) => pcgHash((i * 2654435761 + seed) >>> 0) / 4294967296);
  const b: MemoryBank = {
    header: { ...PATCHCORE_DEFAULTS, version: BANK_VERSION, backbone: 'mobilenetv2', weights: 'test', layers: ['block_2_add', 'block_5_add', 'block_12_add'], patches, channels: CHANNELS, images: 1, sourcePatches: patches, geometryScales: [], rgbChannels: CHANNELS, geometryChannels: 0, normalization: null },
    features,
  };
  return encodeBank(b);
}

describe('scorer cache', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    registerMobileNet();
    gpu = await testGpu();
  });

  it('loads once per version, replaces on a new version, and keeps the most recently used banks', async () => {
    const cache = createScorerCache();
    const reads: string[] = [];
    const stored = new Map<string, StoredBank>();
    const read = (id: string) => async () => {
      reads.push(id);
      return stored.get(id)!;
    };
    stored.set('a', { bytes: bank(1), version: 1 });
    const a1 = await cache.get(gpu, 'a', 1, read('a'));
    expect(await cache.get(gpu, 'a', 1, read('a'))).toBe(a1);
    expect(reads).toEqual(['a']);

    // A newer bank: read again, a new scorer of the new bank.
    stored.set('a', { bytes: bank(2, 24), version: 2 });
    const a2 = await cache.get(gpu, 'a', 2, read('a'));
    expect(a2).not.toBe(a1);
    expect(a2.header.patches).toBe(24);
    // A job that read the product before the change asks for version 1: the read finds version 2, loaded.
    expect(await cache.get(gpu, 'a', 1, read('a'))).toBe(a2);
    expect(reads).toEqual(['a', 'a', 'a']);

    // More products than the cache holds: the least recently used one ('b') is dropped, 'a' (used last) stays.
    for (let k = 0; k < MAX_LOADED_BANKS; k++) stored.set(`p${k}`, { bytes: bank(10 + k), version: 1 });
    stored.set('b', { bytes: bank(3), version: 1 });
    await cache.get(gpu, 'b', 1, read('b'));
    await cache.get(gpu, 'a', 2, read('a'));
    for (let k = 0; k < MAX_LOADED_BANKS - 1; k++) await cache.get(gpu, `p${k}`, 1, read(`p${k}`));
    reads.length = 0;
    expect(await cache.get(gpu, 'a', 2, read('a'))).toBe(a2);
    await cache.get(gpu, 'b', 1, read('b'));
    expect(reads).toEqual(['b']);
    cache.clear();
  });

  it('drops the scorers of a previous device', async () => {
    const cache = createScorerCache();
    const stored: StoredBank = { bytes: bank(4), version: 7 };
    let reads = 0;
    const read = async () => (reads++, stored);
    const first = await cache.get(gpu, 'a', 7, read);
    // Another Gpu wrapper around the same device stands in for the device acquired after a loss.
    const other = Object.create(gpu) as Gpu;
    const second = await cache.get(other, 'a', 7, read);
    expect(second).not.toBe(first);
    expect(reads).toBe(2);
    cache.clear();
  });
});

describe('SCORER_BACKBONE', () => {
  it('selects the network of new banks: resnet50 by default, or mobilenetv2; anything else is refused', () => {
    expect(configFromEnv({}).scorerBackbone).toBe('resnet50');
    expect(configFromEnv({ SCORER_BACKBONE: 'mobilenetv2' }).scorerBackbone).toBe('mobilenetv2');
    expect(() => configFromEnv({ SCORER_BACKBONE: 'vgg16' })).toThrow(/SCORER_BACKBONE must be mobilenetv2 or resnet50, got "vgg16"/);
  });
});
