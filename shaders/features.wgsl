// Feature preparation: bilinear resampling of C planes (h x w -> H x W, half-pixel centres as
// PyTorch's align_corners=False, edges clamped) and per-channel standardization.

override WG: u32 = 256u;

struct ResampleParams { srcW: u32, srcH: u32, dstW: u32, dstH: u32, planes: u32, scaleX: f32, scaleY: f32 }

@group(0) @binding(0) var<uniform> P: ResampleParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn linearIndex(g: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return g.x + g.y * nwg.x * WG;
}

// One invocation per output column of one plane (software drivers pay per invocation and per integer
// division; neighbouring invocations are neighbouring columns, so loads and stores stay contiguous): the
// column's source columns and weight are computed once, then the column is swept row by row.
@compute @workgroup_size(WG)
fn bilinear(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  if (i >= P.dstW * P.planes) { return; }
  let c = i / P.dstW;
  let x = i % P.dstW;
  let sx = max((f32(x) + 0.5) * P.scaleX - 0.5, 0.0);
  let x0 = min(u32(sx), P.srcW - 1u);
  let x1 = min(x0 + 1u, P.srcW - 1u);
  let fx = sx - f32(x0);
  let base = c * P.srcW * P.srcH;
  var out = c * P.dstH * P.dstW + x;
  for (var y = 0u; y < P.dstH; y++) {
    let sy = max((f32(y) + 0.5) * P.scaleY - 0.5, 0.0);
    let y0 = min(u32(sy), P.srcH - 1u);
    let y1 = min(y0 + 1u, P.srcH - 1u);
    let fy = sy - f32(y0);
    let a = src[base + y0 * P.srcW + x0];
    let b = src[base + y0 * P.srcW + x1];
    let d = src[base + y1 * P.srcW + x0];
    let e = src[base + y1 * P.srcW + x1];
    let top = a + (b - a) * fx;
    let bottom = d + (e - d) * fx;
    dst[out] = top + (bottom - top) * fy;
    out += P.dstW;
  }
}

// In place: x <- (x - mean_c) / std_c, from per-channel moments (8 floats per channel, as stats.wgsl
// writes them). A constant channel becomes 0. Dispatch: x = ceil(plane / (PER WG)) blocks, y = channel;
// many values per invocation, since software drivers pay per invocation.
const PER: u32 = 64u;
struct NormParams { plane: u32, planes: u32 }
@group(0) @binding(0) var<uniform> N: NormParams;
@group(0) @binding(3) var<storage, read_write> feat: array<f32>;
@group(0) @binding(4) var<storage, read> moments: array<f32>;

// With MASKED = 1, pixels without a measurement are set to 0 (the moments were taken over the valid ones).
override MASKED: u32 = 0u;
@group(0) @binding(5) var<storage, read> validPx: array<u32>;

@compute @workgroup_size(WG)
fn standardize(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let c = wg.y;
  let sd = moments[c * 8u + 3u];
  let mean = moments[c * 8u + 2u];
  let inv = select(0.0, 1.0 / sd, sd > 1e-12);
  let base = c * N.plane;
  for (var k = 0u; k < PER; k++) {
    let i = wg.x * WG * PER + k * WG + t;
    if (i < N.plane) {
      if (MASKED != 0u && !validByte(validPx[i >> 2u], i)) {
        feat[base + i] = 0.0;
      } else {
        feat[base + i] = (feat[base + i] - mean) * inv;
      }
    }
  }
}
