// 3-D features of an organized point cloud (one xyz point per pixel, planar x, y, z; holes are (0, 0, 0)
// and flagged in the validity bytes): the sums of a least-squares background plane z = a x + b y + c, the
// signed distance to that plane, and per scale the local shape of the valid neighbours in a (2r+1)^2
// window sampled every `step` pixels: the normal (smallest eigenvector of the local covariance, turned
// towards the camera at the origin), the surface variation l0 / (l0 + l1 + l2), the standard deviation of
// the plane distance, and the normals' deviation from their local mean (1 - |mean normal|).
// Coordinates are taken relative to an origin (a valid point) so that f32 sums keep their precision.

override WG: u32 = 256u;
override CHUNK: u32 = 4096u; // pixels per workgroup of planeSums (PLANE_CHUNK)

struct GeoParams {
  width: u32, height: u32, radius: u32, step: u32,
  outChannel: u32,
  ox: f32, oy: f32, oz: f32, a: f32,
  b: f32, c: f32, inv: f32,
}

@group(0) @binding(0) var<uniform> G: GeoParams;
@group(0) @binding(1) var<storage, read> points: array<f32>;        // 3 planes: x, y, z
@group(0) @binding(2) var<storage, read> validPx: array<u32>;       // 4 validity bytes per u32
@group(0) @binding(3) var<storage, read_write> parts: array<f32>;   // 9 sums per workgroup
@group(0) @binding(4) var<storage, read_write> feat: array<f32>;    // output channels, planar

fn isValid(p: u32) -> bool {
  return validByte(validPx[p >> 2u], p);
}

fn plane() -> u32 {
  return G.width * G.height;
}

// The point of pixel p relative to the origin.
fn rel(p: u32) -> vec3<f32> {
  let n = plane();
  return vec3<f32>(points[p] - G.ox, points[n + p] - G.oy, points[2u * n + p] - G.oz);
}

// Signed distance of a (relative) point to the background plane, positive away from the camera.
fn planeDistance(q: vec3<f32>) -> f32 {
  return (q.z - G.a * q.x - G.b * q.y - G.c) * G.inv;
}

// ---- planeSums: per workgroup, the sums N, Sx, Sy, Sz, Sxx, Sxy, Syy, Sxz, Syz over its valid pixels ----

var<workgroup> acc: array<array<f32, 9>, 256>;

@compute @workgroup_size(WG)
fn planeSums(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) t: u32) {
  let part = wg.x + wg.y * nwg.x;
  let start = part * CHUNK;
  let end = min(start + CHUNK, plane());
  var s = array<f32, 9>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
  for (var p = start + t; p < end; p += WG) {
    if (!isValid(p)) { continue; }
    let q = rel(p);
    s[0] += 1.0;
    s[1] += q.x; s[2] += q.y; s[3] += q.z;
    s[4] += q.x * q.x; s[5] += q.x * q.y; s[6] += q.y * q.y;
    s[7] += q.x * q.z; s[8] += q.y * q.z;
  }
  acc[t] = s;
  workgroupBarrier();
  var h = WG / 2u;
  loop {
    if (h == 0u) { break; }
    if (t < h) {
      for (var k = 0u; k < 9u; k++) { acc[t][k] += acc[t + h][k]; }
    }
    workgroupBarrier();
    h = h / 2u;
  }
  if (t == 0u && start < plane()) {
    for (var k = 0u; k < 9u; k++) { parts[part * 9u + k] = acc[0][k]; }
  }
}

// ---- planeDepth: channel outChannel = signed distance to the plane (0 at holes) ----

@compute @workgroup_size(64, 4)
fn planeDepth(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= G.width || g.y >= G.height) { return; }
  let p = g.y * G.width + g.x;
  var d = 0.0;
  if (isValid(p)) { d = planeDistance(rel(p)); }
  feat[G.outChannel * plane() + p] = d;
}

// ---- localShape: channels outChannel .. +4 = nx, ny, nz, surface variation, std of the plane distance ----

// The unit eigenvector of the smallest eigenvalue of a symmetric 3x3 matrix with trace 1, and that eigenvalue.
fn smallestEigen(a00: f32, a01: f32, a02: f32, a11: f32, a12: f32, a22: f32) -> vec4<f32> {
  let p1 = a01 * a01 + a02 * a02 + a12 * a12;
  var l0: f32;
  if (p1 <= 1e-20) {
    l0 = min(a00, min(a11, a22));
  } else {
    let q = (a00 + a11 + a22) / 3.0;
    let b00 = a00 - q;
    let b11 = a11 - q;
    let b22 = a22 - q;
    let p2 = b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * p1;
    let p = sqrt(p2 / 6.0);
    let det = b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02) + a02 * (a01 * a12 - b11 * a02);
    let r = clamp(det / (2.0 * p * p * p), -1.0, 1.0);
    let phi = acos(r) / 3.0;
    l0 = q + 2.0 * p * cos(phi + 2.0943951023931953);
  }
  let r0 = vec3<f32>(a00 - l0, a01, a02);
  let r1 = vec3<f32>(a01, a11 - l0, a12);
  let r2 = vec3<f32>(a02, a12, a22 - l0);
  let c0 = cross(r0, r1);
  let c1 = cross(r0, r2);
  let c2 = cross(r1, r2);
  let d0 = dot(c0, c0);
  let d1 = dot(c1, c1);
  let d2 = dot(c2, c2);
  var v = c0;
  var dm = d0;
  if (d1 > dm) { v = c1; dm = d1; }
  if (d2 > dm) { v = c2; dm = d2; }
  if (dm <= 1e-30) { return vec4<f32>(0.0, 0.0, 0.0, max(l0, 0.0)); }
  let u = v * inverseSqrt(dm);
  // The Rayleigh quotient of the eigenvector: accurate where the trigonometric formula loses digits
  // (acos near +-1, when the two larger eigenvalues are close, as on a plane).
  let au = vec3<f32>(a00 * u.x + a01 * u.y + a02 * u.z, a01 * u.x + a11 * u.y + a12 * u.z, a02 * u.x + a12 * u.y + a22 * u.z);
  return vec4<f32>(u, max(dot(u, au), 0.0));
}

@compute @workgroup_size(64, 4)
fn localShape(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= G.width || g.y >= G.height) { return; }
  let n = plane();
  let p = g.y * G.width + g.x;
  let o = G.outChannel * n + p;
  var normal = vec3<f32>(0.0);
  var variation = 0.0;
  var depthStd = 0.0;
  if (isValid(p)) {
    let c = rel(p);
    let hc = planeDistance(c);
    var cnt = 0.0;
    var s = vec3<f32>(0.0);
    var sxx = 0.0; var sxy = 0.0; var sxz = 0.0; var syy = 0.0; var syz = 0.0; var szz = 0.0;
    var sh = 0.0;
    var shh = 0.0;
    let r = i32(G.radius);
    let st = i32(G.step);
    for (var dy = -r; dy <= r; dy++) {
      let yy = i32(g.y) + dy * st;
      if (yy < 0 || yy >= i32(G.height)) { continue; }
      for (var dx = -r; dx <= r; dx++) {
        let xx = i32(g.x) + dx * st;
        if (xx < 0 || xx >= i32(G.width)) { continue; }
        let q = u32(yy) * G.width + u32(xx);
        if (!isValid(q)) { continue; }
        let qr = rel(q);
        let d = qr - c;
        cnt += 1.0;
        s += d;
        sxx += d.x * d.x; sxy += d.x * d.y; sxz += d.x * d.z;
        syy += d.y * d.y; syz += d.y * d.z; szz += d.z * d.z;
        let dh = planeDistance(qr) - hc;
        sh += dh;
        shh += dh * dh;
      }
    }
    if (cnt >= 3.0) {
      let m = s / cnt;
      let a00 = sxx / cnt - m.x * m.x;
      let a01 = sxy / cnt - m.x * m.y;
      let a02 = sxz / cnt - m.x * m.z;
      let a11 = syy / cnt - m.y * m.y;
      let a12 = syz / cnt - m.y * m.z;
      let a22 = szz / cnt - m.z * m.z;
      let tr = a00 + a11 + a22;
      if (tr > 0.0) {
        let e = smallestEigen(a00 / tr, a01 / tr, a02 / tr, a11 / tr, a12 / tr, a22 / tr);
        normal = e.xyz;
        // Towards the camera at the origin: n . (point) < 0.
        let pa = vec3<f32>(points[p], points[n + p], points[2u * n + p]);
        if (dot(normal, pa) > 0.0) { normal = -normal; }
        variation = e.w;
      }
      let mh = sh / cnt;
      depthStd = sqrt(max(shh / cnt - mh * mh, 0.0));
    }
  }
  feat[o] = normal.x;
  feat[o + n] = normal.y;
  feat[o + 2u * n] = normal.z;
  feat[o + 3u * n] = variation;
  feat[o + 4u * n] = depthStd;
}

// ---- normalDeviation: channel outChannel + 5 = 1 - |mean of the valid neighbours' normals| (channels outChannel .. +2) ----

@compute @workgroup_size(64, 4)
fn normalDeviation(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= G.width || g.y >= G.height) { return; }
  let n = plane();
  let p = g.y * G.width + g.x;
  let base = G.outChannel * n;
  var dev = 0.0;
  if (isValid(p)) {
    var cnt = 0.0;
    var s = vec3<f32>(0.0);
    let r = i32(G.radius);
    let st = i32(G.step);
    for (var dy = -r; dy <= r; dy++) {
      let yy = i32(g.y) + dy * st;
      if (yy < 0 || yy >= i32(G.height)) { continue; }
      for (var dx = -r; dx <= r; dx++) {
        let xx = i32(g.x) + dx * st;
        if (xx < 0 || xx >= i32(G.width)) { continue; }
        let q = u32(yy) * G.width + u32(xx);
        if (!isValid(q)) { continue; }
        s += vec3<f32>(feat[base + q], feat[base + n + q], feat[base + 2u * n + q]);
        cnt += 1.0;
      }
    }
    if (cnt > 0.0) { dev = max(1.0 - length(s / cnt), 0.0); }
  }
  feat[base + 5u * n + p] = dev;
}
