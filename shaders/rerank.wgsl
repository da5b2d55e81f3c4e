// PatchCore's approximate search, second stage: each query's candidates (the nearest bank entry of every
// slice of the bank, found in the projected space by knnSlice) are re-ranked by their exact Euclidean
// distance in the full feature space. One invocation per query; the bank is held patch-major (each
// candidate's channels contiguous: 4.8x faster on lavapipe than the search's dimension-major layout, where
// every channel of a candidate is a cache miss) and may span several buffers, each dispatched in turn with
// the running best carried in bestMin / bestIdx (ties keep the lowest index). The last buffer's dispatch
// writes the distance.

override WG: u32 = 64u;

const FAR: f32 = 3.0e38;

// nq: queries; nq4: query vec4s per plane; dims: full channels; count: entries in this bank buffer;
// base: global index of its first entry; cands: candidates per query; first / last: the first / last buffer.
struct RerankParams { nq: u32, nq4: u32, dims: u32, count: u32, base: u32, cands: u32, first: u32, last: u32 }
@group(0) @binding(0) var<uniform> R: RerankParams;
@group(0) @binding(1) var<storage, read> queries: array<f32>;          // [dims][nq4 * 4]
@group(0) @binding(2) var<storage, read> bank: array<f32>;             // [count][dims]
@group(0) @binding(3) var<storage, read> cand: array<u32>;             // [cands][nq4 * 4] global entry indices
@group(0) @binding(4) var<storage, read_write> bestMin: array<f32>;    // [nq] squared distance
@group(0) @binding(5) var<storage, read_write> bestIdx: array<u32>;    // [nq]
@group(0) @binding(6) var<storage, read_write> distance: array<f32>;   // [nq]

@compute @workgroup_size(WG)
fn knnRerank(@builtin(global_invocation_id) g: vec3<u32>) {
  let q = g.x;
  if (q >= R.nq) { return; }
  let qs = R.nq4 * 4u;
  var m = FAR;
  var mi = 0xffffffffu;
  if (R.first == 0u) {
    m = bestMin[q];
    mi = bestIdx[q];
  }
  for (var c = 0u; c < R.cands; c++) {
    let e = cand[c * qs + q];
    if (e < R.base || e >= R.base + R.count) { continue; }
    let o = (e - R.base) * R.dims;
    var s = 0.0;
    for (var k = 0u; k < R.dims; k++) {
      let d = queries[k * qs + q] - bank[o + k];
      s += d * d;
    }
    if (s < m || (s == m && e < mi)) {
      m = s;
      mi = e;
    }
  }
  bestMin[q] = m;
  bestIdx[q] = mi;
  if (R.last == 1u) { distance[q] = sqrt(m); }
}
