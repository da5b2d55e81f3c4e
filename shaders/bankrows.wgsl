// The memory bank's layouts on the GPU (patchcore/knn.ts), so that a bank loads with one upload and no
// read-back: the bank is uploaded once patch-major ([entries][channels], the file's layout, which the
// re-rank reads); bankTranspose writes the dimension-major copy of a range of its entries that the
// projection and the exact search read ([channels][nb]); bankNorms writes |b|^2 of each entry of a
// dimension-major array (FAR for the padding entries), summed over the channels in order in f32.

override WG: u32 = 64u;

const FAR: f32 = 3.0e38;

// channels: values per entry; count: entries to copy (bankTranspose) or real entries (bankNorms);
// src: first entry read in `rows`; dst: first entry written in each plane of `planar`; nb: entries per plane.
struct BankParams { channels: u32, count: u32, src: u32, dst: u32, nb: u32 }
@group(0) @binding(0) var<uniform> P: BankParams;
@group(0) @binding(1) var<storage, read> rows: array<f32>;            // [entries][channels]
@group(0) @binding(2) var<storage, read_write> planar: array<f32>;    // [channels][nb]

// One invocation per entry and block of KB channels: x over entries (each lane streams its own row, and
// the lanes' writes of one channel are consecutive), y over the channel blocks. (One invocation per
// value read a cache line per value: 4x slower on lavapipe.)
const KB: u32 = 64u;

@compute @workgroup_size(WG)
fn bankTranspose(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= P.count) { return; }
  let k0 = g.y * KB;
  let k1 = min(k0 + KB, P.channels);
  let r = (P.src + i) * P.channels;
  for (var k = k0; k < k1; k++) {
    planar[k * P.nb + P.dst + i] = rows[r + k];
  }
}

@group(0) @binding(3) var<storage, read> planarIn: array<f32>;        // [channels][nb]
@group(0) @binding(4) var<storage, read_write> norms: array<f32>;     // [nb]

// One invocation per entry (the workgroups folded into y beyond the per-dimension limit).
@compute @workgroup_size(WG)
fn bankNorms(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = g.x + g.y * n.x * WG;
  if (i >= P.nb) { return; }
  if (i >= P.count) {
    norms[i] = FAR;
    return;
  }
  var s = 0.0;
  for (var k = 0u; k < P.channels; k++) {
    let v = planarIn[k * P.nb + i];
    s += v * v;
  }
  norms[i] = s;
}
