// File formats told apart by their first bytes, never by the file name: a PNG named .npy still decodes,
// and random bytes named .png are refused with a message saying what the content looks like.

import { TttError } from '../core/errors.ts';
import { isNpy } from './npy.ts';

export type Format = 'png' | 'jpeg' | 'tiff' | 'npy';

const startsWith = (b: Uint8Array, sig: readonly number[], at = 0) => b.length >= at + sig.length && sig.every((v, i) => b[at + i] === v);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/** The decodable format of the bytes, or null. */
export function sniff(bytes: Uint8Array): Format | null {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  // Classic TIFF and BigTIFF, both byte orders.
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(bytes, [0x49, 0x49, 0x2b, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2b])) return 'tiff';
  if (isNpy(bytes)) return 'npy';
  return null;
}

/** A name for content we recognise but do not decode, for the error message. */
function describeUnsupported(bytes: Uint8Array): string {
  if (startsWith(bytes, ascii('GIF8'))) return 'a GIF image';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'a WebP image';
  if (startsWith(bytes, ascii('BM'))) return 'a BMP image';
  if (startsWith(bytes, ascii('ftyp'), 4)) return 'an ISO media file (HEIF/AVIF)';
  if (startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50])) return 'a JPEG 2000 image';
  if (startsWith(bytes, ascii('PK\x03\x04'))) return 'a ZIP archive (.npz?)';
  if (startsWith(bytes, ascii('%PDF'))) return 'a PDF document';
  return 'unrecognised content';
}

export const FORMAT_LABELS: Record<Format, string> = { png: 'PNG', jpeg: 'JPEG', tiff: 'TIFF', npy: '.npy' };

/** Sniffs the bytes and requires one of `accepted`; the caller prefixes the file name. */
export function requireFormat<F extends Format>(bytes: Uint8Array, accepted: readonly F[], what: string): F {
  if (bytes.length === 0) throw new TttError('INVALID_INPUT', `the ${what} file is empty`);
  const f = sniff(bytes);
  const list = accepted.map((a) => FORMAT_LABELS[a]).join(', ').replace(/, ([^,]+)$/, ' or $1');
  if (f === null) throw new TttError('UNSUPPORTED_FORMAT', `the ${what} must be ${list}, but the file holds ${describeUnsupported(bytes)}`);
  if (!(accepted as readonly Format[]).includes(f)) throw new TttError('UNSUPPORTED_FORMAT', `the ${what} must be ${list}, but the file is ${FORMAT_LABELS[f]}`);
  return f as F;
}
