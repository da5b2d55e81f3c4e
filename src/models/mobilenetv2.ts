// Host-side loading of the shipped ImageNet MobileNetV2 1.0 weights (models/mobilenetv2-imagenet/weights.bin,
// written by scripts/convert-mobilenetv2.ts; provenance in the NOTICE next to it), or another file of the
// same format. Which MobileNetV2 the `mobilenetv2` extractor and PatchCore backbone use is chosen in
// src/models/mobilenet.ts (registerMobileNet: TTT_MOBILENET_WEIGHTS / TTT_MOBILENET_MODEL). Nothing is fetched
// over the network.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { TttError } from '../core/errors.ts';
import { provideMobileNetFile } from '../core/features/mobilenet/registry.ts';

/** The weights file shipped in the repository. */
export const SHIPPED_MOBILENETV2 = fileURLToPath(new URL('../../models/mobilenetv2-imagenet/weights.bin', import.meta.url));

export function readMobileNetV2File(path = SHIPPED_MOBILENETV2): { bytes: Uint8Array; what: string } {
  const file = resolve(path);
  try {
    return { bytes: readFileSync(file), what: file };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TttError(code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_INPUT', `${file}: the mobilenetv2 weights cannot be read (${(e as Error).message}); TTT_MOBILENET_WEIGHTS takes imagenet or a weights file's path`);
  }
}

/** Provides the file's network to the core (read lazily, on first use). */
export function provideMobileNetV2File(path = SHIPPED_MOBILENETV2): void {
  provideMobileNetFile(async () => readMobileNetV2File(path));
}
