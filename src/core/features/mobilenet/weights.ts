// TensorFlow.js layers-model artifacts in runtime-agnostic form (the host reads the files), and the
// decoding of their weight data: float32, float16 and affine-quantized uint8/uint16 tensors.

import { TttError } from '../../errors.ts';

export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly quantization?: { readonly min?: number; readonly scale?: number; readonly dtype: string };
}

export interface WeightsManifestGroup {
  readonly paths: readonly string[];
  readonly weights: readonly WeightSpec[];
}

/** What a layers model consists of: the Keras topology (model.json's `modelTopology`), the manifest, and
 * the bytes of every shard of every group, concatenated in manifest order. */
export interface LayersModelArtifacts {
  readonly modelTopology: unknown;
  readonly weightsManifest: readonly WeightsManifestGroup[];
  readonly weightData: ArrayBuffer;
  /** Where the artifacts came from, for messages and bank headers. */
  readonly source: string;
}

export interface DecodedTensor {
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 };

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Decodes every weight of the manifest (dequantized as TensorFlow.js does: q * scale + min). */
export function decodeWeights(artifacts: LayersModelArtifacts): Map<string, DecodedTensor> {
  const out = new Map<string, DecodedTensor>();
  const data = artifacts.weightData;
  const view = new DataView(data);
  let offset = 0;
  for (const group of artifacts.weightsManifest) {
    for (const spec of group.weights) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      const q = spec.quantization;
      const storage = q ? q.dtype : spec.dtype;
      const bytes = BYTES[storage];
      if (bytes === undefined || (spec.dtype !== 'float32' && spec.dtype !== 'int32')) {
        throw new TttError('UNSUPPORTED_FORMAT', `${artifacts.source}: weight ${spec.name} has unsupported dtype ${spec.dtype}${q ? ` quantized as ${q.dtype}` : ''}`);
      }
      const end = offset + size * bytes;
      if (end > data.byteLength) {
        throw new TttError('INVALID_INPUT', `${artifacts.source}: the weight data ends at byte ${data.byteLength} but ${spec.name} needs bytes ${offset}..${end}`);
      }
      const values = new Float32Array(size);
      if (q && (q.dtype === 'uint8' || q.dtype === 'uint16')) {
        const scale = q.scale ?? 1;
        const min = q.min ?? 0;
        for (let i = 0; i < size; i++) {
          const v = q.dtype === 'uint8' ? view.getUint8(offset + i) : view.getUint16(offset + 2 * i, true);
          values[i] = v * scale + min;
        }
      } else if (storage === 'float16') {
        for (let i = 0; i < size; i++) values[i] = halfToFloat(view.getUint16(offset + 2 * i, true));
      } else if (storage === 'int32') {
        for (let i = 0; i < size; i++) values[i] = view.getInt32(offset + 4 * i, true);
      } else {
        for (let i = 0; i < size; i++) values[i] = view.getFloat32(offset + 4 * i, true);
      }
      out.set(spec.name, { shape: spec.shape, values });
      offset = end;
    }
  }
  if (offset !== data.byteLength) {
    throw new TttError('INVALID_INPUT', `${artifacts.source}: the manifest describes ${offset} bytes of weights but the shards hold ${data.byteLength}`);
  }
  return out;
}
