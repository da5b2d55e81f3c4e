// Threshold binarization for the baselines: mask = score > t (one global threshold) or
// score > T[p] (a per-pixel threshold map), four pixels per u32, one byte each.

override WG: u32 = 256u;

struct Params { pixels: u32, threshold: f32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> mask: array<u32>;
@group(0) @binding(3) var<storage, read> thresholds: array<f32>;

@compute @workgroup_size(WG)
fn thresholdGlobal(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let word = g.x + g.y * nwg.x * WG;
  if (word * 4u >= P.pixels) { return; }
  var packed = 0u;
  for (var k = 0u; k < 4u; k++) {
    let p = word * 4u + k;
    if (p < P.pixels && scores[p] > P.threshold) { packed |= 1u << (8u * k); }
  }
  mask[word] = packed;
}

@compute @workgroup_size(WG)
fn thresholdMap(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let word = g.x + g.y * nwg.x * WG;
  if (word * 4u >= P.pixels) { return; }
  var packed = 0u;
  for (var k = 0u; k < 4u; k++) {
    let p = word * 4u + k;
    if (p < P.pixels && scores[p] > thresholds[p]) { packed |= 1u << (8u * k); }
  }
  mask[word] = packed;
}
