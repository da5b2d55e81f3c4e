// PatchCore's greedy coreset (k-center): repeatedly pick the point farthest from the points picked so far.
// Points are dimension-major ([dims][n4] as vec4 over points, split across buffers of at most one binding);
// every iteration is three dispatches that never leave the GPU: update each point's distance to the set
// with the newest centre and reduce per workgroup (coresetUpdate), pick the farthest over all workgroups
// (coresetSelect), copy its coordinates into `center` (coresetCenter). Ties go to the lowest index.

override WG: u32 = 64u;

const FAR: f32 = 3.0e38;

// n4: point vec4s per plane of this buffer; count: valid points in it; base: global index of its first point;
// partBase: its first partial; nparts: partials over all buffers; iter: the selection being made.
struct CoresetParams { n4: u32, count: u32, dims: u32, base: u32, partBase: u32, nparts: u32, iter: u32 }
@group(0) @binding(0) var<uniform> C: CoresetParams;
@group(0) @binding(1) var<storage, read> points: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> center: array<f32>;
@group(0) @binding(3) var<storage, read_write> minDist: array<vec4<f32>>; // squared distance to the set; -1: padding
@group(0) @binding(4) var<storage, read_write> partVal: array<f32>;
@group(0) @binding(5) var<storage, read_write> partIdx: array<u32>;
@group(0) @binding(6) var<storage, read_write> selected: array<u32>;

var<workgroup> wVal: array<f32, WG>;
var<workgroup> wIdx: array<u32, WG>;

fn better(v: f32, i: u32, w: f32, j: u32) -> bool {
  return v > w || (v == w && i < j);
}

@compute @workgroup_size(WG)
fn coresetInit(@builtin(global_invocation_id) g: vec3<u32>) {
  let i4 = g.x;
  if (i4 >= C.n4) { return; }
  let e = vec4<u32>(i4 * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  minDist[i4] = select(vec4<f32>(-1.0), vec4<f32>(FAR), e < vec4<u32>(C.count));
}

@compute @workgroup_size(WG)
fn coresetUpdate(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i4 = wg.x * WG + t;
  let q = min(i4, C.n4 - 1u);
  var acc = vec4<f32>();
  for (var k = 0u; k < C.dims; k++) {
    let d = points[k * C.n4 + q] - vec4<f32>(center[k]);
    acc += d * d;
  }
  var v = -2.0;
  var idx = 0xffffffffu;
  if (i4 < C.n4) {
    let m = min(minDist[i4], acc);
    minDist[i4] = m;
    let i = C.base + i4 * 4u;
    v = m.x; idx = i;
    if (m.y > v) { v = m.y; idx = i + 1u; }
    if (m.z > v) { v = m.z; idx = i + 2u; }
    if (m.w > v) { v = m.w; idx = i + 3u; }
  }
  wVal[t] = v;
  wIdx[t] = idx;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s && better(wVal[t + s], wIdx[t + s], wVal[t], wIdx[t])) {
      wVal[t] = wVal[t + s];
      wIdx[t] = wIdx[t + s];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    partVal[C.partBase + wg.x] = wVal[0];
    partIdx[C.partBase + wg.x] = wIdx[0];
  }
}

@compute @workgroup_size(WG)
fn coresetSelect(@builtin(local_invocation_index) t: u32) {
  var v = -2.0;
  var idx = 0xffffffffu;
  for (var p = t; p < C.nparts; p += WG) {
    if (better(partVal[p], partIdx[p], v, idx)) {
      v = partVal[p];
      idx = partIdx[p];
    }
  }
  wVal[t] = v;
  wIdx[t] = idx;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s && better(wVal[t + s], wIdx[t + s], wVal[t], wIdx[t])) {
      wVal[t] = wVal[t + s];
      wIdx[t] = wIdx[t + s];
    }
    workgroupBarrier();
  }
  if (t == 0u) { selected[C.iter] = wIdx[0]; }
}

@group(0) @binding(1) var<storage, read> pointsF: array<f32>;

@compute @workgroup_size(WG)
fn coresetCenter(@builtin(global_invocation_id) g: vec3<u32>) {
  let k = g.x;
  let s = selected[C.iter];
  if (k >= C.dims || s < C.base || s >= C.base + C.count) { return; }
  center[k] = pointsF[k * C.n4 * 4u + (s - C.base)];
}
