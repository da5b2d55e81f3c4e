// Grey-level erosion (a minimum filter) over a rectangular window of offsets lo..hi in x and y, clipped at
// the image border as OpenCV's erode does by default. Separable: a horizontal then a vertical pass; a
// minimum is exact in f32, so the result equals the CPU reference bit for bit.

override WG: u32 = 256u;

struct MorphParams { width: u32, height: u32, lo: i32, hi: i32 }

@group(0) @binding(0) var<uniform> P: MorphParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn minFilterH(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = g.x + g.y * nwg.x * WG;
  if (i >= P.width * P.height) { return; }
  let x = i32(i % P.width);
  let row = i - u32(x);
  let a = max(x + P.lo, 0);
  let b = min(x + P.hi, i32(P.width) - 1);
  var m = src[row + u32(a)];
  for (var k = a + 1; k <= b; k++) { m = min(m, src[row + u32(k)]); }
  dst[i] = m;
}

@compute @workgroup_size(WG)
fn minFilterV(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = g.x + g.y * nwg.x * WG;
  if (i >= P.width * P.height) { return; }
  let x = i % P.width;
  let y = i32(i / P.width);
  let a = max(y + P.lo, 0);
  let b = min(y + P.hi, i32(P.height) - 1);
  var m = src[u32(a) * P.width + x];
  for (var k = a + 1; k <= b; k++) { m = min(m, src[u32(k) * P.width + x]); }
  dst[i] = m;
}
