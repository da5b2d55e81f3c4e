// The PatchCore memory bank as one binary file: the magic "TTTBANK1", the byte length of a JSON header
// (u32, little-endian), the header (UTF-8, space-padded to a multiple of 4 bytes), then the patches as
// float32 little-endian, patch-major ([patches][channels]). Loading validates every part.
// Version 2 adds the modality (rgb, 3d or both), the 3-D feature scales and the per-channel normalization
// of multimodal banks; version 1 files (image features only) still load, as modality rgb. Version 3 adds the
// coreset's row target and per-image pre-selection share (older files: 0 and 1, the ratio and the exact
// greedy coreset) and the backbone (mobilenetv2 or resnet50; older files name extractor mobilenetv2).

import { TttError } from '../errors.ts';

export const BANK_MAGIC = 'TTTBANK1';
export const BANK_VERSION = 3;
/** Versions this build reads. */
export const BANK_VERSIONS: readonly number[] = [1, 2, 3];

/** The network of a bank's image features. */
export type Backbone = 'mobilenetv2' | 'resnet50';
export const BACKBONES: readonly Backbone[] = ['mobilenetv2', 'resnet50'];

/**
 * Each backbone's own default layers for a new bank (`ttt bank build` without --layers, the service's
 * banks): ResNet-50's stage2 + stage3 (512 + 1024 channels, PatchCore's recipe), MobileNetV2's block_2_add,
 * block_5_add, block_12_add (24 + 32 + 96 channels). A bank file names its layers, so a stored bank keeps
 * the ones it was built with whatever these become.
 */
export const BACKBONE_LAYERS: Readonly<Record<Backbone, readonly string[]>> = {
  mobilenetv2: ['block_2_add', 'block_5_add', 'block_12_add'],
  resnet50: ['stage2', 'stage3'],
};

/** The default layers of `backbone` (an unknown backbone is an INVALID_OPTION naming the known ones). */
export function backboneLayers(backbone: Backbone): readonly string[] {
  if (!Object.hasOwn(BACKBONE_LAYERS, backbone)) throw new TttError('INVALID_OPTION', `backbone ${JSON.stringify(backbone)} (expected ${BACKBONES.join(' or ')})`);
  return BACKBONE_LAYERS[backbone];
}

/** What a bank's patches hold: image features (MobileNetV2 layers), 3-D features, or both concatenated. */
export type BankModality = 'rgb' | '3d' | 'both';
export const BANK_MODALITIES: readonly BankModality[] = ['rgb', '3d', 'both'];

/**
 * Per-channel affine map applied to every patch before the distance: x -> (x - mean) / divisor (a divisor
 * of 0 zeroes a channel that was constant over the nominal patches). See patchcore.ts `bankNormalization`.
 */
export interface BankNormalization {
  readonly mean: readonly number[];
  readonly divisor: readonly number[];
}
const MAX_HEADER = 1 << 20;

export interface BankHeader {
  readonly version: number;
  readonly modality: BankModality;
  /** The network of the image features and the weights it ran with (weights '' and no layers for modality 3d). */
  readonly backbone: Backbone;
  readonly weights: string;
  readonly layers: readonly string[];
  /** Window radii of the 3-D features (features.geometryScales); empty for modality rgb. */
  readonly geometryScales: readonly number[];
  /** Channels of each part: image features first, then 3-D features (channels = their sum). */
  readonly rgbChannels: number;
  readonly geometryChannels: number;
  /** Applied to the stored patches already and to every query patch; null for modality rgb (raw features). */
  readonly normalization: BankNormalization | null;
  /** The working size: every image is resized so that its longest side has this many pixels. */
  readonly size: number;
  /** Working-size pixels per patch. */
  readonly stride: number;
  readonly patches: number;
  readonly channels: number;
  readonly coresetRatio: number;
  /** The coreset's row target (0: coresetRatio of the source patches). */
  readonly coresetRows: number;
  /** Share of each image's patches its own greedy k-center pre-selection kept (1: none, the exact coreset). */
  readonly preselect: number;
  readonly projectionDims: number;
  readonly seed: number;
  /** Nominal images and patches the coreset was chosen from. */
  readonly images: number;
  readonly sourcePatches: number;
}

export interface MemoryBank {
  readonly header: BankHeader;
  /** [patches][channels] */
  readonly features: Float32Array;
}

export function encodeBank(bank: MemoryBank): Uint8Array {
  const { header, features } = bank;
  if (features.length !== header.patches * header.channels) {
    throw new TttError('INTERNAL', `a bank header of ${header.patches}x${header.channels} with ${features.length} values`);
  }
  const text = JSON.stringify({ ...header, version: BANK_VERSION });
  let json = new TextEncoder().encode(text);
  const padded = Math.ceil(json.length / 4) * 4;
  if (padded !== json.length) json = new TextEncoder().encode(text + ' '.repeat(padded - json.length));
  const out = new Uint8Array(12 + json.length + features.byteLength);
  out.set(new TextEncoder().encode(BANK_MAGIC), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  const body = new DataView(out.buffer, 12 + json.length);
  for (let i = 0; i < features.length; i++) body.setFloat32(4 * i, features[i], true);
  return out;
}

const corrupt = (name: string, what: string): never => {
  throw new TttError('INVALID_INPUT', `${name}: corrupt memory bank: ${what}`);
};

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

const numberList = (v: unknown, length: number): boolean => Array.isArray(v) && v.length === length && v.every((x) => typeof x === 'number' && Number.isFinite(x));

/** A version 1 header (image features only) in the current shape. */
function upgradeV1(h: Record<string, unknown>): Record<string, unknown> {
  return { ...h, modality: 'rgb', geometryScales: [], rgbChannels: h.channels, geometryChannels: 0, normalization: null };
}

function checkHeader(name: string, raw: Record<string, unknown>): BankHeader {
  if (!BANK_VERSIONS.includes(raw.version as number)) {
    throw new TttError('UNSUPPORTED_FORMAT', `${name}: memory bank version ${JSON.stringify(raw.version)} (this build reads versions ${BANK_VERSIONS.slice(0, -1).join(', ')} and ${BANK_VERSIONS.at(-1)})`);
  }
  const v2 = raw.version === 1 ? upgradeV1(raw) : raw;
  let h = v2;
  if ((v2.version as number) < 3) {
    if (v2.extractor !== 'mobilenetv2') throw new TttError('UNSUPPORTED_FORMAT', `${name}: memory bank of extractor ${JSON.stringify(v2.extractor)} (expected mobilenetv2)`);
    const { extractor: _, ...rest } = v2;
    h = { ...rest, backbone: 'mobilenetv2', coresetRows: 0, preselect: 1 };
  }
  for (const k of ['size', 'stride', 'patches', 'channels', 'projectionDims', 'images', 'sourcePatches'] as const) {
    if (!positiveInt(h[k])) corrupt(name, `header field ${k} is ${JSON.stringify(h[k])} (expected a positive integer)`);
  }
  if (!BACKBONES.includes(h.backbone as Backbone)) throw new TttError('UNSUPPORTED_FORMAT', `${name}: memory bank of backbone ${JSON.stringify(h.backbone)} (expected ${BACKBONES.join(' or ')})`);
  if (!BANK_MODALITIES.includes(h.modality as BankModality)) corrupt(name, `modality ${JSON.stringify(h.modality)} (expected ${BANK_MODALITIES.join(', ')})`);
  const withImage = h.modality !== '3d';
  const with3d = h.modality !== 'rgb';
  if (typeof h.weights !== 'string') corrupt(name, 'the header names no weights');
  if (!Array.isArray(h.layers) || !h.layers.every((l) => typeof l === 'string') || (h.layers.length > 0) !== withImage) {
    corrupt(name, withImage ? 'the header lists no layers' : 'a 3-D bank lists network layers');
  }
  if (!Array.isArray(h.geometryScales) || !h.geometryScales.every((s) => typeof s === 'number' && s >= 1 && s <= 16) || (h.geometryScales.length > 0) !== with3d) {
    corrupt(name, `geometry scales ${JSON.stringify(h.geometryScales)} for modality ${h.modality}`);
  }
  for (const k of ['rgbChannels', 'geometryChannels'] as const) {
    if (!(typeof h[k] === 'number' && Number.isInteger(h[k]) && (h[k] as number) >= 0)) corrupt(name, `header field ${k} is ${JSON.stringify(h[k])}`);
  }
  if (((h.rgbChannels as number) > 0) !== withImage || ((h.geometryChannels as number) > 0) !== with3d || (h.rgbChannels as number) + (h.geometryChannels as number) !== h.channels) {
    corrupt(name, `${h.rgbChannels} image and ${h.geometryChannels} 3-D channels do not make ${h.channels} channels of modality ${h.modality}`);
  }
  const norm = h.normalization as Record<string, unknown> | null;
  if (with3d ? !(norm && typeof norm === 'object' && numberList(norm.mean, h.channels as number) && numberList(norm.divisor, h.channels as number)) : norm !== null) {
    corrupt(name, `the normalization does not fit ${h.channels} channels of modality ${h.modality}`);
  }
  if (typeof h.coresetRatio !== 'number' || !(h.coresetRatio > 0 && h.coresetRatio <= 1)) corrupt(name, `coreset ratio ${JSON.stringify(h.coresetRatio)}`);
  if (!(typeof h.coresetRows === 'number' && Number.isInteger(h.coresetRows) && h.coresetRows >= 0)) corrupt(name, `coreset rows ${JSON.stringify(h.coresetRows)}`);
  if (typeof h.preselect !== 'number' || !(h.preselect > 0 && h.preselect <= 1)) corrupt(name, `pre-selection share ${JSON.stringify(h.preselect)}`);
  if (typeof h.seed !== 'number' || !Number.isInteger(h.seed)) corrupt(name, 'the header has no seed');
  if ((h.patches as number) > (h.sourcePatches as number)) corrupt(name, `${h.patches} patches chosen from ${h.sourcePatches}`);
  return h as unknown as BankHeader;
}

/** The header of a bank file and the length of the part before the patches (the file's body is not read). */
function readHeader(bytes: Uint8Array, name: string): { header: BankHeader; bodyOffset: number } {
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== BANK_MAGIC) {
    throw new TttError('UNSUPPORTED_FORMAT', `${name}: not a ttt memory bank (the file does not start with ${BANK_MAGIC})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(8, true);
  if (headerLength === 0 || headerLength > MAX_HEADER || 12 + headerLength > bytes.length) {
    corrupt(name, `header length ${headerLength} does not fit a file of ${bytes.length} bytes`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + headerLength)));
  } catch (e) {
    corrupt(name, `the header is not JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) corrupt(name, 'the header is not a JSON object');
  return { header: checkHeader(name, raw as Record<string, unknown>), bodyOffset: 12 + headerLength };
}

/** The validated header of a bank file, without decoding its patches (for summaries). */
export function decodeBankHeader(bytes: Uint8Array, name = 'memory bank'): BankHeader {
  return readHeader(bytes, name).header;
}

/** Parses and validates a bank file; `name` prefixes every error. */
export function decodeBank(bytes: Uint8Array, name = 'memory bank'): MemoryBank {
  const { header, bodyOffset } = readHeader(bytes, name);
  const expected = header.patches * header.channels * 4;
  const body = bytes.length - bodyOffset;
  if (body !== expected) {
    corrupt(name, `${body < expected ? 'truncated' : 'trailing data'}: ${header.patches} patches x ${header.channels} channels need ${expected} bytes of float32 data, the file holds ${body}`);
  }
  const features = new Float32Array(header.patches * header.channels);
  const data = new DataView(bytes.buffer, bytes.byteOffset + bodyOffset, expected);
  for (let i = 0; i < features.length; i++) {
    const v = data.getFloat32(4 * i, true);
    if (!Number.isFinite(v)) corrupt(name, `patch ${Math.floor(i / header.channels)} holds ${v}`);
    features[i] = v;
  }
  return { header, features };
}
