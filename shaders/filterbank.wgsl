// The built-in analytic feature extractor ("filterbank"). Per Gaussian scale s it gives the smoothed
// intensity, its first and second derivatives (central differences on the smoothed image), the gradient
// magnitude and the local standard deviation sqrt(G_s(I^2) - G_s(I)^2); for colour images also the
// smoothed R, G, B. Borders replicate the edge pixel.

override WG: u32 = 256u;

struct Params { width: u32, height: u32, planes: u32, radius: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> taps: array<f32>; // 2 * radius + 1 normalized Gaussian weights

fn linearIndex(g: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return g.x + g.y * nwg.x * WG;
}

// Working planes from the image planes: grey -> [I, I^2]; RGB -> [Y, Y^2, R, G, B] (Y: Rec. 601 luma).
@compute @workgroup_size(WG)
fn prepare(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  let n = P.width * P.height;
  if (i >= n) { return; }
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

@compute @workgroup_size(WG)
fn blurH(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  let n = P.width * P.height;
  if (i >= n * P.planes) { return; }
  let row = i - (i % P.width);
  let x = i32(i % P.width);
  let r = i32(P.radius);
  let last = i32(P.width) - 1;
  var acc = 0.0;
  for (var k = -r; k <= r; k++) {
    acc += taps[u32(k + r)] * src[row + u32(clamp(x + k, 0, last))];
  }
  dst[i] = acc;
}

@compute @workgroup_size(WG)
fn blurV(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  let n = P.width * P.height;
  if (i >= n * P.planes) { return; }
  let base = (i / n) * n;
  let x = (i % n) % P.width;
  let y = i32((i % n) / P.width);
  let r = i32(P.radius);
  let last = i32(P.height) - 1;
  var acc = 0.0;
  for (var k = -r; k <= r; k++) {
    acc += taps[u32(k + r)] * src[base + u32(clamp(y + k, 0, last)) * P.width + x];
  }
  dst[i] = acc;
}

fn at(x: i32, y: i32) -> f32 {
  let xc = u32(clamp(x, 0, i32(P.width) - 1));
  let yc = u32(clamp(y, 0, i32(P.height) - 1));
  return src[yc * P.width + xc];
}

// From the smoothed planes of one scale, the scale's channels (8 grey, 11 colour) into dst.
@compute @workgroup_size(WG)
fn derive(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(g, nwg);
  let n = P.width * P.height;
  if (i >= n) { return; }
  let x = i32(i % P.width);
  let y = i32(i / P.width);
  let c = at(x, y);
  let l = at(x - 1, y);
  let r = at(x + 1, y);
  let u = at(x, y - 1);
  let d = at(x, y + 1);
  let dx = 0.5 * (r - l);
  let dy = 0.5 * (d - u);
  dst[i] = c;
  dst[n + i] = dx;
  dst[2u * n + i] = dy;
  dst[3u * n + i] = r - 2.0 * c + l;
  dst[4u * n + i] = d - 2.0 * c + u;
  dst[5u * n + i] = 0.25 * ((at(x + 1, y + 1) - at(x + 1, y - 1)) - (at(x - 1, y + 1) - at(x - 1, y - 1)));
  dst[6u * n + i] = sqrt(dx * dx + dy * dy);
  dst[7u * n + i] = sqrt(max(src[n + i] - c * c, 0.0));
  if (P.planes == 5u) {
    dst[8u * n + i] = src[2u * n + i];
    dst[9u * n + i] = src[3u * n + i];
    dst[10u * n + i] = src[4u * n + i];
  }
}
