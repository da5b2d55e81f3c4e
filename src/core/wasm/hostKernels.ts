// The WebAssembly SIMD kernels of the host stage (host.wat, assembled into hostWasm.ts): one instance and
// its one memory, grown as needed. Only the standard WebAssembly API (runs in Node and Deno); where
// WebAssembly or its SIMD is unavailable (the module does not validate), hostWasm() is null and the
// callers run their JS loops.
import { HOST_WASM_BASE64 } from './hostWasm.ts';

interface HostWasmExports {
  memory: WebAssembly.Memory;
  moments(p: number, n: number, C: number, out: number): void;
  predict(p: number, n: number, C: number, w: number, bias: number, acc: number, tile: number, scores: number, floor: number, mask: number): void;
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
  if (!k || data.length !== pixels * channels) return null;
  const end = layout(pixels, channels).end;
  // wasm32: at most 65536 pages of 64 KiB.
  const pages = Math.ceil(end / 65536);
  if (pages > 65536) return null;
  const have = k.memory.buffer.byteLength / 65536;
  if (pages > have) {
    try {
      k.memory.grow(pages - have);
    } catch {
      return null;
    }
  }
  new Float32Array(k.memory.buffer, 0, data.length).set(data);
  return { data, pixels, channels, epoch: ++epoch };
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
