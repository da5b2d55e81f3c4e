// Hostile files never crash or hang the decoders: every file of the committed corpus (test/fuzz/corpus,
// written by corpus.ts) and a seeded run of random mutations of its valid files, bounded in time, goes
// through the image, score-map, mask and feature decoders and ends decoded or with a typed TttError, in
// bounded time and memory; decompression bombs are refused from their headers (TOO_LARGE).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TttError } from '../../src/core/errors.ts';
import { decodeImage, decodeMask } from '../../src/io/image.ts';
import { decodeFeatures, decodeScoreMap } from '../../src/io/scoremap.ts';
import { defaultConfig } from '../../src/service/config.ts';
import { buildCorpus, CORPUS_DIR, H, rng, W, type Manifest } from './corpus.ts';

/** Milliseconds of random mutations per run (FUZZ_MS overrides). */
const FUZZ_MS = Number(process.env.FUZZ_MS) || 3000;
/** Per decode: anything slower counts as a hang. */
const CASE_TIMEOUT_MS = 10_000;
/** The service's default pixel limit for the corpus; a smaller one keeps the mutation run fast. */
const SERVICE_MAX_PIXELS = defaultConfig().maxImagePixels;
const FUZZ_MAX_PIXELS = 1 << 22;

type Outcome = 'ok' | string;

async function outcome(label: string, run: () => Promise<unknown>): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: no answer within ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
  });
  try {
    await Promise.race([run(), hang]);
    return 'ok';
  } catch (e) {
    if (e instanceof TttError) {
      expect(e.message.length, label).toBeGreaterThan(0);
      return e.code;
    }
    throw new Error(`${label}: an untyped failure: ${e instanceof Error ? e.stack : String(e)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Every decoder on the bytes; the file name is the one a station would send. */
async function decodeAll(name: string, bytes: Uint8Array, maxPixels: number) {
  return {
    image: await outcome(`image ${name}`, () => decodeImage(bytes, name, { maxPixels })),
    scoreMap: await outcome(`scoreMap ${name}`, () => decodeScoreMap(bytes, name, { maxPixels })),
    mask: await outcome(`mask ${name}`, () => decodeMask(bytes, name, { width: W, height: H })),
    features: await outcome(`features ${name}`, () => decodeFeatures(bytes, name, maxPixels)),
  };
}

const matches = (got: Outcome, want: Manifest[string]['image']) => want === 'any' || (want === 'ok' ? got === 'ok' : want === 'error' ? got !== 'ok' : got === want);

const manifest = JSON.parse(readFileSync(join(CORPUS_DIR, 'manifest.json'), 'utf8')) as Manifest;

describe('fuzz corpus', () => {
  it('is the one corpus.ts writes', async () => {
    const { files, manifest: built } = await buildCorpus();
    expect(manifest).toEqual(built);
    expect(readdirSync(CORPUS_DIR).filter((f) => f !== 'manifest.json').sort()).toEqual(Object.keys(files).sort());
    for (const [name, bytes] of Object.entries(files)) expect(new Uint8Array(readFileSync(join(CORPUS_DIR, name))), name).toEqual(bytes);
  });

  it.each(Object.keys(manifest))('%s: decoded or a typed error, as expected', async (name) => {
    const got = await decodeAll(name, new Uint8Array(readFileSync(join(CORPUS_DIR, name))), SERVICE_MAX_PIXELS);
    const want = manifest[name];
    expect({ image: matches(got.image, want.image), scoreMap: matches(got.scoreMap, want.scoreMap) }, JSON.stringify(got)).toEqual({ image: true, scoreMap: true });
  });
});

const MUTATIONS: ((b: Uint8Array, r: () => number) => Uint8Array)[] = [
  // flip bits
  (b, r) => {
    const out = b.slice();
    for (let k = 0, n = 1 + Math.floor(r() * 8); k < n && out.length; k++) out[Math.floor(r() * out.length)] ^= 1 << Math.floor(r() * 8);
    return out;
  },
  // an extreme 32-bit value somewhere in the first 128 bytes (sizes, offsets, lengths live there)
  (b, r) => {
    const out = b.slice();
    const values = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 0x10000, 0xffff];
    const at = Math.floor(r() * Math.max(1, Math.min(out.length, 128) - 4));
    if (out.length >= 4) new DataView(out.buffer).setUint32(at, values[Math.floor(r() * values.length)], r() < 0.5);
    return out;
  },
  // truncate
  (b, r) => b.slice(0, Math.floor(r() * b.length)),
  // insert random bytes
  (b, r) => {
    const at = Math.floor(r() * b.length);
    const extra = new Uint8Array(1 + Math.floor(r() * 64)).map(() => Math.floor(r() * 256));
    const out = new Uint8Array(b.length + extra.length);
    out.set(b.subarray(0, at));
    out.set(extra, at);
    out.set(b.subarray(at), at + extra.length);
    return out;
  },
  // repeat a slice
  (b, r) => {
    const from = Math.floor(r() * b.length);
    const len = Math.floor(r() * Math.min(256, b.length - from));
    const slice = b.subarray(from, from + len);
    const at = Math.floor(r() * b.length);
    const out = new Uint8Array(b.length + slice.length);
    out.set(b.subarray(0, at));
    out.set(slice, at);
    out.set(b.subarray(at), at + slice.length);
    return out;
  },
];

describe('fuzz mutations', () => {
  it(`random mutations of the valid files for ${FUZZ_MS} ms: typed errors only, memory bounded`, async () => {
    const seeds = Object.keys(manifest)
      .filter((n) => n.startsWith('valid'))
      .map((n) => ({ name: n, bytes: new Uint8Array(readFileSync(join(CORPUS_DIR, n))) }));
    const r = rng(Number(process.env.FUZZ_SEED) || 20250104);
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const seen = new Map<string, number>();
    const t0 = performance.now();
    let cases = 0;
    while (performance.now() - t0 < FUZZ_MS) {
      const seed = seeds[Math.floor(r() * seeds.length)];
      let bytes: Uint8Array = seed.bytes;
      for (let k = 0, n = 1 + Math.floor(r() * 3); k < n; k++) bytes = MUTATIONS[Math.floor(r() * MUTATIONS.length)](bytes, r);
      const got = await decodeAll(`case ${cases} from ${seed.name}`, bytes, FUZZ_MAX_PIXELS);
      for (const o of Object.values(got)) seen.set(o, (seen.get(o) ?? 0) + 1);
      cases++;
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }
    // Enough cases to mean something, and both outcomes seen.
    expect(cases).toBeGreaterThan(50);
    expect(seen.get('ok')).toBeGreaterThan(0);
    expect([...seen.keys()].filter((k) => k !== 'ok').length).toBeGreaterThan(1);
    // Nothing decoded beyond the pixel limit: a loose bound on the process's growth.
    expect(rssPeak - rssBefore).toBeLessThan(512 * 1024 * 1024);
  });
});
