// Masked box pooling of planar maps onto a coarser grid (the 3-D features onto PatchCore's patch grid):
// output cell (gx, gy) averages the valid source pixels of the box [gx W / gw, (gx + 1) W / gw) x
// [gy H / gh, (gy + 1) H / gh) (integer division; at least one pixel wide), 0 when the box holds none.
// Output channel c of cell p is written at c * outStride + p (PatchCore's dimension-major patch arrays).
// Dispatch: x = ceil(cells / WG), y = channel.

override WG: u32 = 256u;

struct PoolParams { srcW: u32, srcH: u32, gridW: u32, gridH: u32, channels: u32, outStride: u32 }

@group(0) @binding(0) var<uniform> P: PoolParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> validPx: array<u32>;   // 4 validity bytes per u32
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn isValid(p: u32) -> bool {
  return validByte(validPx[p >> 2u], p);
}

fn boxStart(i: u32, size: u32, grid: u32) -> u32 {
  return (i * size) / grid;
}

fn boxEnd(i: u32, size: u32, grid: u32) -> u32 {
  return max((i + 1u) * size / grid, boxStart(i, size, grid) + 1u);
}

@compute @workgroup_size(WG)
fn poolBoxes(@builtin(global_invocation_id) g: vec3<u32>) {
  let cells = P.gridW * P.gridH;
  let cell = g.x;
  let c = g.y;
  if (cell >= cells || c >= P.channels) { return; }
  let gx = cell % P.gridW;
  let gy = cell / P.gridW;
  let x0 = boxStart(gx, P.srcW, P.gridW);
  let x1 = min(boxEnd(gx, P.srcW, P.gridW), P.srcW);
  let y0 = boxStart(gy, P.srcH, P.gridH);
  let y1 = min(boxEnd(gy, P.srcH, P.gridH), P.srcH);
  let base = c * P.srcW * P.srcH;
  var s = 0.0;
  var n = 0.0;
  for (var y = y0; y < y1; y++) {
    for (var x = x0; x < x1; x++) {
      let p = y * P.srcW + x;
      if (isValid(p)) {
        s += src[base + p];
        n += 1.0;
      }
    }
  }
  dst[c * P.outStride + cell] = select(0.0, s / n, n > 0.0);
}
