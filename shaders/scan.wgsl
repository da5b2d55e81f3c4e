// Exclusive prefix sum of u32 values in blocks of 1024 (256 invocations x 4), with the block totals
// written for the next level; `addOffsets` adds the scanned totals back. With FROM_LABELS the input is a
// label map and each pixel counts 1 when labelled (non-zero), which is how labelled pixels are compacted
// into training rows in pixel order.

override WG: u32 = 256u;
override FROM_LABELS: bool = false;
const ITEMS: u32 = 4u;

struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> input: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<storage, read_write> sums: array<u32>;

var<workgroup> temp: array<u32, 256>;

fn valueAt(i: u32) -> u32 {
  if (i >= P.n) { return 0u; }
  let v = input[i];
  if (FROM_LABELS) { return select(0u, 1u, v != 0u); }
  return v;
}

@compute @workgroup_size(WG)
fn scanBlocks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) t: u32) {
  let block = wg.x + wg.y * nwg.x;
  let base = block * WG * ITEMS + t * ITEMS;
  var v: array<u32, 4>;
  var s = 0u;
  for (var k = 0u; k < ITEMS; k++) {
    v[k] = valueAt(base + k);
    s += v[k];
  }
  temp[t] = s;
  workgroupBarrier();
  // Hillis-Steele inclusive scan of the per-invocation sums.
  for (var off = 1u; off < WG; off = off * 2u) {
    var add = 0u;
    if (t >= off) { add = temp[t - off]; }
    workgroupBarrier();
    temp[t] += add;
    workgroupBarrier();
  }
  var run = temp[t] - s;
  for (var k = 0u; k < ITEMS; k++) {
    if (base + k < P.n) { out[base + k] = run; }
    run += v[k];
  }
  if (t == WG - 1u) { sums[block] = temp[t]; }
}

@group(0) @binding(4) var<storage, read> offsets: array<u32>;

@compute @workgroup_size(WG)
fn addOffsets(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = g.x + g.y * nwg.x * WG;
  if (i >= P.n) { return; }
  out[i] += offsets[i / (WG * ITEMS)];
}
