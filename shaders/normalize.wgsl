// Border-profile normalization of a score map (calibration.ts, BorderProfile): each pixel becomes
// (score - mean[b]) / std[b], b its distance to the nearest map border in units of 1/256 of the longest
// side (integer arithmetic), capped at bands - 1.
// Detectors' maps are often biased near the border (padding); the profile is learned from nominal maps.

override WG: u32 = 256u;

struct Params { width: u32, height: u32, bands: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// mean[b] at 2b, 1 / std[b] at 2b + 1.
@group(0) @binding(3) var<storage, read> profile: array<f32>;

@compute @workgroup_size(WG)
fn borderNormalize(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = g.x + g.y * nwg.x * WG;
  if (i >= P.width * P.height) { return; }
  let x = i % P.width;
  let y = i / P.width;
  let d = min(min(x, y), min(P.width - 1u - x, P.height - 1u - y));
  let b = min(d * 256u / max(P.width, P.height), P.bands - 1u);
  dst[i] = (src[i] - profile[2u * b]) * profile[2u * b + 1u];
}
