// The built-in analytic feature extractor ("filterbank"). Per Gaussian scale s it gives the smoothed
// intensity, its first and second derivatives (central differences on the smoothed image), the gradient
// magnitude and the local standard deviation sqrt(G_s(I^2) - G_s(I)^2); for colour images also the
// smoothed R, G, B. Borders replicate the edge pixel. Image kernels run on 64 x 4 tiles:
// global id x = column, y = row, z = plane.

override WG: u32 = 256u;

struct Params { width: u32, height: u32, planes: u32, radius: u32, outChannel: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> taps: array<f32>; // 2 * radius + 1 normalized Gaussian weights

// Working planes from the image planes: grey -> [I, I^2]; RGB -> [Y, Y^2, R, G, B] (Y: Rec. 601 luma).
@compute @workgroup_size(64, 4)
fn prepare(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= P.width || g.y >= P.height) { return; }
  let n = P.width * P.height;
  let i = g.y * P.width + g.x;
  if (P.planes == 1u) {
    let v = src[i];
    dst[i] = v;
    dst[n + i] = v * v;
  } else {
    let r = src[i];
    let gg = src[n + i];
    let b = src[2u * n + i];
    let y = 0.299 * r + 0.587 * gg + 0.114 * b;
    dst[i] = y;
    dst[n + i] = y * y;
    dst[2u * n + i] = r;
    dst[3u * n + i] = gg;
    dst[4u * n + i] = b;
  }
}

// The blurs compute ROWS consecutive output rows per invocation (software drivers pay per invocation);
// the vertical one slides its window down the column, loading each source row once.
const ROWS: u32 = 4u;

@compute @workgroup_size(64, 4)
fn blurH(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= P.width) { return; }
  let x = i32(g.x);
  let r = i32(P.radius);
  let interior = x >= r && x + r < i32(P.width);
  let last = i32(P.width) - 1;
  for (var j = 0u; j < ROWS; j++) {
    let y = g.y * ROWS + j;
    if (y >= P.height) { return; }
    let row = g.z * P.width * P.height + y * P.width;
    var acc = 0.0;
    if (interior) {
      let left = row + g.x - P.radius;
      for (var k = 0u; k <= 2u * P.radius; k++) { acc += taps[k] * src[left + k]; }
    } else {
      for (var k = -r; k <= r; k++) { acc += taps[u32(k + r)] * src[row + u32(clamp(x + k, 0, last))]; }
    }
    dst[row + g.x] = acc;
  }
}

@compute @workgroup_size(64, 4)
fn blurV(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= P.width) { return; }
  let base = g.z * P.width * P.height + g.x;
  let y0 = i32(g.y * ROWS);
  if (y0 >= i32(P.height)) { return; }
  let r = i32(P.radius);
  let last = i32(P.height) - 1;
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  // Source rows y0 - r .. y0 + ROWS - 1 + r, each feeding the outputs it is a tap of.
  for (var m = 0; m < 2 * r + i32(ROWS); m++) {
    let v = src[base + u32(clamp(y0 - r + m, 0, last)) * P.width];
    for (var j = 0; j < i32(ROWS); j++) {
      let k = m - j;
      if (k >= 0 && k <= 2 * r) { acc[j] += taps[u32(k)] * v; }
    }
  }
  for (var j = 0u; j < ROWS; j++) {
    let y = u32(y0) + j;
    if (y < P.height) { dst[base + y * P.width] = acc[j]; }
  }
}

fn at(x: i32, y: i32) -> f32 {
  let xc = u32(clamp(x, 0, i32(P.width) - 1));
  let yc = u32(clamp(y, 0, i32(P.height) - 1));
  return src[yc * P.width + xc];
}

// From the smoothed planes of one scale, the scale's channels (8 grey, 11 colour) into dst from
// channel `outChannel` on.
@compute @workgroup_size(64, 4)
fn derive(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= P.width || g.y >= P.height) { return; }
  let n = P.width * P.height;
  let i = g.y * P.width + g.x;
  let o = P.outChannel * n + i;
  let x = i32(g.x);
  let y = i32(g.y);
  let c = src[i];
  let l = at(x - 1, y);
  let r = at(x + 1, y);
  let u = at(x, y - 1);
  let d = at(x, y + 1);
  let dx = 0.5 * (r - l);
  let dy = 0.5 * (d - u);
  dst[o] = c;
  dst[o + n] = dx;
  dst[o + 2u * n] = dy;
  dst[o + 3u * n] = r - 2.0 * c + l;
  dst[o + 4u * n] = d - 2.0 * c + u;
  dst[o + 5u * n] = 0.25 * ((at(x + 1, y + 1) - at(x + 1, y - 1)) - (at(x - 1, y + 1) - at(x - 1, y - 1)));
  dst[o + 6u * n] = sqrt(dx * dx + dy * dy);
  dst[o + 7u * n] = sqrt(max(src[n + i] - c * c, 0.0));
  if (P.planes == 5u) {
    dst[o + 8u * n] = src[2u * n + i];
    dst[o + 9u * n] = src[3u * n + i];
    dst[o + 10u * n] = src[4u * n + i];
  }
}
