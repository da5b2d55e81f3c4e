// The processor's cache of loaded built-in scorers: one load per product and bank version, a new version
// replaces the old scorer, and at most MAX_LOADED_BANKS stay loaded (least recently used released first).

import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { BANK_VERSION, encodeBank, type MemoryBank } from '../../src/core/patchcore/bank.ts';
import { PATCHCORE_DEFAULTS } from '../../src/core/patchcore/patchcore.ts';
import { pcgHash } from '../../src/core/rng.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';
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

describe('scorer cache bounds', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    registerMobileNet();
    gpu = await testGpu();
  });
  const stored = (seed: number, patches = 16): StoredBank => ({ bytes: bank(seed, patches), version: 1 });

  it('holds at most SCORER_CACHE_BANKS banks, releasing the least recently used', async () => {
    const cache = createScorerCache({ banks: 2, bytes: 1 << 30 });
    const reads: string[] = [];
    const read = (id: string, seed: number) => async () => (reads.push(id), stored(seed));
    await cache.get(gpu, 'a', 1, read('a', 1));
    await cache.get(gpu, 'b', 1, read('b', 2));
    await cache.get(gpu, 'a', 1, read('a', 1)); // 'b' is now the least recently used
    await cache.get(gpu, 'c', 1, read('c', 3));
    expect(cache.usage.banks).toBe(2);
    reads.length = 0;
    await cache.get(gpu, 'a', 1, read('a', 1));
    await cache.get(gpu, 'c', 1, read('c', 3));
    expect(reads).toEqual([]);
    await cache.get(gpu, 'b', 1, read('b', 2));
    expect(reads).toEqual(['b']);
    cache.clear();
    expect(cache.usage).toEqual({ banks: 0, bytes: 0 });
  });

  it('holds at most SCORER_CACHE_MB of device memory, and still loads a bank that alone is over it', async () => {
    // One bank of 64 rows of 152 channels: an exact scorer holding the dimension-major bank and its norms.
    const probe = createScorerCache();
    const one = (await probe.get(gpu, 'x', 1, async () => stored(9, 64))).deviceBytes;
    expect(one).toBe(64 * 152 * 4 + 256); // rounded to 256-byte buffers: 38,912 + 256
    expect(probe.usage).toEqual({ banks: 1, bytes: one });
    probe.clear();
    const cache = createScorerCache({ banks: 10, bytes: Math.floor(2.5 * one) });
    for (const [k, id] of ['a', 'b', 'c'].entries()) await cache.get(gpu, id, 1, async () => stored(20 + k, 64));
    expect(cache.usage).toEqual({ banks: 2, bytes: 2 * one });
    let reads = 0;
    await cache.get(gpu, 'a', 1, async () => (reads++, stored(20, 64)));
    expect(reads).toBe(1); // 'a' was released for 'c'
    // A bank of 4x the rows is over the bound by itself: the others are released before it loads, and it stays alone.
    const big = await cache.get(gpu, 'big', 1, async () => stored(30, 256));
    expect(big.header.patches).toBe(256);
    expect(cache.usage).toEqual({ banks: 1, bytes: big.deviceBytes });
    expect(big.deviceBytes).toBeGreaterThan(2.5 * one);
    cache.clear();
  });

  it('refuses bounds below one bank or one byte', () => {
    expect(() => createScorerCache({ banks: 0, bytes: 1 })).toThrow(/a scorer cache of 0 banks/);
    expect(() => createScorerCache({ banks: 1, bytes: 0 })).toThrow(/a scorer cache of 0 bytes/);
  });
});

describe('SCORER_CACHE_BANKS / SCORER_CACHE_MB', () => {
  it('default to 4 banks and 1024 MiB; other positive integers are taken, anything else refused', () => {
    expect(configFromEnv({}).scorerCache).toEqual({ banks: 4, bytes: 1024 * 1024 * 1024 });
    expect(configFromEnv({ SCORER_CACHE_BANKS: '2', SCORER_CACHE_MB: '300' }).scorerCache).toEqual({ banks: 2, bytes: 300 * 1024 * 1024 });
    expect(() => configFromEnv({ SCORER_CACHE_BANKS: '0' })).toThrow(/SCORER_CACHE_BANKS must be a positive integer, got "0"/);
    expect(() => configFromEnv({ SCORER_CACHE_MB: '1.5' })).toThrow(/SCORER_CACHE_MB must be a positive integer, got "1.5"/);
  });
});

describe('SCORER_BACKBONE', () => {
  it('selects the network of new banks: resnet50 by default, or mobilenetv2; anything else is refused', () => {
    expect(configFromEnv({}).scorerBackbone).toBe('resnet50');
    expect(configFromEnv({ SCORER_BACKBONE: 'mobilenetv2' }).scorerBackbone).toBe('mobilenetv2');
    expect(() => configFromEnv({ SCORER_BACKBONE: 'vgg16' })).toThrow(/SCORER_BACKBONE must be mobilenetv2 or resnet50, got "vgg16"/);
  });
});
