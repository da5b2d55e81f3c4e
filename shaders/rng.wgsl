// Counter-based random numbers shared by the kernels that draw: the PCG hash (Jarzynski and Olano,
// "Hash Functions for GPU Rendering", 2020). It is a bijection of u32, so distinct inputs give distinct
// keys. src/core/rng.ts computes the same function on the CPU.

fn pcgHash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
