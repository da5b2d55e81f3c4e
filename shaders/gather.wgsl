// Gathering the labelled pixels into a training set. Rows keep pixel order: the per-block counts of
// labelled pixels (from markNominal) are scanned in one workgroup into block offsets, which also lists
// the blocks that hold labelled pixels and writes the indirect dispatch for them; then each listed block
// scans its own BLOCK pixels (BLOCK / WG consecutive ones per invocation) and writes rows (pixel indices) and targets
// (+1 anomalous, -1 nominal). Labelled pixels are sparse, so most blocks are never visited. Finally each channel chunk of the features is
// copied into the row-major matrix X (rows x channels).

override WG: u32 = 256u;
override BLOCK: u32 = 65536u; // pixels per compaction block (COMPACT_BLOCK)

struct Params { n: u32, channels: u32, chunkChannels: u32, channelOffset: u32, plane: u32, blocks: u32, rows: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>; // block counts in, exclusive offsets out
@group(0) @binding(3) var<storage, read_write> rows: array<u32>;
@group(0) @binding(4) var<storage, read_write> targets: array<f32>;

// The indices of the blocks that hold labelled pixels, and the indirect dispatch (x, y, z) of
// compactBlocks over them (x counts them).
@group(0) @binding(7) var<storage, read_write> blockList: array<u32>;
@group(0) @binding(8) var<storage, read_write> dispatchArgs: array<atomic<u32>>;

var<workgroup> temp: array<u32, 256>;

// Inclusive scan of temp[0..WG) (Hillis-Steele).
fn scanTemp(t: u32) {
  for (var off = 1u; off < WG; off = off * 2u) {
    var add = 0u;
    if (t >= off) { add = temp[t - off]; }
    workgroupBarrier();
    temp[t] += add;
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn scanCounts(@builtin(local_invocation_index) t: u32) {
  // Invocation t owns a contiguous run of blocks.
  let per = (P.blocks + WG - 1u) / WG;
  let b0 = min(t * per, P.blocks);
  let b1 = min(b0 + per, P.blocks);
  var s = 0u;
  for (var b = b0; b < b1; b++) { s += offsets[b]; }
  temp[t] = s;
  workgroupBarrier();
  scanTemp(t);
  var run = temp[t] - s;
  for (var b = b0; b < b1; b++) {
    let c = offsets[b];
    offsets[b] = run;
    run += c;
    if (c > 0u) { blockList[atomicAdd(&dispatchArgs[0], 1u)] = b; }
  }
}

@compute @workgroup_size(WG)
fn compactBlocks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let block = blockList[wg.x];
  let per = BLOCK / WG;
  let start = block * BLOCK + t * per;
  var s = 0u;
  for (var k = 0u; k < per; k++) {
    let i = start + k;
    if (i < P.n && labels[i] != 0u) { s++; }
  }
  temp[t] = s;
  workgroupBarrier();
  scanTemp(t);
  var pos = offsets[block] + temp[t] - s;
  for (var k = 0u; k < per; k++) {
    let i = start + k;
    if (i < P.n) {
      let l = labels[i];
      if (l != 0u) {
        rows[pos] = i;
        targets[pos] = select(-1.0, 1.0, l == 1u);
        pos++;
      }
    }
  }
}

@group(0) @binding(5) var<storage, read> chunk: array<f32>;
@group(0) @binding(6) var<storage, read_write> x: array<f32>;

// n = number of rows here; one invocation per (row, channel of this chunk).
@compute @workgroup_size(WG)
fn gatherFeatures(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = g.x + g.y * nwg.x * WG;
  if (i >= P.n * P.chunkChannels) { return; }
  let r = i / P.chunkChannels;
  let c = i % P.chunkChannels;
  x[r * P.channels + P.channelOffset + c] = chunk[c * P.plane + rows[r]];
}
