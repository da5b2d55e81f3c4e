// Hole patches of a 3-D bank's query (no valid 3-D point in the patch's box) take the lowest distance of
// the image's valid patches (patchcore.ts scorePatches), in place on the GPU: one workgroup finds that
// minimum over the valid patches and writes it into the holes (FAR when no patch is valid).

override WG: u32 = 256u;

const FAR: f32 = 3.0e38;

// n: patches.
struct HoleParams { n: u32 }
@group(0) @binding(0) var<uniform> H: HoleParams;
@group(0) @binding(1) var<storage, read_write> distance: array<f32>; // [n]
@group(0) @binding(2) var<storage, read> valid: array<u32>;          // packed validity (validity.wgsl)

var<workgroup> wMin: array<f32, WG>;

@compute @workgroup_size(WG)
fn fillHoles(@builtin(local_invocation_index) t: u32) {
  var m = FAR;
  for (var i = t; i < H.n; i += WG) {
    if (validByte(valid[i >> 2u], i)) { m = min(m, distance[i]); }
  }
  wMin[t] = m;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s) { wMin[t] = min(wMin[t], wMin[t + s]); }
    workgroupBarrier();
  }
  let low = wMin[0];
  for (var i = t; i < H.n; i += WG) {
    if (!validByte(valid[i >> 2u], i)) { distance[i] = low; }
  }
}
