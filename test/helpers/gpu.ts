// The tests' GPU: the process's shared Dawn device on whatever adapter the machine has (lavapipe here).
import { nodeGpu } from '../../src/gpu/node.ts';
import type { Gpu } from '../../src/core/gpu.ts';

export async function testGpu(): Promise<Gpu> {
  return (await nodeGpu()).gpu;
}

/** Share of equal entries of two masks. */
export function agreement(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error('length differs');
  let same = 0;
  for (let i = 0; i < a.length; i++) if ((a[i] !== 0) === (b[i] !== 0)) same++;
  return same / a.length;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length differs: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
