// The PCG hash of shaders/rng.wgsl on the CPU (u32 arithmetic through Math.imul), and the seeded key
// derivations the kernels use, so the reference draws exactly what the GPU draws.

export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The key mixed into pixel indices when drawing nominal pseudo-labels. */
export const nominalSeedKey = (seed: number): number => pcgHash((seed ^ 0x6e6f6d31) >>> 0);

/** The key mixed into pixel indices when drawing the refining classifier's nominal rows from the ring. */
export const refineSeedKey = (seed: number): number => pcgHash((seed ^ 0x72696e67) >>> 0);

/** The seed of the classifier's batch draws. */
export const sgdSeed = (seed: number): number => pcgHash((seed ^ 0x73676431) >>> 0);

/** Row drawn for slot j of SGD step `step` (batches of at most 256). */
export const sgdRow = (seed: number, step: number, j: number, rows: number): number =>
  (pcgHash((seed ^ pcgHash((step * 256 + j) >>> 0)) >>> 0) % rows) >>> 0;
