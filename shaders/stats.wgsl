// Moments of one or more equal-length segments (the score map; or each channel of a feature map): min,
// max, mean and standard deviation by a two-level parallel reduction with Chan's pairwise update, which
// stays accurate for maps with a large offset. Percentiles are in histogram.wgsl.

override WG: u32 = 256u;
// len: values per segment; chunk: values per partial; pps: partials per segment; nparts: all partials.
struct ReduceParams { len: u32, chunk: u32, pps: u32, nparts: u32 }

@group(0) @binding(0) var<uniform> R: ReduceParams;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> parts: array<f32>; // 8 per part: min, max, count, mean, m2

// With MASKED = 1, only pixels whose validity byte is set count (the score map over a point cloud's
// valid points; the 3-D features' channels). Validity: 4 pixels per u32, indexed by the position in the segment.
override MASKED: u32 = 0u;
@group(0) @binding(4) var<storage, read> validPx: array<u32>;

fn isValid(p: u32) -> bool {
  return MASKED == 0u || validByte(validPx[p >> 2u], p);
}

var<workgroup> wMin: array<f32, 256>;
var<workgroup> wMax: array<f32, 256>;
var<workgroup> wCnt: array<f32, 256>;
var<workgroup> wMean: array<f32, 256>;
var<workgroup> wM2: array<f32, 256>;

fn combine(a: u32, b: u32) {
  let na = wCnt[a];
  let nb = wCnt[b];
  if (nb == 0.0) { return; }
  if (na == 0.0) {
    wMin[a] = wMin[b]; wMax[a] = wMax[b]; wCnt[a] = nb; wMean[a] = wMean[b]; wM2[a] = wM2[b];
    return;
  }
  let n = na + nb;
  let d = wMean[b] - wMean[a];
  wMin[a] = min(wMin[a], wMin[b]);
  wMax[a] = max(wMax[a], wMax[b]);
  wMean[a] = wMean[a] + d * (nb / n);
  wM2[a] = wM2[a] + wM2[b] + d * d * (na * nb / n);
  wCnt[a] = n;
}

fn treeReduce(t: u32) {
  var s = WG / 2u;
  loop {
    if (s == 0u) { break; }
    if (t < s) { combine(t, t + s); }
    workgroupBarrier();
    s = s / 2u;
  }
}

// Each workgroup reduces up to `chunk` consecutive values of one segment into one partial.
@compute @workgroup_size(WG)
fn reducePartial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) t: u32) {
  let part = wg.x + wg.y * nwg.x;
  let seg = part / R.pps;
  let start = seg * R.len + (part % R.pps) * R.chunk;
  let end = min(start + R.chunk, seg * R.len + R.len);
  var mn = 3.4e38;
  var mx = -3.4e38;
  var cnt = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  if (part < R.nparts && start < end) {
    // Sums of values shifted by the chunk's first value: no division per element, and no
    // cancellation when the values sit far from zero.
    let shift = values[start];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var i = start + t; i < end; i += WG) {
      if (!isValid(i - seg * R.len)) { continue; }
      let v = values[i];
      mn = min(mn, v);
      mx = max(mx, v);
      let d = v - shift;
      s1 += d;
      s2 += d * d;
      cnt += 1.0;
    }
    if (cnt > 0.0) {
      let md = s1 / cnt;
      mean = shift + md;
      m2 = max(s2 - s1 * md, 0.0);
    }
  }
  wMin[t] = mn; wMax[t] = mx; wCnt[t] = cnt; wMean[t] = mean; wM2[t] = m2;
  workgroupBarrier();
  treeReduce(t);
  if (t == 0u && part < R.nparts) {
    let o = part * 8u;
    parts[o] = wMin[0]; parts[o + 1u] = wMax[0]; parts[o + 2u] = wCnt[0]; parts[o + 3u] = wMean[0]; parts[o + 4u] = wM2[0];
  }
}

// One workgroup per segment folds its partials: out[8 s ..] = min, max, mean, std (population), count.
@group(0) @binding(3) var<storage, read_write> outStats: array<f32>;

@compute @workgroup_size(WG)
fn reduceFinal(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let seg = wg.x;
  // Thread t folds partials t, t + WG, ... sequentially, then the workgroup folds the threads.
  var mn = 3.4e38; var mx = -3.4e38; var cnt = 0.0; var mean = 0.0; var m2 = 0.0;
  for (var j = t; j < R.pps; j += WG) {
    let o = (seg * R.pps + j) * 8u;
    let nb = parts[o + 2u];
    if (nb > 0.0) {
      let n = cnt + nb;
      let d = parts[o + 3u] - mean;
      mn = min(mn, parts[o]);
      mx = max(mx, parts[o + 1u]);
      mean = mean + d * (nb / n);
      m2 = m2 + parts[o + 4u] + d * d * (cnt * nb / n);
      cnt = n;
    }
  }
  wMin[t] = mn; wMax[t] = mx; wCnt[t] = cnt; wMean[t] = mean; wM2[t] = m2;
  workgroupBarrier();
  treeReduce(t);
  if (t == 0u) {
    let o = seg * 8u;
    outStats[o] = wMin[0];
    outStats[o + 1u] = wMax[0];
    outStats[o + 2u] = wMean[0];
    outStats[o + 3u] = sqrt(max(wM2[0], 0.0) / max(wCnt[0], 1.0));
    outStats[o + 4u] = wCnt[0];
  }
}
