// Host-side loading of the shipped ImageNet ResNet-50 v2 weights (models/resnet50v2-imagenet/weights.bin,
// written by scripts/convert-resnet50.ts; provenance in the NOTICE next to it), or another file of the same
// format named by TTT_RESNET50_WEIGHTS. Nothing is fetched over the network.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { TttError } from '../core/errors.ts';
import { provideResnet50 } from '../core/features/resnet/registry.ts';

export const RESNET50_ENV = 'TTT_RESNET50_WEIGHTS';

/** The weights file shipped in the repository. */
export const SHIPPED_RESNET50 = fileURLToPath(new URL('../../models/resnet50v2-imagenet/weights.bin', import.meta.url));

export function readResnet50File(path = process.env[RESNET50_ENV] || SHIPPED_RESNET50): { bytes: Uint8Array; what: string } {
  const file = resolve(path);
  try {
    return { bytes: readFileSync(file), what: file };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TttError(code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_INPUT', `${file}: the resnet50 weights cannot be read (${(e as Error).message})`);
  }
}

let registered: string | null = null;

/** Makes the network available to the core for this process (read lazily, once). */
export function registerResnet50(path = process.env[RESNET50_ENV] || SHIPPED_RESNET50): void {
  const key = resolve(path);
  if (registered === key) return;
  registered = key;
  provideResnet50(async () => readResnet50File(path));
}
