// Pseudo-labels from the score map. Anomalous: 3x3 local maxima (no neighbour scores higher) whose
// histogram bin is at or above the bin of the anomalous percentile and whose score reaches the seed floor
// (from the nominal calibration, or -inf), dilated by a square of radius r. Nominal: exactly M pixels drawn
// uniformly without replacement among the eligible ones (not anomalous, and at or below the bin of the
// nominal percentile when one is set): each eligible pixel gets the key pcgHash(p ^ seedKey), and the M
// smallest keys win. Keys are distinct (pcgHash is a bijection), so the M-th smallest key is found by a
// radix select over key bits [31:20], [19:8] and [7:0]: a 4096-bin histogram per level (in workgroup
// memory; after the first level only the few keys that share the chosen prefix are counted).
// With MASKED = 1, pixels without a measurement (validity byte 0) are never labelled: they are neither seeds
// nor compared as neighbours of one, the dilation skips them, and they are not eligible as nominal.
// Labels: 0 unlabelled, 1 anomalous, 2 nominal. Both labelling kernels also count the labelled pixels of
// each block of BLOCK pixels, for the compaction in gather.wgsl.

override WG: u32 = 256u;
override CHUNK: u32 = 65536u; // pixels per workgroup of the key histograms
override LEVEL: u32 = 0u;     // radix-select level of nominalHist / selectLevel
const NB: u32 = 4096u;
override BLOCK: u32 = 65536u; // pixels per compaction block (COMPACT_BLOCK)

struct Params {
  width: u32, height: u32, radius: u32, seedKey: u32,
  nominalCount: u32, restrictNominal: u32, mn: f32, scale: f32,
  seedFloor: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> qbins: array<u32>;       // [anomalous bin, nominal bin]
@group(0) @binding(3) var<storage, read_write> labelsAtomic: array<atomic<u32>>; // the label map, seen atomically
@group(0) @binding(4) var<storage, read_write> labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> hist: array<atomic<u32>>; // NB bins
@group(0) @binding(6) var<storage, read_write> sel: array<atomic<u32>>;
// sel: [0] anomalous count, [1] eligible count, [2] key prefix chosen so far, [3] keys below the prefix,
//      [4] key cut-off (the M-th smallest eligible key)
@group(0) @binding(7) var<storage, read_write> blockCounts: array<atomic<u32>>;
override MASKED: u32 = 0u;
@group(0) @binding(8) var<storage, read> validPx: array<u32>; // 4 validity bytes per u32

fn isValid(p: u32) -> bool {
  return MASKED == 0u || validByte(validPx[p >> 2u], p);
}

fn binOf(v: f32) -> u32 {
  return min(u32(max((v - P.mn) * P.scale, 0.0)), 4095u);
}

// Seeds scatter their dilation window: most pixels fail the percentile test at once, and the few seeds
// write (2r+1)^2 labels each, counting each newly labelled pixel once (labels start at zero).
@compute @workgroup_size(64, 4)
fn anomalousSeeds(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= P.width || g.y >= P.height) { return; }
  let i = g.y * P.width + g.x;
  let v = scores[i];
  if (binOf(v) < qbins[0] || v < P.seedFloor || !isValid(i)) { return; }
  let x = i32(g.x);
  let y = i32(g.y);
  let x0 = max(x - 1, 0);
  let x1 = min(x + 1, i32(P.width) - 1);
  let y0 = max(y - 1, 0);
  let y1 = min(y + 1, i32(P.height) - 1);
  for (var yy = y0; yy <= y1; yy++) {
    for (var xx = x0; xx <= x1; xx++) {
      let q = u32(yy) * P.width + u32(xx);
      if (scores[q] > v && isValid(q)) { return; }
    }
  }
  let r = i32(P.radius);
  for (var yy = max(y - r, 0); yy <= min(y + r, i32(P.height) - 1); yy++) {
    for (var xx = max(x - r, 0); xx <= min(x + r, i32(P.width) - 1); xx++) {
      let j = u32(yy) * P.width + u32(xx);
      if (isValid(j) && atomicExchange(&labelsAtomic[j], 1u) == 0u) {
        atomicAdd(&sel[0], 1u);
        atomicAdd(&blockCounts[j / BLOCK], 1u);
      }
    }
  }
}

fn eligible(i: u32) -> bool {
  return labels[i] == 0u && isValid(i) && (P.restrictNominal == 0u || binOf(scores[i]) <= qbins[1]);
}

fn keyOf(i: u32) -> u32 {
  return pcgHash(i ^ P.seedKey);
}

// Level 0: bits [31:20] of every eligible key; 1: bits [19:8] of keys whose top 12 bits are the chosen
// prefix; 2: bits [7:0] of keys whose top 24 bits are the chosen prefix.
fn levelBin(k: u32, prefix: u32) -> u32 {
  if (LEVEL == 0u) { return k >> 20u; }
  if (LEVEL == 1u) { return select(NB, (k >> 8u) & 0xfffu, (k >> 20u) == prefix); }
  return select(NB, k & 0xffu, (k >> 8u) == prefix);
}

var<workgroup> local: array<atomic<u32>, NB>;
var<workgroup> localCount: atomic<u32>;

@compute @workgroup_size(WG)
fn nominalHist(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) t: u32) {
  for (var b = t; b < NB; b += WG) { atomicStore(&local[b], 0u); }
  if (t == 0u) { atomicStore(&localCount, 0u); }
  workgroupBarrier();
  let prefix = atomicLoad(&sel[2]);
  let start = (wg.x + wg.y * nwg.x) * CHUNK;
  let end = min(start + CHUNK, P.width * P.height);
  var count = 0u;
  for (var i = start + t; i < end; i += WG) {
    // After the first level the key (arithmetic only) rules out almost every pixel before any load.
    let b = levelBin(keyOf(i), prefix);
    if ((LEVEL == 0u || b < NB) && eligible(i)) {
      count++;
      if (b < NB) { atomicAdd(&local[b], 1u); }
    }
  }
  if (LEVEL == 0u) { atomicAdd(&localCount, count); }
  workgroupBarrier();
  for (var b = t; b < NB; b += WG) {
    let c = atomicLoad(&local[b]);
    if (c > 0u) { atomicAdd(&hist[b], c); }
  }
  if (LEVEL == 0u && t == 0u) { atomicAdd(&sel[1], atomicLoad(&localCount)); }
}

// One workgroup: the bin of this level where the count of keys below reaches `take`; it extends the
// prefix and the count below it, and at the last level writes the key cut-off. Clears the histogram
// for the next level.
var<workgroup> blockSums: array<u32, 256>;

@compute @workgroup_size(256)
fn selectLevel(@builtin(local_invocation_index) t: u32) {
  let take = min(P.nominalCount, atomicLoad(&sel[1]));
  let below = atomicLoad(&sel[3]);
  let need = max(take, 1u) - min(below, max(take, 1u) - 1u);
  var s = 0u;
  for (var b = t * 16u; b < t * 16u + 16u; b++) { s += atomicLoad(&hist[b]); }
  blockSums[t] = s;
  workgroupBarrier();
  if (t == 0u) {
    var cum = 0u;
    var blk = 0u;
    for (; blk < 255u; blk++) {
      if (cum + blockSums[blk] >= need) { break; }
      cum += blockSums[blk];
    }
    var found = blk * 16u + 15u;
    for (var b = blk * 16u; b < blk * 16u + 16u; b++) {
      let c = atomicLoad(&hist[b]);
      if (cum + c >= need) { found = b; break; }
      cum += c;
    }
    let prefix = atomicLoad(&sel[2]);
    if (LEVEL == 0u) {
      atomicStore(&sel[2], found);
    } else if (LEVEL == 1u) {
      atomicStore(&sel[2], (prefix << 12u) | found);
    } else {
      atomicStore(&sel[4], (prefix << 8u) | found);
    }
    atomicStore(&sel[3], below + cum);
  }
  workgroupBarrier();
  for (var b = t * 16u; b < t * 16u + 16u; b++) { atomicStore(&hist[b], 0u); }
}

// Marks the drawn nominal pixels and adds them to their block's count of labelled pixels (the seeds pass
// counted the anomalous ones). Pixels whose key is above the cut-off are ruled out before any load.
@compute @workgroup_size(WG)
fn markNominal(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) t: u32) {
  let take = min(P.nominalCount, atomicLoad(&sel[1]));
  if (take == 0u) { return; }
  let cut = atomicLoad(&sel[4]);
  let start = (wg.x + wg.y * nwg.x) * CHUNK;
  let end = min(start + CHUNK, P.width * P.height);
  for (var i = start + t; i < end; i += WG) {
    if (keyOf(i) <= cut && eligible(i)) {
      labels[i] = 2u;
      atomicAdd(&blockCounts[i / BLOCK], 1u);
    }
  }
}
