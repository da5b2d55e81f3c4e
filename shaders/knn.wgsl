// PatchCore scoring: the nearest memory-bank entry of every test patch. The bank is held dimension-major
// ([dims][entries], split across buffers of at most one binding each) and scanned in slices; one knnSlice
// invocation keeps 8 queries (two vec4s of a query plane) against 8 bank entries in registers, so each query
// load feeds 32 multiply-adds, each bank load 64, and the bank values are uniform across the workgroup. The scan ranks entries by
// |b|^2 - 2 q.b (|q|^2 is constant per query); the winner's distance is then recomputed exactly.

override WG: u32 = 16u;

const FAR: f32 = 3.0e38;

// nq4: query vec4s per plane; nb: bank entries in this buffer (a multiple of 8, padding entries have norm FAR);
// slice: entries per workgroup row (a multiple of 8); base: global index of this buffer's first entry.
struct KnnParams { nq4: u32, nb: u32, dims: u32, slice: u32, base: u32, slices: u32, first: u32, nq: u32 }
@group(0) @binding(0) var<uniform> K: KnnParams;
@group(0) @binding(1) var<storage, read> queries: array<vec4<f32>>;  // [dims][nq4]
@group(0) @binding(2) var<storage, read> bank: array<vec4<f32>>;     // [dims][nb / 4]
@group(0) @binding(3) var<storage, read> bankNorm: array<f32>;       // [nb]
@group(0) @binding(4) var<storage, read_write> partMin: array<vec4<f32>>; // [slices][nq4]
@group(0) @binding(5) var<storage, read_write> partIdx: array<vec4<u32>>; // [slices][nq4]

fn keep(m: ptr<function, vec4<f32>>, mi: ptr<function, vec4<u32>>, d: vec4<f32>, idx: u32) {
  let better = d < *m;
  *m = select(*m, d, better);
  *mi = select(*mi, vec4<u32>(idx), better);
}

fn scoreBlock(m: ptr<function, vec4<f32>>, mi: ptr<function, vec4<u32>>, b: u32, g: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>,
              a3: vec4<f32>, a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>) {
  keep(m, mi, bankNorm[b] - 2.0 * a0, g);
  keep(m, mi, bankNorm[b + 1u] - 2.0 * a1, g + 1u);
  keep(m, mi, bankNorm[b + 2u] - 2.0 * a2, g + 2u);
  keep(m, mi, bankNorm[b + 3u] - 2.0 * a3, g + 3u);
  keep(m, mi, bankNorm[b + 4u] - 2.0 * a4, g + 4u);
  keep(m, mi, bankNorm[b + 5u] - 2.0 * a5, g + 5u);
  keep(m, mi, bankNorm[b + 6u] - 2.0 * a6, g + 6u);
  keep(m, mi, bankNorm[b + 7u] - 2.0 * a7, g + 7u);
}

// An invocation holds two query vec4s (WG vec4s apart: KNN_QUERIES4 in patchcore/kernels.ts) against the
// same 8 bank entries, so each bank load feeds twice the multiply-adds (measured 1.3x faster on lavapipe
// than one vec4; four vec4s or 16 entries spill and gain no more).
@compute @workgroup_size(WG)
fn knnSlice(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let p0 = wg.x * 2u * WG + t;
  let p1 = p0 + WG;
  let s = wg.y;
  let q0 = min(p0, K.nq4 - 1u);
  let q1 = min(p1, K.nq4 - 1u);
  let nb4 = K.nb / 4u;
  let b0 = s * K.slice;
  let b1 = min(b0 + K.slice, K.nb);
  var m0 = vec4<f32>(FAR);
  var mi0 = vec4<u32>(0u);
  var m1 = vec4<f32>(FAR);
  var mi1 = vec4<u32>(0u);
  for (var b = b0; b < b1; b += 8u) {
    let c4 = b / 4u;
    var a0 = vec4<f32>(); var a1 = vec4<f32>(); var a2 = vec4<f32>(); var a3 = vec4<f32>();
    var a4 = vec4<f32>(); var a5 = vec4<f32>(); var a6 = vec4<f32>(); var a7 = vec4<f32>();
    var e0 = vec4<f32>(); var e1 = vec4<f32>(); var e2 = vec4<f32>(); var e3 = vec4<f32>();
    var e4 = vec4<f32>(); var e5 = vec4<f32>(); var e6 = vec4<f32>(); var e7 = vec4<f32>();
    for (var k = 0u; k < K.dims; k++) {
      let x = queries[k * K.nq4 + q0];
      let y = queries[k * K.nq4 + q1];
      let w0 = bank[k * nb4 + c4];
      let w1 = bank[k * nb4 + c4 + 1u];
      a0 += x * w0.x; a1 += x * w0.y; a2 += x * w0.z; a3 += x * w0.w;
      a4 += x * w1.x; a5 += x * w1.y; a6 += x * w1.z; a7 += x * w1.w;
      e0 += y * w0.x; e1 += y * w0.y; e2 += y * w0.z; e3 += y * w0.w;
      e4 += y * w1.x; e5 += y * w1.y; e6 += y * w1.z; e7 += y * w1.w;
    }
    let g = K.base + b;
    scoreBlock(&m0, &mi0, b, g, a0, a1, a2, a3, a4, a5, a6, a7);
    scoreBlock(&m1, &mi1, b, g, e0, e1, e2, e3, e4, e5, e6, e7);
  }
  if (p0 < K.nq4) {
    partMin[s * K.nq4 + p0] = m0;
    partIdx[s * K.nq4 + p0] = mi0;
  }
  if (p1 < K.nq4) {
    partMin[s * K.nq4 + p1] = m1;
    partIdx[s * K.nq4 + p1] = mi1;
  }
}

// Folds the slices into the running best over all bank buffers (in order, so ties keep the lowest index).
@group(0) @binding(6) var<storage, read_write> bestMin: array<vec4<f32>>; // [nq4]
@group(0) @binding(7) var<storage, read_write> bestIdx: array<vec4<u32>>; // [nq4]

@compute @workgroup_size(WG)
fn knnMerge(@builtin(global_invocation_id) g: vec3<u32>) {
  let q4 = g.x;
  if (q4 >= K.nq4) { return; }
  var m = vec4<f32>(FAR);
  var mi = vec4<u32>(0u);
  if (K.first == 0u) {
    m = bestMin[q4];
    mi = bestIdx[q4];
  }
  for (var s = 0u; s < K.slices; s++) {
    let d = partMin[s * K.nq4 + q4];
    let better = d < m;
    m = select(m, d, better);
    mi = select(mi, partIdx[s * K.nq4 + q4], better);
  }
  bestMin[q4] = m;
  bestIdx[q4] = mi;
}

// The exact Euclidean distance of each query to its chosen entry, for the queries whose entry is in this
// bank buffer.
@group(0) @binding(1) var<storage, read> queriesF: array<f32>;        // [dims][nq4 * 4]
@group(0) @binding(2) var<storage, read> bankF: array<f32>;           // [dims][nb]
@group(0) @binding(7) var<storage, read> chosen: array<u32>;          // [nq4 * 4]
@group(0) @binding(8) var<storage, read_write> distance: array<f32>;  // [nq]

@compute @workgroup_size(WG)
fn knnExact(@builtin(global_invocation_id) g: vec3<u32>) {
  let q = g.x;
  if (q >= K.nq) { return; }
  let e = chosen[q];
  if (e < K.base || e >= K.base + K.nb) { return; }
  let j = e - K.base;
  var s = 0.0;
  for (var k = 0u; k < K.dims; k++) {
    let d = queriesF[k * K.nq4 * 4u + q] - bankF[k * K.nb + j];
    s += d * d;
  }
  distance[q] = sqrt(s);
}
