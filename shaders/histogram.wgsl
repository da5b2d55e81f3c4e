// Percentiles through a histogram of NB bins over [min, max]. The bin of a value is
// min(floor((v - min) * scale), NB - 1), with `scale` = NB / (max - min) computed in f32 by the host:
// a correctly rounded subtraction and product, so the CPU reference bins every value identically.
// A percentile is reported as a bin: the first bin whose cumulative count reaches the requested rank.

override WG: u32 = 256u;
const NB: u32 = 4096u;
override CHUNK: u32 = 65536u; // values per workgroup (HISTOGRAM_CHUNK)

struct HistParams { n: u32, nq: u32, mn: f32, scale: f32 }

@group(0) @binding(0) var<uniform> H: HistParams;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> bins: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> ranks: array<u32>;      // 1-based ranks, one per percentile
@group(0) @binding(4) var<storage, read_write> qbins: array<u32>; // the bin holding each rank

// With MASKED = 1 only valid pixels are counted (4 validity bytes per u32).
override MASKED: u32 = 0u;
@group(0) @binding(5) var<storage, read> validPx: array<u32>;

var<workgroup> local: array<atomic<u32>, NB>;

fn binOf(v: f32) -> u32 {
  return min(u32(max((v - H.mn) * H.scale, 0.0)), NB - 1u);
}

@compute @workgroup_size(WG)
fn histogram(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) t: u32) {
  for (var b = t; b < NB; b += WG) { atomicStore(&local[b], 0u); }
  workgroupBarrier();
  // Each workgroup takes a contiguous chunk of CHUNK values.
  let group = wg.x + wg.y * nwg.x;
  let start = group * CHUNK;
  let end = min(start + CHUNK, H.n);
  for (var i = start + t; i < end; i += WG) {
    if (MASKED != 0u && !validByte(validPx[i >> 2u], i)) { continue; }
    atomicAdd(&local[binOf(values[i])], 1u);
  }
  workgroupBarrier();
  for (var b = t; b < NB; b += WG) {
    let c = atomicLoad(&local[b]);
    if (c > 0u) { atomicAdd(&bins[b], c); }
  }
}

// For each requested rank (any order), the first bin whose cumulative count reaches it.
@compute @workgroup_size(1)
fn percentileBins() {
  for (var q = 0u; q < H.nq; q++) {
    var cum = 0u;
    var found = NB - 1u;
    for (var b = 0u; b < NB; b++) {
      cum += atomicLoad(&bins[b]);
      if (cum >= ranks[q]) { found = b; break; }
    }
    qbins[q] = found;
  }
}
