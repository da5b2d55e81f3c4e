// Uploaded files: size-checked against the configured limit before their bytes are used.

import { TttError } from '../core/errors.ts';

export interface Upload {
  name: string;
  bytes: Uint8Array<ArrayBuffer>;
}

/** What the multipart parser hands the resolvers (a WHATWG File). */
export interface FileLike {
  readonly name: string;
  readonly size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export function checkUploadSize(file: FileLike, field: string, maxBytes: number): void {
  if (file.size > maxBytes) {
    throw new TttError('TOO_LARGE', `${field} ${JSON.stringify(file.name)} is ${file.size} bytes, over the limit of ${maxBytes} bytes`);
  }
}

export async function readUpload(file: FileLike): Promise<Upload> {
  return { name: file.name || 'upload', bytes: new Uint8Array(await file.arrayBuffer()) };
}
