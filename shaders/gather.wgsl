// Gathering the labelled pixels into a training set: rows (pixel indices, in pixel order) and targets
// (+1 anomalous, -1 nominal) from the label map and its exclusive scan, then the features of those rows
// into the row-major matrix X (rows x channels), one channel chunk at a time.

override WG: u32 = 256u;

struct Params { n: u32, channels: u32, chunkChannels: u32, channelOffset: u32, plane: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read_write> rows: array<u32>;
@group(0) @binding(4) var<storage, read_write> targets: array<f32>;

fn linearIndex(g: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return g.x + g.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn compactRows(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  if (i >= P.n) { return; }
  let l = labels[i];
  if (l == 0u) { return; }
  let k = positions[i];
  rows[k] = i;
  targets[k] = select(-1.0, 1.0, l == 1u);
}

@group(0) @binding(5) var<storage, read> chunk: array<f32>;
@group(0) @binding(6) var<storage, read_write> x: array<f32>;

// n = number of rows here; one invocation per (row, channel of this chunk).
@compute @workgroup_size(WG)
fn gatherFeatures(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  if (i >= P.n * P.chunkChannels) { return; }
  let r = i / P.chunkChannels;
  let c = i % P.chunkChannels;
  x[r * P.channels + P.channelOffset + c] = chunk[c * P.plane + rows[r]];
}
