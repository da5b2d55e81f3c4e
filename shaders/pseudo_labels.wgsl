// Pseudo-labels from the score map. Anomalous: 3x3 local maxima whose histogram bin is at or above the
// bin of the anomalous percentile, dilated by a square of radius r. Nominal: exactly M pixels drawn
// uniformly without replacement among the eligible ones (not anomalous, and at or below the bin of the
// nominal percentile when one is set): each eligible pixel gets the key pcgHash(p ^ seedKey), and the M
// smallest keys win. Keys are distinct (pcgHash is a bijection), so the M-th smallest key is found by a
// two-level radix select over the high and low 16 bits. Labels: 0 unlabelled, 1 anomalous, 2 nominal.

override WG: u32 = 256u;
const NB: u32 = 4096u;

struct Params {
  width: u32, height: u32, radius: u32, seedKey: u32,
  nominalCount: u32, restrictNominal: u32, mn: f32, scale: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> qbins: array<u32>;       // [anomalous bin, nominal bin]
@group(0) @binding(3) var<storage, read_write> seeds: array<u32>;
@group(0) @binding(4) var<storage, read_write> labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> hist: array<atomic<u32>>; // 65536 bins
@group(0) @binding(6) var<storage, read_write> sel: array<atomic<u32>>;
// sel: [0] anomalous count, [1] eligible count, [2] high bin, [3] count below high bin, [4] key cut-off

fn linearIndex(g: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return g.x + g.y * nwg.x * WG;
}

fn binOf(v: f32) -> u32 {
  return min(u32(max((v - P.mn) * P.scale, 0.0)), NB - 1u);
}

@compute @workgroup_size(WG)
fn localMaxima(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  if (i >= P.width * P.height) { return; }
  let v = scores[i];
  var isSeed = binOf(v) >= qbins[0];
  let x = i32(i % P.width);
  let y = i32(i / P.width);
  for (var dy = -1; dy <= 1 && isSeed; dy++) {
    for (var dx = -1; dx <= 1; dx++) {
      let xx = x + dx;
      let yy = y + dy;
      if (xx >= 0 && yy >= 0 && xx < i32(P.width) && yy < i32(P.height) && scores[u32(yy) * P.width + u32(xx)] > v) {
        isSeed = false;
      }
    }
  }
  seeds[i] = select(0u, 1u, isSeed);
}

@compute @workgroup_size(WG)
fn dilate(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  if (i >= P.width * P.height) { return; }
  let x = i32(i % P.width);
  let y = i32(i / P.width);
  let r = i32(P.radius);
  var hit = false;
  for (var yy = max(y - r, 0); yy <= min(y + r, i32(P.height) - 1) && !hit; yy++) {
    for (var xx = max(x - r, 0); xx <= min(x + r, i32(P.width) - 1); xx++) {
      if (seeds[u32(yy) * P.width + u32(xx)] != 0u) { hit = true; }
    }
  }
  labels[i] = select(0u, 1u, hit);
  if (hit) { atomicAdd(&sel[0], 1u); }
}

fn eligible(i: u32) -> bool {
  return labels[i] == 0u && (P.restrictNominal == 0u || binOf(scores[i]) <= qbins[1]);
}

fn keyOf(i: u32) -> u32 {
  return pcgHash(i ^ P.seedKey);
}

@compute @workgroup_size(WG)
fn nominalHistHigh(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  if (i >= P.width * P.height || !eligible(i)) { return; }
  atomicAdd(&hist[keyOf(i) >> 16u], 1u);
  atomicAdd(&sel[1], 1u);
}

// One workgroup: each invocation sums 256 consecutive bins; invocation 0 then walks the sums and the
// chosen block to the first bin whose cumulative count reaches `need`.
var<workgroup> blockSums: array<u32, 256>;

fn selectBin(t: u32, need: u32) -> vec2<u32> {
  var s = 0u;
  for (var b = t * 256u; b < t * 256u + 256u; b++) { s += atomicLoad(&hist[b]); }
  blockSums[t] = s;
  workgroupBarrier();
  var found = vec2<u32>(65535u, 0u);
  if (t == 0u) {
    var cum = 0u;
    var blk = 0u;
    for (; blk < 256u; blk++) {
      if (cum + blockSums[blk] >= need) { break; }
      cum += blockSums[blk];
    }
    blk = min(blk, 255u);
    for (var b = blk * 256u; b < blk * 256u + 256u; b++) {
      let c = atomicLoad(&hist[b]);
      if (cum + c >= need) { found = vec2<u32>(b, cum); break; }
      cum += c;
    }
  }
  return found;
}

@compute @workgroup_size(256)
fn selectHigh(@builtin(local_invocation_index) t: u32) {
  let total = atomicLoad(&sel[1]);
  let take = min(P.nominalCount, total);
  let found = selectBin(t, max(take, 1u));
  if (t == 0u) {
    atomicStore(&sel[2], found.x);
    atomicStore(&sel[3], found.y);
  }
}

@compute @workgroup_size(WG)
fn nominalHistLow(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  if (i >= P.width * P.height || !eligible(i)) { return; }
  let k = keyOf(i);
  if ((k >> 16u) == atomicLoad(&sel[2])) { atomicAdd(&hist[k & 0xffffu], 1u); }
}

@compute @workgroup_size(256)
fn selectLow(@builtin(local_invocation_index) t: u32) {
  let total = atomicLoad(&sel[1]);
  let take = min(P.nominalCount, total);
  let below = atomicLoad(&sel[3]);
  let found = selectBin(t, max(take - below, 1u));
  if (t == 0u) {
    if (take == 0u) {
      atomicStore(&sel[4], 0u);
    } else {
      atomicStore(&sel[4], (atomicLoad(&sel[2]) << 16u) | found.x);
    }
  }
}

@compute @workgroup_size(WG)
fn markNominal(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  if (i >= P.width * P.height || P.nominalCount == 0u || !eligible(i)) { return; }
  if (keyOf(i) <= atomicLoad(&sel[4])) { labels[i] = 2u; }
}
