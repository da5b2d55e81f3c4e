// The WebAssembly SIMD kernels of the host stage (host.wat, assembled into hostWasm.ts): one instance and
// its one memory, grown as needed. Only the standard WebAssembly API (runs in Node and Deno); where
// WebAssembly or its SIMD is unavailable (the module does not validate), hostWasm() is null and the
// callers run their JS loops.
import { HOST_WASM_BASE64 } from './hostWasm.ts';

interface HostWasmExports {
  memory: WebAssembly.Memory;
  moments(p: number, n: number, C: number, out: number): void;
  predict(p: number, n: number, C: number, w: number, bias: number, acc: number, tile: number, scores: number, floor: number, mask: number): void;
  minmax(p: number, n: number, out: number): void;
  bins(p: number, n: number, min: number, scale: number, out: number): void;
}

let kernels: HostWasmExports | null | undefined;

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The instantiated kernels, or null where WebAssembly SIMD is unavailable. */
export function hostWasm(): HostWasmExports | null {
  if (kernels !== undefined) return kernels;
  kernels = null;
  try {
    if (typeof WebAssembly !== 'object' || typeof atob !== 'function') return null;
    const bytes = decodeBase64(HOST_WASM_BASE64);
    if (!WebAssembly.validate(bytes)) return null;
    kernels = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as HostWasmExports;
  } catch {
    kernels = null;
  }
  return kernels;
}

/** Pixels per tile of the prediction (its f64 accumulators stay in cache), as the JS loop. */
export const WASM_TILE = 2048;

const align16 = (b: number) => Math.ceil(b / 16) * 16;

/**
 * Features copied into the kernels' memory (at offset 0, with 16 spare bytes), valid until the next
 * stageFeatures call: the scratch of moments and prediction follows them.
 */
export interface StagedFeatures {
  readonly data: Float32Array;
  readonly pixels: number;
  readonly channels: number;
  readonly epoch: number;
}

let epoch = 0;

interface Layout {
  out: number;
  w: number;
  acc: number;
  scores: number;
  mask: number;
  end: number;
}

function layout(pixels: number, channels: number): Layout {
  const out = align16(pixels * channels * 4 + 16);
  const w = out;
  const acc = align16(w + Math.max(channels * 16, 16));
  const scores = align16(acc + (WASM_TILE + 4) * 8);
  const mask = align16(scores + pixels * 4);
  return { out, w, acc, scores, mask, end: align16(mask + pixels) };
}

/**
 * Copies the features (channel-major, `pixels` values per channel) into the kernels' memory, growing it;
 * null without the kernels or where the memory cannot hold them (the callers fall back to JS).
 */
export function stageFeatures(data: Float32Array, pixels: number, channels: number): StagedFeatures | null {
  const k = hostWasm();
  if (!k || data.length !== pixels * channels || !reserve(k, layout(pixels, channels).end)) return null;
  new Float32Array(k.memory.buffer, 0, data.length).set(data);
  return { data, pixels, channels, epoch: ++epoch };
}

/** Grows the memory to at least `bytes` (false where wasm32 cannot). */
function reserve(k: HostWasmExports, bytes: number): boolean {
  // wasm32: at most 65536 pages of 64 KiB.
  const pages = Math.ceil(bytes / 65536);
  if (pages > 65536) return false;
  const have = k.memory.buffer.byteLength / 65536;
  if (pages <= have) return true;
  try {
    k.memory.grow(pages - have);
    return true;
  } catch {
    return false;
  }
}

/** Whether `s` still holds `data` (no stageFeatures call since). */
export function isStaged(s: StagedFeatures | null | undefined, data: Float32Array): s is StagedFeatures {
  return !!s && s.epoch === epoch && s.data === data && hostWasm() !== null;
}

/** Per channel: the sums of (x - shift) and of its square, shift = the channel's first value (f64). */
export function wasmMoments(s: StagedFeatures): Float64Array {
  const k = hostWasm()!;
  const L = layout(s.pixels, s.channels);
  k.moments(0, s.pixels, s.channels, L.out);
  return new Float64Array(k.memory.buffer, L.out, s.channels * 2).slice();
}

/** The mask of bias + w.x > 0 and score > floor, 1 or 0 per pixel. */
export function wasmPredictMask(s: StagedFeatures, w: Float64Array, bias: number, scores: Float32Array, floor: number): Uint8Array {
  const k = hostWasm()!;
  const L = layout(s.pixels, s.channels);
  const buf = k.memory.buffer;
  new Float64Array(buf, L.w, s.channels).set(w);
  new Float32Array(buf, L.scores, s.pixels).set(scores);
  k.predict(0, s.pixels, s.channels, L.w, bias, L.acc, WASM_TILE, L.scores, floor, L.mask);
  return new Uint8Array(buf, L.mask, s.pixels).slice();
}

/**
 * A score map's extremes and shifted sums (shift = its first value, the moments kernel: four partial sums),
 * null without the kernels, for an empty map, or where the extremes are not finite (NaN or infinite
 * values: the JS loop's semantics apply). The map stays in memory for wasmBins (staged features are
 * invalidated).
 */
export function wasmScoreStats(d: Float32Array): { min: number; max: number; sum: number; sum2: number } | null {
  const k = hostWasm();
  const n = d.length;
  const out = align16(n * 4 + 16);
  if (!k || n === 0 || !reserve(k, out + 16 + align16(n * 2 + 16))) return null;
  epoch++;
  mapEpoch = epoch;
  mapData = d;
  new Float32Array(k.memory.buffer, 0, n).set(d);
  k.minmax(0, n, out);
  const [min, max] = new Float32Array(k.memory.buffer, out, 2);
  if (!Number.isFinite(min) || !Number.isFinite(max)) return null;
  k.moments(0, n, 1, out);
  const [sum, sum2] = new Float64Array(k.memory.buffer, out, 2);
  return { min, max, sum, sum2 };
}

let mapEpoch = -1;
let mapData: Float32Array | null = null;

/** binPixels' bins of the map of the last wasmScoreStats call (copied again if it is no longer in memory). */
export function wasmBins(d: Float32Array, min: number, scale: number): Uint16Array {
  const k = hostWasm()!;
  const n = d.length;
  const out = align16(n * 4 + 16) + 16;
  if (mapEpoch !== epoch || mapData !== d) {
    if (!reserve(k, out + align16(n * 2 + 16))) throw new Error('wasmBins: the memory cannot hold the map');
    epoch++;
    mapEpoch = epoch;
    mapData = d;
    new Float32Array(k.memory.buffer, 0, n).set(d);
  }
  k.bins(0, n, min, scale, out);
  return new Uint16Array(k.memory.buffer, out, n).slice();
}
