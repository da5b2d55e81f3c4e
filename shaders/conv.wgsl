// Convolutional network kernels (MobileNetV2 and other layers models compiled by graph.ts). Tensors are
// planar: channel c occupies [c * stride, c * stride + h * w) with the plane stride rounded up to a multiple
// of 4, so that the pointwise product can move 4 pixels per load. Every op ends with a clamp (linear:
// +-FLT_MAX, ReLU: [0, FLT_MAX], ReLU6: [0, 6]); batch normalization is already folded into weights and bias.
// Work is laid out so that weights are uniform across a workgroup (one group of output channels per
// workgroup row) and pixels vary across invocations.

override WG: u32 = 64u;

// ---- Input preprocessing: bilinear resize (half-pixel centres, edges clamped), grey -> 3 channels, then the
// network's per-channel affine map v * mul_k + add_k (MobileNetV2: [0, 1] -> [-1, 1]; ResNet: ImageNet mean/std
// and the input batch norm, folded).
struct PreParams {
  srcW: u32, srcH: u32, srcChannels: u32, dstW: u32, dstH: u32, dstStride: u32, scaleX: f32, scaleY: f32,
  mul0: f32, mul1: f32, mul2: f32, add0: f32, add1: f32, add2: f32,
}
@group(0) @binding(0) var<uniform> PRE: PreParams;
@group(0) @binding(1) var<storage, read> preSrc: array<f32>;
@group(0) @binding(2) var<storage, read_write> preDst: array<f32>;

@compute @workgroup_size(WG)
fn preprocess(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  // Pixels along x, folded into y beyond the per-dimension limit; the channel along z.
  let i = (wg.y * groups.x + wg.x) * WG + t;
  let k = wg.z;
  if (i >= PRE.dstW * PRE.dstH) { return; }
  let x = i % PRE.dstW;
  let y = i / PRE.dstW;
  let sx = max((f32(x) + 0.5) * PRE.scaleX - 0.5, 0.0);
  let sy = max((f32(y) + 0.5) * PRE.scaleY - 0.5, 0.0);
  let x0 = min(u32(sx), PRE.srcW - 1u);
  let y0 = min(u32(sy), PRE.srcH - 1u);
  let x1 = min(x0 + 1u, PRE.srcW - 1u);
  let y1 = min(y0 + 1u, PRE.srcH - 1u);
  let fx = sx - f32(x0);
  let fy = sy - f32(y0);
  let base = select(0u, k, PRE.srcChannels == 3u) * PRE.srcW * PRE.srcH;
  let a = preSrc[base + y0 * PRE.srcW + x0];
  let b = preSrc[base + y0 * PRE.srcW + x1];
  let d = preSrc[base + y1 * PRE.srcW + x0];
  let e = preSrc[base + y1 * PRE.srcW + x1];
  let top = a + (b - a) * fx;
  let bottom = d + (e - d) * fx;
  let gain = select(select(PRE.mul0, PRE.mul1, k == 1u), PRE.mul2, k == 2u);
  let offset = select(select(PRE.add0, PRE.add1, k == 1u), PRE.add2, k == 2u);
  preDst[k * PRE.dstStride + i] = gain * (top + (bottom - top) * fy) + offset;
}

// The same map when the network input has the image's size (every sample weight but the first is 0, so the
// value is the source pixel's): 4 pixels per invocation as one vec4, for sizes whose pixel count is a
// multiple of 4 (the host's choice). Same uniform as `preprocess`.
@group(0) @binding(1) var<storage, read> preSrc4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> preDst4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn preprocessSameSize(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i = (wg.y * groups.x + wg.x) * WG + t;
  let k = wg.z;
  let n4 = PRE.dstW * PRE.dstH / 4u;
  if (i >= n4) { return; }
  let base = select(0u, k, PRE.srcChannels == 3u) * n4;
  let gain = select(select(PRE.mul0, PRE.mul1, k == 1u), PRE.mul2, k == 2u);
  let offset = select(select(PRE.add0, PRE.add1, k == 1u), PRE.add2, k == 2u);
  preDst4[k * (PRE.dstStride / 4u) + i] = gain * preSrc4[base + i] + offset;
}

// ---- Full convolution = im2col + the pointwise product. im2col writes, for every output pixel, the input
// values under the window in weight-row order ((ky * KW + kx) * cin + ci), zero outside the input; the
// window and stride are fixed per pipeline through the KH, KW, SH, SW overrides, so the loops unroll. A
// workgroup covers TW x (WG / TW) output pixels, so no invocation divides.
override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override TW: u32 = 16u;

struct ColParams { inW: u32, inH: u32, inStride: u32, outW: u32, outH: u32, outStride: u32, cin: u32, padTop: u32, padLeft: u32 }
@group(0) @binding(0) var<uniform> COL: ColParams;
@group(0) @binding(1) var<storage, read> colIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> colOut: array<f32>;

@compute @workgroup_size(WG)
fn im2col(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let ox = wg.x * TW + t % TW;
  let oy = wg.y * (WG / TW) + t / TW;
  if (ox >= COL.outW || oy >= COL.outH) { return; }
  let i = oy * COL.outW + ox;
  let iy0 = i32(oy * SH) - i32(COL.padTop);
  let ix0 = i32(ox * SW) - i32(COL.padLeft);
  for (var ky = 0u; ky < KH; ky++) {
    let iy = iy0 + i32(ky);
    let rowOk = iy >= 0 && iy < i32(COL.inH);
    let row = u32(clamp(iy, 0, i32(COL.inH) - 1)) * COL.inW;
    for (var kx = 0u; kx < KW; kx++) {
      let ix = ix0 + i32(kx);
      let ok = rowOk && ix >= 0 && ix < i32(COL.inW);
      let at = row + u32(clamp(ix, 0, i32(COL.inW) - 1));
      let r0 = (ky * KW + kx) * COL.cin;
      for (var ci = 0u; ci < COL.cin; ci++) {
        colOut[(r0 + ci) * COL.outStride + i] = select(0.0, colIn[ci * COL.inStride + at], ok);
      }
    }
  }
}

// ---- Pointwise (1x1) convolution as a matrix product out[cout x pixels] = W^T[cout x cin] in[cin x pixels]:
// 4 pixels (one vec4 of a plane) x 8 output channels per invocation, accumulated in registers; the
// weight rows are uniform across the workgroup. Weights [cin][coutPad] as vec4, bias [coutPad] as vec4.
struct PwParams { stride4: u32, cin: u32, cout: u32, coutPad4: u32, lo: f32, hi: f32 }
@group(0) @binding(0) var<uniform> PW: PwParams;
@group(0) @binding(1) var<storage, read> pwIn: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> pwW: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> pwBias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> pwOut: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> pwRes: array<vec4<f32>>;

struct Tile8 { a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32> }

fn pointwiseTile(p4: u32, cg: u32) -> Tile8 {
  let q = min(p4, PW.stride4 - 1u);
  let ba = pwBias[cg];
  let bb = pwBias[cg + 1u];
  var r = Tile8(vec4(ba.x), vec4(ba.y), vec4(ba.z), vec4(ba.w), vec4(bb.x), vec4(bb.y), vec4(bb.z), vec4(bb.w));
  for (var ci = 0u; ci < PW.cin; ci++) {
    let x = pwIn[ci * PW.stride4 + q];
    let wa = pwW[ci * PW.coutPad4 + cg];
    let wb = pwW[ci * PW.coutPad4 + cg + 1u];
    r.a0 += x * wa.x; r.a1 += x * wa.y; r.a2 += x * wa.z; r.a3 += x * wa.w;
    r.a4 += x * wb.x; r.a5 += x * wb.y; r.a6 += x * wb.z; r.a7 += x * wb.w;
  }
  return r;
}

fn pwStore(co: u32, p4: u32, v: vec4<f32>) {
  if (co < PW.cout) { pwOut[co * PW.stride4 + p4] = clamp(v, vec4(PW.lo), vec4(PW.hi)); }
}

fn pwStoreRes(co: u32, p4: u32, v: vec4<f32>) {
  if (co < PW.cout) {
    let o = co * PW.stride4 + p4;
    pwOut[o] = clamp(v + pwRes[o], vec4(PW.lo), vec4(PW.hi));
  }
}

@compute @workgroup_size(WG)
fn pointwise(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let p4 = wg.x * WG + t;
  let cg = wg.y * 2u;
  let r = pointwiseTile(p4, cg);
  if (p4 >= PW.stride4) { return; }
  let co = cg * 4u;
  pwStore(co, p4, r.a0); pwStore(co + 1u, p4, r.a1); pwStore(co + 2u, p4, r.a2); pwStore(co + 3u, p4, r.a3);
  pwStore(co + 4u, p4, r.a4); pwStore(co + 5u, p4, r.a5); pwStore(co + 6u, p4, r.a6); pwStore(co + 7u, p4, r.a7);
}

// The same product with a residual tensor added before the clamp (MobileNetV2's block_N_add).
@compute @workgroup_size(WG)
fn pointwiseResidual(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let p4 = wg.x * WG + t;
  let cg = wg.y * 2u;
  let r = pointwiseTile(p4, cg);
  if (p4 >= PW.stride4) { return; }
  let co = cg * 4u;
  pwStoreRes(co, p4, r.a0); pwStoreRes(co + 1u, p4, r.a1); pwStoreRes(co + 2u, p4, r.a2); pwStoreRes(co + 3u, p4, r.a3);
  pwStoreRes(co + 4u, p4, r.a4); pwStoreRes(co + 5u, p4, r.a5); pwStoreRes(co + 6u, p4, r.a6); pwStoreRes(co + 7u, p4, r.a7);
}

// The same products with larger register tiles, generated by scripts/pointwise-tiles.ts (declared in
// kernels.ts, pointwiseTiles): an invocation
// computes P vec4 of pixels (WG vec4 apart) x C output channels. On a CPU adapter (lavapipe) every load is
// done lane by lane, so the loads per multiply-add (P + C / 4 vec4 per 4 * P * C) decide the speed:
// pointwiseWide is 8 pixels x 16 channels, pointwiseWider 16 x 16 (on workgroups of 32 and 16 invocations,
// so that a 16x16 map fills a workgroup), pointwiseTall 16 x 8 (where cout is not a multiple of 16).
// <pointwise tiles: generated by scripts/pointwise-tiles.ts>
@compute @workgroup_size(WG)
fn pointwiseWide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let p4 = wg.x * 2u * WG + t;
  let cg = wg.y * 4u;
  let q0 = min(p4 + 0u * WG, PW.stride4 - 1u);
  let q1 = min(p4 + 1u * WG, PW.stride4 - 1u);
  let b0 = pwBias[cg + 0u];
  let b1 = pwBias[cg + 1u];
  let b2 = pwBias[cg + 2u];
  let b3 = pwBias[cg + 3u];
  var a0_0 = vec4(b0.x);
  var a0_1 = vec4(b0.y);
  var a0_2 = vec4(b0.z);
  var a0_3 = vec4(b0.w);
  var a0_4 = vec4(b1.x);
  var a0_5 = vec4(b1.y);
  var a0_6 = vec4(b1.z);
  var a0_7 = vec4(b1.w);
  var a0_8 = vec4(b2.x);
  var a0_9 = vec4(b2.y);
  var a0_10 = vec4(b2.z);
  var a0_11 = vec4(b2.w);
  var a0_12 = vec4(b3.x);
  var a0_13 = vec4(b3.y);
  var a0_14 = vec4(b3.z);
  var a0_15 = vec4(b3.w);
  var a1_0 = vec4(b0.x);
  var a1_1 = vec4(b0.y);
  var a1_2 = vec4(b0.z);
  var a1_3 = vec4(b0.w);
  var a1_4 = vec4(b1.x);
  var a1_5 = vec4(b1.y);
  var a1_6 = vec4(b1.z);
  var a1_7 = vec4(b1.w);
  var a1_8 = vec4(b2.x);
  var a1_9 = vec4(b2.y);
  var a1_10 = vec4(b2.z);
  var a1_11 = vec4(b2.w);
  var a1_12 = vec4(b3.x);
  var a1_13 = vec4(b3.y);
  var a1_14 = vec4(b3.z);
  var a1_15 = vec4(b3.w);
  for (var ci = 0u; ci < PW.cin; ci++) {
    let i = ci * PW.stride4;
    let x0 = pwIn[i + q0];
    let x1 = pwIn[i + q1];
    let o = ci * PW.coutPad4 + cg;
    let w0 = pwW[o + 0u];
    let w1 = pwW[o + 1u];
    let w2 = pwW[o + 2u];
    let w3 = pwW[o + 3u];
    a0_0 += x0 * w0.x; a0_1 += x0 * w0.y; a0_2 += x0 * w0.z; a0_3 += x0 * w0.w;
    a0_4 += x0 * w1.x; a0_5 += x0 * w1.y; a0_6 += x0 * w1.z; a0_7 += x0 * w1.w;
    a0_8 += x0 * w2.x; a0_9 += x0 * w2.y; a0_10 += x0 * w2.z; a0_11 += x0 * w2.w;
    a0_12 += x0 * w3.x; a0_13 += x0 * w3.y; a0_14 += x0 * w3.z; a0_15 += x0 * w3.w;
    a1_0 += x1 * w0.x; a1_1 += x1 * w0.y; a1_2 += x1 * w0.z; a1_3 += x1 * w0.w;
    a1_4 += x1 * w1.x; a1_5 += x1 * w1.y; a1_6 += x1 * w1.z; a1_7 += x1 * w1.w;
    a1_8 += x1 * w2.x; a1_9 += x1 * w2.y; a1_10 += x1 * w2.z; a1_11 += x1 * w2.w;
    a1_12 += x1 * w3.x; a1_13 += x1 * w3.y; a1_14 += x1 * w3.z; a1_15 += x1 * w3.w;
  }
  let co = cg * 4u;
  if (p4 + 0u * WG < PW.stride4) {
    pwStore(co + 0u, p4 + 0u * WG, a0_0); pwStore(co + 1u, p4 + 0u * WG, a0_1); pwStore(co + 2u, p4 + 0u * WG, a0_2); pwStore(co + 3u, p4 + 0u * WG, a0_3);
    pwStore(co + 4u, p4 + 0u * WG, a0_4); pwStore(co + 5u, p4 + 0u * WG, a0_5); pwStore(co + 6u, p4 + 0u * WG, a0_6); pwStore(co + 7u, p4 + 0u * WG, a0_7);
    pwStore(co + 8u, p4 + 0u * WG, a0_8); pwStore(co + 9u, p4 + 0u * WG, a0_9); pwStore(co + 10u, p4 + 0u * WG, a0_10); pwStore(co + 11u, p4 + 0u * WG, a0_11);
    pwStore(co + 12u, p4 + 0u * WG, a0_12); pwStore(co + 13u, p4 + 0u * WG, a0_13); pwStore(co + 14u, p4 + 0u * WG, a0_14); pwStore(co + 15u, p4 + 0u * WG, a0_15);
  }
  if (p4 + 1u * WG < PW.stride4) {
    pwStore(co + 0u, p4 + 1u * WG, a1_0); pwStore(co + 1u, p4 + 1u * WG, a1_1); pwStore(co + 2u, p4 + 1u * WG, a1_2); pwStore(co + 3u, p4 + 1u * WG, a1_3);
    pwStore(co + 4u, p4 + 1u * WG, a1_4); pwStore(co + 5u, p4 + 1u * WG, a1_5); pwStore(co + 6u, p4 + 1u * WG, a1_6); pwStore(co + 7u, p4 + 1u * WG, a1_7);
    pwStore(co + 8u, p4 + 1u * WG, a1_8); pwStore(co + 9u, p4 + 1u * WG, a1_9); pwStore(co + 10u, p4 + 1u * WG, a1_10); pwStore(co + 11u, p4 + 1u * WG, a1_11);
    pwStore(co + 12u, p4 + 1u * WG, a1_12); pwStore(co + 13u, p4 + 1u * WG, a1_13); pwStore(co + 14u, p4 + 1u * WG, a1_14); pwStore(co + 15u, p4 + 1u * WG, a1_15);
  }
}

@compute @workgroup_size(WG)
fn pointwiseResidualWide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let p4 = wg.x * 2u * WG + t;
  let cg = wg.y * 4u;
  let q0 = min(p4 + 0u * WG, PW.stride4 - 1u);
  let q1 = min(p4 + 1u * WG, PW.stride4 - 1u);
  let b0 = pwBias[cg + 0u];
  let b1 = pwBias[cg + 1u];
  let b2 = pwBias[cg + 2u];
  let b3 = pwBias[cg + 3u];
  var a0_0 = vec4(b0.x);
  var a0_1 = vec4(b0.y);
  var a0_2 = vec4(b0.z);
  var a0_3 = vec4(b0.w);
  var a0_4 = vec4(b1.x);
  var a0_5 = vec4(b1.y);
  var a0_6 = vec4(b1.z);
  var a0_7 = vec4(b1.w);
  var a0_8 = vec4(b2.x);
  var a0_9 = vec4(b2.y);
  var a0_10 = vec4(b2.z);
  var a0_11 = vec4(b2.w);
  var a0_12 = vec4(b3.x);
  var a0_13 = vec4(b3.y);
  var a0_14 = vec4(b3.z);
  var a0_15 = vec4(b3.w);
  var a1_0 = vec4(b0.x);
  var a1_1 = vec4(b0.y);
  var a1_2 = vec4(b0.z);
  var a1_3 = vec4(b0.w);
  var a1_4 = vec4(b1.x);
  var a1_5 = vec4(b1.y);
  var a1_6 = vec4(b1.z);
  var a1_7 = vec4(b1.w);
  var a1_8 = vec4(b2.x);
  var a1_9 = vec4(b2.y);
  var a1_10 = vec4(b2.z);
  var a1_11 = vec4(b2.w);
  var a1_12 = vec4(b3.x);
  var a1_13 = vec4(b3.y);
  var a1_14 = vec4(b3.z);
  var a1_15 = vec4(b3.w);
  for (var ci = 0u; ci < PW.cin; ci++) {
    let i = ci * PW.stride4;
    let x0 = pwIn[i + q0];
    let x1 = pwIn[i + q1];
    let o = ci * PW.coutPad4 + cg;
    let w0 = pwW[o + 0u];
    let w1 = pwW[o + 1u];
    let w2 = pwW[o + 2u];
    let w3 = pwW[o + 3u];
    a0_0 += x0 * w0.x; a0_1 += x0 * w0.y; a0_2 += x0 * w0.z; a0_3 += x0 * w0.w;
    a0_4 += x0 * w1.x; a0_5 += x0 * w1.y; a0_6 += x0 * w1.z; a0_7 += x0 * w1.w;
    a0_8 += x0 * w2.x; a0_9 += x0 * w2.y; a0_10 += x0 * w2.z; a0_11 += x0 * w2.w;
    a0_12 += x0 * w3.x; a0_13 += x0 * w3.y; a0_14 += x0 * w3.z; a0_15 += x0 * w3.w;
    a1_0 += x1 * w0.x; a1_1 += x1 * w0.y; a1_2 += x1 * w0.z; a1_3 += x1 * w0.w;
    a1_4 += x1 * w1.x; a1_5 += x1 * w1.y; a1_6 += x1 * w1.z; a1_7 += x1 * w1.w;
    a1_8 += x1 * w2.x; a1_9 += x1 * w2.y; a1_10 += x1 * w2.z; a1_11 += x1 * w2.w;
    a1_12 += x1 * w3.x; a1_13 += x1 * w3.y; a1_14 += x1 * w3.z; a1_15 += x1 * w3.w;
  }
  let co = cg * 4u;
  if (p4 + 0u * WG < PW.stride4) {
    pwStoreRes(co + 0u, p4 + 0u * WG, a0_0); pwStoreRes(co + 1u, p4 + 0u * WG, a0_1); pwStoreRes(co + 2u, p4 + 0u * WG, a0_2); pwStoreRes(co + 3u, p4 + 0u * WG, a0_3);
    pwStoreRes(co + 4u, p4 + 0u * WG, a0_4); pwStoreRes(co + 5u, p4 + 0u * WG, a0_5); pwStoreRes(co + 6u, p4 + 0u * WG, a0_6); pwStoreRes(co + 7u, p4 + 0u * WG, a0_7);
    pwStoreRes(co + 8u, p4 + 0u * WG, a0_8); pwStoreRes(co + 9u, p4 + 0u * WG, a0_9); pwStoreRes(co + 10u, p4 + 0u * WG, a0_10); pwStoreRes(co + 11u, p4 + 0u * WG, a0_11);
    pwStoreRes(co + 12u, p4 + 0u * WG, a0_12); pwStoreRes(co + 13u, p4 + 0u * WG, a0_13); pwStoreRes(co + 14u, p4 + 0u * WG, a0_14); pwStoreRes(co + 15u, p4 + 0u * WG, a0_15);
  }
  if (p4 + 1u * WG < PW.stride4) {
    pwStoreRes(co + 0u, p4 + 1u * WG, a1_0); pwStoreRes(co + 1u, p4 + 1u * WG, a1_1); pwStoreRes(co + 2u, p4 + 1u * WG, a1_2); pwStoreRes(co + 3u, p4 + 1u * WG, a1_3);
    pwStoreRes(co + 4u, p4 + 1u * WG, a1_4); pwStoreRes(co + 5u, p4 + 1u * WG, a1_5); pwStoreRes(co + 6u, p4 + 1u * WG, a1_6); pwStoreRes(co + 7u, p4 + 1u * WG, a1_7);
    pwStoreRes(co + 8u, p4 + 1u * WG, a1_8); pwStoreRes(co + 9u, p4 + 1u * WG, a1_9); pwStoreRes(co + 10u, p4 + 1u * WG, a1_10); pwStoreRes(co + 11u, p4 + 1u * WG, a1_11);
    pwStoreRes(co + 12u, p4 + 1u * WG, a1_12); pwStoreRes(co + 13u, p4 + 1u * WG, a1_13); pwStoreRes(co + 14u, p4 + 1u * WG, a1_14); pwStoreRes(co + 15u, p4 + 1u * WG, a1_15);
  }
}

@compute @workgroup_size(WG)
fn pointwiseWider(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let p4 = wg.x * 4u * WG + t;
  let cg = wg.y * 4u;
  let q0 = min(p4 + 0u * WG, PW.stride4 - 1u);
  let q1 = min(p4 + 1u * WG, PW.stride4 - 1u);
  let q2 = min(p4 + 2u * WG, PW.stride4 - 1u);
  let q3 = min(p4 + 3u * WG, PW.stride4 - 1u);
  let b0 = pwBias[cg + 0u];
  let b1 = pwBias[cg + 1u];
  let b2 = pwBias[cg + 2u];
  let b3 = pwBias[cg + 3u];
  var a0_0 = vec4(b0.x);
  var a0_1 = vec4(b0.y);
  var a0_2 = vec4(b0.z);
  var a0_3 = vec4(b0.w);
  var a0_4 = vec4(b1.x);
  var a0_5 = vec4(b1.y);
  var a0_6 = vec4(b1.z);
  var a0_7 = vec4(b1.w);
  var a0_8 = vec4(b2.x);
  var a0_9 = vec4(b2.y);
  var a0_10 = vec4(b2.z);
  var a0_11 = vec4(b2.w);
  var a0_12 = vec4(b3.x);
  var a0_13 = vec4(b3.y);
  var a0_14 = vec4(b3.z);
  var a0_15 = vec4(b3.w);
  var a1_0 = vec4(b0.x);
  var a1_1 = vec4(b0.y);
  var a1_2 = vec4(b0.z);
  var a1_3 = vec4(b0.w);
  var a1_4 = vec4(b1.x);
  var a1_5 = vec4(b1.y);
  var a1_6 = vec4(b1.z);
  var a1_7 = vec4(b1.w);
  var a1_8 = vec4(b2.x);
  var a1_9 = vec4(b2.y);
  var a1_10 = vec4(b2.z);
  var a1_11 = vec4(b2.w);
  var a1_12 = vec4(b3.x);
  var a1_13 = vec4(b3.y);
  var a1_14 = vec4(b3.z);
  var a1_15 = vec4(b3.w);
  var a2_0 = vec4(b0.x);
  var a2_1 = vec4(b0.y);
  var a2_2 = vec4(b0.z);
  var a2_3 = vec4(b0.w);
  var a2_4 = vec4(b1.x);
  var a2_5 = vec4(b1.y);
  var a2_6 = vec4(b1.z);
  var a2_7 = vec4(b1.w);
  var a2_8 = vec4(b2.x);
  var a2_9 = vec4(b2.y);
  var a2_10 = vec4(b2.z);
  var a2_11 = vec4(b2.w);
  var a2_12 = vec4(b3.x);
  var a2_13 = vec4(b3.y);
  var a2_14 = vec4(b3.z);
  var a2_15 = vec4(b3.w);
  var a3_0 = vec4(b0.x);
  var a3_1 = vec4(b0.y);
  var a3_2 = vec4(b0.z);
  var a3_3 = vec4(b0.w);
  var a3_4 = vec4(b1.x);
  var a3_5 = vec4(b1.y);
  var a3_6 = vec4(b1.z);
  var a3_7 = vec4(b1.w);
  var a3_8 = vec4(b2.x);
  var a3_9 = vec4(b2.y);
  var a3_10 = vec4(b2.z);
  var a3_11 = vec4(b2.w);
  var a3_12 = vec4(b3.x);
  var a3_13 = vec4(b3.y);
  var a3_14 = vec4(b3.z);
  var a3_15 = vec4(b3.w);
  for (var ci = 0u; ci < PW.cin; ci++) {
    let i = ci * PW.stride4;
    let x0 = pwIn[i + q0];
    let x1 = pwIn[i + q1];
    let x2 = pwIn[i + q2];
    let x3 = pwIn[i + q3];
    let o = ci * PW.coutPad4 + cg;
    let w0 = pwW[o + 0u];
    let w1 = pwW[o + 1u];
    let w2 = pwW[o + 2u];
    let w3 = pwW[o + 3u];
    a0_0 += x0 * w0.x; a0_1 += x0 * w0.y; a0_2 += x0 * w0.z; a0_3 += x0 * w0.w;
    a0_4 += x0 * w1.x; a0_5 += x0 * w1.y; a0_6 += x0 * w1.z; a0_7 += x0 * w1.w;
    a0_8 += x0 * w2.x; a0_9 += x0 * w2.y; a0_10 += x0 * w2.z; a0_11 += x0 * w2.w;
    a0_12 += x0 * w3.x; a0_13 += x0 * w3.y; a0_14 += x0 * w3.z; a0_15 += x0 * w3.w;
    a1_0 += x1 * w0.x; a1_1 += x1 * w0.y; a1_2 += x1 * w0.z; a1_3 += x1 * w0.w;
    a1_4 += x1 * w1.x; a1_5 += x1 * w1.y; a1_6 += x1 * w1.z; a1_7 += x1 * w1.w;
    a1_8 += x1 * w2.x; a1_9 += x1 * w2.y; a1_10 += x1 * w2.z; a1_11 += x1 * w2.w;
    a1_12 += x1 * w3.x; a1_13 += x1 * w3.y; a1_14 += x1 * w3.z; a1_15 += x1 * w3.w;
    a2_0 += x2 * w0.x; a2_1 += x2 * w0.y; a2_2 += x2 * w0.z; a2_3 += x2 * w0.w;
    a2_4 += x2 * w1.x; a2_5 += x2 * w1.y; a2_6 += x2 * w1.z; a2_7 += x2 * w1.w;
    a2_8 += x2 * w2.x; a2_9 += x2 * w2.y; a2_10 += x2 * w2.z; a2_11 += x2 * w2.w;
    a2_12 += x2 * w3.x; a2_13 += x2 * w3.y; a2_14 += x2 * w3.z; a2_15 += x2 * w3.w;
    a3_0 += x3 * w0.x; a3_1 += x3 * w0.y; a3_2 += x3 * w0.z; a3_3 += x3 * w0.w;
    a3_4 += x3 * w1.x; a3_5 += x3 * w1.y; a3_6 += x3 * w1.z; a3_7 += x3 * w1.w;
    a3_8 += x3 * w2.x; a3_9 += x3 * w2.y; a3_10 += x3 * w2.z; a3_11 += x3 * w2.w;
    a3_12 += x3 * w3.x; a3_13 += x3 * w3.y; a3_14 += x3 * w3.z; a3_15 += x3 * w3.w;
  }
  let co = cg * 4u;
  if (p4 + 0u * WG < PW.stride4) {
    pwStore(co + 0u, p4 + 0u * WG, a0_0); pwStore(co + 1u, p4 + 0u * WG, a0_1); pwStore(co + 2u, p4 + 0u * WG, a0_2); pwStore(co + 3u, p4 + 0u * WG, a0_3);
    pwStore(co + 4u, p4 + 0u * WG, a0_4); pwStore(co + 5u, p4 + 0u * WG, a0_5); pwStore(co + 6u, p4 + 0u * WG, a0_6); pwStore(co + 7u, p4 + 0u * WG, a0_7);
    pwStore(co + 8u, p4 + 0u * WG, a0_8); pwStore(co + 9u, p4 + 0u * WG, a0_9); pwStore(co + 10u, p4 + 0u * WG, a0_10); pwStore(co + 11u, p4 + 0u * WG, a0_11);
    pwStore(co + 12u, p4 + 0u * WG, a0_12); pwStore(co + 13u, p4 + 0u * WG, a0_13); pwStore(co + 14u, p4 + 0u * WG, a0_14); pwStore(co + 15u, p4 + 0u * WG, a0_15);
  }
  if (p4 + 1u * WG < PW.stride4) {
    pwStore(co + 0u, p4 + 1u * WG, a1_0); pwStore(co + 1u, p4 + 1u * WG, a1_1); pwStore(co + 2u, p4 + 1u * WG, a1_2); pwStore(co + 3u, p4 + 1u * WG, a1_3);
    pwStore(co + 4u, p4 + 1u * WG, a1_4); pwStore(co + 5u, p4 + 1u * WG, a1_5); pwStore(co + 6u, p4 + 1u * WG, a1_6); pwStore(co + 7u, p4 + 1u * WG, a1_7);
    pwStore(co + 8u, p4 + 1u * WG, a1_8); pwStore(co + 9u, p4 + 1u * WG, a1_9); pwStore(co + 10u, p4 + 1u * WG, a1_10); pwStore(co + 11u, p4 + 1u * WG, a1_11);
    pwStore(co + 12u, p4 + 1u * WG, a1_12); pwStore(co + 13u, p4 + 1u * WG, a1_13); pwStore(co + 14u, p4 + 1u * WG, a1_14); pwStore(co + 15u, p4 + 1u * WG, a1_15);
  }
  if (p4 + 2u * WG < PW.stride4) {
    pwStore(co + 0u, p4 + 2u * WG, a2_0); pwStore(co + 1u, p4 + 2u * WG, a2_1); pwStore(co + 2u, p4 + 2u * WG, a2_2); pwStore(co + 3u, p4 + 2u * WG, a2_3);
    pwStore(co + 4u, p4 + 2u * WG, a2_4); pwStore(co + 5u, p4 + 2u * WG, a2_5); pwStore(co + 6u, p4 + 2u * WG, a2_6); pwStore(co + 7u, p4 + 2u * WG, a2_7);
    pwStore(co + 8u, p4 + 2u * WG, a2_8); pwStore(co + 9u, p4 + 2u * WG, a2_9); pwStore(co + 10u, p4 + 2u * WG, a2_10); pwStore(co + 11u, p4 + 2u * WG, a2_11);
    pwStore(co + 12u, p4 + 2u * WG, a2_12); pwStore(co + 13u, p4 + 2u * WG, a2_13); pwStore(co + 14u, p4 + 2u * WG, a2_14); pwStore(co + 15u, p4 + 2u * WG, a2_15);
  }
  if (p4 + 3u * WG < PW.stride4) {
    pwStore(co + 0u, p4 + 3u * WG, a3_0); pwStore(co + 1u, p4 + 3u * WG, a3_1); pwStore(co + 2u, p4 + 3u * WG, a3_2); pwStore(co + 3u, p4 + 3u * WG, a3_3);
    pwStore(co + 4u, p4 + 3u * WG, a3_4); pwStore(co + 5u, p4 + 3u * WG, a3_5); pwStore(co + 6u, p4 + 3u * WG, a3_6); pwStore(co + 7u, p4 + 3u * WG, a3_7);
    pwStore(co + 8u, p4 + 3u * WG, a3_8); pwStore(co + 9u, p4 + 3u * WG, a3_9); pwStore(co + 10u, p4 + 3u * WG, a3_10); pwStore(co + 11u, p4 + 3u * WG, a3_11);
    pwStore(co + 12u, p4 + 3u * WG, a3_12); pwStore(co + 13u, p4 + 3u * WG, a3_13); pwStore(co + 14u, p4 + 3u * WG, a3_14); pwStore(co + 15u, p4 + 3u * WG, a3_15);
  }
}

@compute @workgroup_size(WG)
fn pointwiseResidualWider(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let p4 = wg.x * 4u * WG + t;
  let cg = wg.y * 4u;
  let q0 = min(p4 + 0u * WG, PW.stride4 - 1u);
  let q1 = min(p4 + 1u * WG, PW.stride4 - 1u);
  let q2 = min(p4 + 2u * WG, PW.stride4 - 1u);
  let q3 = min(p4 + 3u * WG, PW.stride4 - 1u);
  let b0 = pwBias[cg + 0u];
  let b1 = pwBias[cg + 1u];
  let b2 = pwBias[cg + 2u];
  let b3 = pwBias[cg + 3u];
  var a0_0 = vec4(b0.x);
  var a0_1 = vec4(b0.y);
  var a0_2 = vec4(b0.z);
  var a0_3 = vec4(b0.w);
  var a0_4 = vec4(b1.x);
  var a0_5 = vec4(b1.y);
  var a0_6 = vec4(b1.z);
  var a0_7 = vec4(b1.w);
  var a0_8 = vec4(b2.x);
  var a0_9 = vec4(b2.y);
  var a0_10 = vec4(b2.z);
  var a0_11 = vec4(b2.w);
  var a0_12 = vec4(b3.x);
  var a0_13 = vec4(b3.y);
  var a0_14 = vec4(b3.z);
  var a0_15 = vec4(b3.w);
  var a1_0 = vec4(b0.x);
  var a1_1 = vec4(b0.y);
  var a1_2 = vec4(b0.z);
  var a1_3 = vec4(b0.w);
  var a1_4 = vec4(b1.x);
  var a1_5 = vec4(b1.y);
  var a1_6 = vec4(b1.z);
  var a1_7 = vec4(b1.w);
  var a1_8 = vec4(b2.x);
  var a1_9 = vec4(b2.y);
  var a1_10 = vec4(b2.z);
  var a1_11 = vec4(b2.w);
  var a1_12 = vec4(b3.x);
  var a1_13 = vec4(b3.y);
  var a1_14 = vec4(b3.z);
  var a1_15 = vec4(b3.w);
  var a2_0 = vec4(b0.x);
  var a2_1 = vec4(b0.y);
  var a2_2 = vec4(b0.z);
  var a2_3 = vec4(b0.w);
  var a2_4 = vec4(b1.x);
  var a2_5 = vec4(b1.y);
  var a2_6 = vec4(b1.z);
  var a2_7 = vec4(b1.w);
  var a2_8 = vec4(b2.x);
  var a2_9 = vec4(b2.y);
  var a2_10 = vec4(b2.z);
  var a2_11 = vec4(b2.w);
  var a2_12 = vec4(b3.x);
  var a2_13 = vec4(b3.y);
  var a2_14 = vec4(b3.z);
  var a2_15 = vec4(b3.w);
  var a3_0 = vec4(b0.x);
  var a3_1 = vec4(b0.y);
  var a3_2 = vec4(b0.z);
  var a3_3 = vec4(b0.w);
  var a3_4 = vec4(b1.x);
  var a3_5 = vec4(b1.y);
  var a3_6 = vec4(b1.z);
  var a3_7 = vec4(b1.w);
  var a3_8 = vec4(b2.x);
  var a3_9 = vec4(b2.y);
  var a3_10 = vec4(b2.z);
  var a3_11 = vec4(b2.w);
  var a3_12 = vec4(b3.x);
  var a3_13 = vec4(b3.y);
  var a3_14 = vec4(b3.z);
  var a3_15 = vec4(b3.w);
  for (var ci = 0u; ci < PW.cin; ci++) {
    let i = ci * PW.stride4;
    let x0 = pwIn[i + q0];
    let x1 = pwIn[i + q1];
    let x2 = pwIn[i + q2];
    let x3 = pwIn[i + q3];
    let o = ci * PW.coutPad4 + cg;
    let w0 = pwW[o + 0u];
    let w1 = pwW[o + 1u];
    let w2 = pwW[o + 2u];
    let w3 = pwW[o + 3u];
    a0_0 += x0 * w0.x; a0_1 += x0 * w0.y; a0_2 += x0 * w0.z; a0_3 += x0 * w0.w;
    a0_4 += x0 * w1.x; a0_5 += x0 * w1.y; a0_6 += x0 * w1.z; a0_7 += x0 * w1.w;
    a0_8 += x0 * w2.x; a0_9 += x0 * w2.y; a0_10 += x0 * w2.z; a0_11 += x0 * w2.w;
    a0_12 += x0 * w3.x; a0_13 += x0 * w3.y; a0_14 += x0 * w3.z; a0_15 += x0 * w3.w;
    a1_0 += x1 * w0.x; a1_1 += x1 * w0.y; a1_2 += x1 * w0.z; a1_3 += x1 * w0.w;
    a1_4 += x1 * w1.x; a1_5 += x1 * w1.y; a1_6 += x1 * w1.z; a1_7 += x1 * w1.w;
    a1_8 += x1 * w2.x; a1_9 += x1 * w2.y; a1_10 += x1 * w2.z; a1_11 += x1 * w2.w;
    a1_12 += x1 * w3.x; a1_13 += x1 * w3.y; a1_14 += x1 * w3.z; a1_15 += x1 * w3.w;
    a2_0 += x2 * w0.x; a2_1 += x2 * w0.y; a2_2 += x2 * w0.z; a2_3 += x2 * w0.w;
    a2_4 += x2 * w1.x; a2_5 += x2 * w1.y; a2_6 += x2 * w1.z; a2_7 += x2 * w1.w;
    a2_8 += x2 * w2.x; a2_9 += x2 * w2.y; a2_10 += x2 * w2.z; a2_11 += x2 * w2.w;
    a2_12 += x2 * w3.x; a2_13 += x2 * w3.y; a2_14 += x2 * w3.z; a2_15 += x2 * w3.w;
    a3_0 += x3 * w0.x; a3_1 += x3 * w0.y; a3_2 += x3 * w0.z; a3_3 += x3 * w0.w;
    a3_4 += x3 * w1.x; a3_5 += x3 * w1.y; a3_6 += x3 * w1.z; a3_7 += x3 * w1.w;
    a3_8 += x3 * w2.x; a3_9 += x3 * w2.y; a3_10 += x3 * w2.z; a3_11 += x3 * w2.w;
    a3_12 += x3 * w3.x; a3_13 += x3 * w3.y; a3_14 += x3 * w3.z; a3_15 += x3 * w3.w;
  }
  let co = cg * 4u;
  if (p4 + 0u * WG < PW.stride4) {
    pwStoreRes(co + 0u, p4 + 0u * WG, a0_0); pwStoreRes(co + 1u, p4 + 0u * WG, a0_1); pwStoreRes(co + 2u, p4 + 0u * WG, a0_2); pwStoreRes(co + 3u, p4 + 0u * WG, a0_3);
    pwStoreRes(co + 4u, p4 + 0u * WG, a0_4); pwStoreRes(co + 5u, p4 + 0u * WG, a0_5); pwStoreRes(co + 6u, p4 + 0u * WG, a0_6); pwStoreRes(co + 7u, p4 + 0u * WG, a0_7);
    pwStoreRes(co + 8u, p4 + 0u * WG, a0_8); pwStoreRes(co + 9u, p4 + 0u * WG, a0_9); pwStoreRes(co + 10u, p4 + 0u * WG, a0_10); pwStoreRes(co + 11u, p4 + 0u * WG, a0_11);
    pwStoreRes(co + 12u, p4 + 0u * WG, a0_12); pwStoreRes(co + 13u, p4 + 0u * WG, a0_13); pwStoreRes(co + 14u, p4 + 0u * WG, a0_14); pwStoreRes(co + 15u, p4 + 0u * WG, a0_15);
  }
  if (p4 + 1u * WG < PW.stride4) {
    pwStoreRes(co + 0u, p4 + 1u * WG, a1_0); pwStoreRes(co + 1u, p4 + 1u * WG, a1_1); pwStoreRes(co + 2u, p4 + 1u * WG, a1_2); pwStoreRes(co + 3u, p4 + 1u * WG, a1_3);
    pwStoreRes(co + 4u, p4 + 1u * WG, a1_4); pwStoreRes(co + 5u, p4 + 1u * WG, a1_5); pwStoreRes(co + 6u, p4 + 1u * WG, a1_6); pwStoreRes(co + 7u, p4 + 1u * WG, a1_7);
    pwStoreRes(co + 8u, p4 + 1u * WG, a1_8); pwStoreRes(co + 9u, p4 + 1u * WG, a1_9); pwStoreRes(co + 10u, p4 + 1u * WG, a1_10); pwStoreRes(co + 11u, p4 + 1u * WG, a1_11);
    pwStoreRes(co + 12u, p4 + 1u * WG, a1_12); pwStoreRes(co + 13u, p4 + 1u * WG, a1_13); pwStoreRes(co + 14u, p4 + 1u * WG, a1_14); pwStoreRes(co + 15u, p4 + 1u * WG, a1_15);
  }
  if (p4 + 2u * WG < PW.stride4) {
    pwStoreRes(co + 0u, p4 + 2u * WG, a2_0); pwStoreRes(co + 1u, p4 + 2u * WG, a2_1); pwStoreRes(co + 2u, p4 + 2u * WG, a2_2); pwStoreRes(co + 3u, p4 + 2u * WG, a2_3);
    pwStoreRes(co + 4u, p4 + 2u * WG, a2_4); pwStoreRes(co + 5u, p4 + 2u * WG, a2_5); pwStoreRes(co + 6u, p4 + 2u * WG, a2_6); pwStoreRes(co + 7u, p4 + 2u * WG, a2_7);
    pwStoreRes(co + 8u, p4 + 2u * WG, a2_8); pwStoreRes(co + 9u, p4 + 2u * WG, a2_9); pwStoreRes(co + 10u, p4 + 2u * WG, a2_10); pwStoreRes(co + 11u, p4 + 2u * WG, a2_11);
    pwStoreRes(co + 12u, p4 + 2u * WG, a2_12); pwStoreRes(co + 13u, p4 + 2u * WG, a2_13); pwStoreRes(co + 14u, p4 + 2u * WG, a2_14); pwStoreRes(co + 15u, p4 + 2u * WG, a2_15);
  }
  if (p4 + 3u * WG < PW.stride4) {
    pwStoreRes(co + 0u, p4 + 3u * WG, a3_0); pwStoreRes(co + 1u, p4 + 3u * WG, a3_1); pwStoreRes(co + 2u, p4 + 3u * WG, a3_2); pwStoreRes(co + 3u, p4 + 3u * WG, a3_3);
    pwStoreRes(co + 4u, p4 + 3u * WG, a3_4); pwStoreRes(co + 5u, p4 + 3u * WG, a3_5); pwStoreRes(co + 6u, p4 + 3u * WG, a3_6); pwStoreRes(co + 7u, p4 + 3u * WG, a3_7);
    pwStoreRes(co + 8u, p4 + 3u * WG, a3_8); pwStoreRes(co + 9u, p4 + 3u * WG, a3_9); pwStoreRes(co + 10u, p4 + 3u * WG, a3_10); pwStoreRes(co + 11u, p4 + 3u * WG, a3_11);
    pwStoreRes(co + 12u, p4 + 3u * WG, a3_12); pwStoreRes(co + 13u, p4 + 3u * WG, a3_13); pwStoreRes(co + 14u, p4 + 3u * WG, a3_14); pwStoreRes(co + 15u, p4 + 3u * WG, a3_15);
  }
}

@compute @workgroup_size(WG)
fn pointwiseTall(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let p4 = wg.x * 4u * WG + t;
  let cg = wg.y * 2u;
  let q0 = min(p4 + 0u * WG, PW.stride4 - 1u);
  let q1 = min(p4 + 1u * WG, PW.stride4 - 1u);
  let q2 = min(p4 + 2u * WG, PW.stride4 - 1u);
  let q3 = min(p4 + 3u * WG, PW.stride4 - 1u);
  let b0 = pwBias[cg + 0u];
  let b1 = pwBias[cg + 1u];
  var a0_0 = vec4(b0.x);
  var a0_1 = vec4(b0.y);
  var a0_2 = vec4(b0.z);
  var a0_3 = vec4(b0.w);
  var a0_4 = vec4(b1.x);
  var a0_5 = vec4(b1.y);
  var a0_6 = vec4(b1.z);
  var a0_7 = vec4(b1.w);
  var a1_0 = vec4(b0.x);
  var a1_1 = vec4(b0.y);
  var a1_2 = vec4(b0.z);
  var a1_3 = vec4(b0.w);
  var a1_4 = vec4(b1.x);
  var a1_5 = vec4(b1.y);
  var a1_6 = vec4(b1.z);
  var a1_7 = vec4(b1.w);
  var a2_0 = vec4(b0.x);
  var a2_1 = vec4(b0.y);
  var a2_2 = vec4(b0.z);
  var a2_3 = vec4(b0.w);
  var a2_4 = vec4(b1.x);
  var a2_5 = vec4(b1.y);
  var a2_6 = vec4(b1.z);
  var a2_7 = vec4(b1.w);
  var a3_0 = vec4(b0.x);
  var a3_1 = vec4(b0.y);
  var a3_2 = vec4(b0.z);
  var a3_3 = vec4(b0.w);
  var a3_4 = vec4(b1.x);
  var a3_5 = vec4(b1.y);
  var a3_6 = vec4(b1.z);
  var a3_7 = vec4(b1.w);
  for (var ci = 0u; ci < PW.cin; ci++) {
    let i = ci * PW.stride4;
    let x0 = pwIn[i + q0];
    let x1 = pwIn[i + q1];
    let x2 = pwIn[i + q2];
    let x3 = pwIn[i + q3];
    let o = ci * PW.coutPad4 + cg;
    let w0 = pwW[o + 0u];
    let w1 = pwW[o + 1u];
    a0_0 += x0 * w0.x; a0_1 += x0 * w0.y; a0_2 += x0 * w0.z; a0_3 += x0 * w0.w;
    a0_4 += x0 * w1.x; a0_5 += x0 * w1.y; a0_6 += x0 * w1.z; a0_7 += x0 * w1.w;
    a1_0 += x1 * w0.x; a1_1 += x1 * w0.y; a1_2 += x1 * w0.z; a1_3 += x1 * w0.w;
    a1_4 += x1 * w1.x; a1_5 += x1 * w1.y; a1_6 += x1 * w1.z; a1_7 += x1 * w1.w;
    a2_0 += x2 * w0.x; a2_1 += x2 * w0.y; a2_2 += x2 * w0.z; a2_3 += x2 * w0.w;
    a2_4 += x2 * w1.x; a2_5 += x2 * w1.y; a2_6 += x2 * w1.z; a2_7 += x2 * w1.w;
    a3_0 += x3 * w0.x; a3_1 += x3 * w0.y; a3_2 += x3 * w0.z; a3_3 += x3 * w0.w;
    a3_4 += x3 * w1.x; a3_5 += x3 * w1.y; a3_6 += x3 * w1.z; a3_7 += x3 * w1.w;
  }
  let co = cg * 4u;
  if (p4 + 0u * WG < PW.stride4) {
    pwStore(co + 0u, p4 + 0u * WG, a0_0); pwStore(co + 1u, p4 + 0u * WG, a0_1); pwStore(co + 2u, p4 + 0u * WG, a0_2); pwStore(co + 3u, p4 + 0u * WG, a0_3);
    pwStore(co + 4u, p4 + 0u * WG, a0_4); pwStore(co + 5u, p4 + 0u * WG, a0_5); pwStore(co + 6u, p4 + 0u * WG, a0_6); pwStore(co + 7u, p4 + 0u * WG, a0_7);
  }
  if (p4 + 1u * WG < PW.stride4) {
    pwStore(co + 0u, p4 + 1u * WG, a1_0); pwStore(co + 1u, p4 + 1u * WG, a1_1); pwStore(co + 2u, p4 + 1u * WG, a1_2); pwStore(co + 3u, p4 + 1u * WG, a1_3);
    pwStore(co + 4u, p4 + 1u * WG, a1_4); pwStore(co + 5u, p4 + 1u * WG, a1_5); pwStore(co + 6u, p4 + 1u * WG, a1_6); pwStore(co + 7u, p4 + 1u * WG, a1_7);
  }
  if (p4 + 2u * WG < PW.stride4) {
    pwStore(co + 0u, p4 + 2u * WG, a2_0); pwStore(co + 1u, p4 + 2u * WG, a2_1); pwStore(co + 2u, p4 + 2u * WG, a2_2); pwStore(co + 3u, p4 + 2u * WG, a2_3);
    pwStore(co + 4u, p4 + 2u * WG, a2_4); pwStore(co + 5u, p4 + 2u * WG, a2_5); pwStore(co + 6u, p4 + 2u * WG, a2_6); pwStore(co + 7u, p4 + 2u * WG, a2_7);
  }
  if (p4 + 3u * WG < PW.stride4) {
    pwStore(co + 0u, p4 + 3u * WG, a3_0); pwStore(co + 1u, p4 + 3u * WG, a3_1); pwStore(co + 2u, p4 + 3u * WG, a3_2); pwStore(co + 3u, p4 + 3u * WG, a3_3);
    pwStore(co + 4u, p4 + 3u * WG, a3_4); pwStore(co + 5u, p4 + 3u * WG, a3_5); pwStore(co + 6u, p4 + 3u * WG, a3_6); pwStore(co + 7u, p4 + 3u * WG, a3_7);
  }
}

@compute @workgroup_size(WG)
fn pointwiseResidualTall(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let p4 = wg.x * 4u * WG + t;
  let cg = wg.y * 2u;
  let q0 = min(p4 + 0u * WG, PW.stride4 - 1u);
  let q1 = min(p4 + 1u * WG, PW.stride4 - 1u);
  let q2 = min(p4 + 2u * WG, PW.stride4 - 1u);
  let q3 = min(p4 + 3u * WG, PW.stride4 - 1u);
  let b0 = pwBias[cg + 0u];
  let b1 = pwBias[cg + 1u];
  var a0_0 = vec4(b0.x);
  var a0_1 = vec4(b0.y);
  var a0_2 = vec4(b0.z);
  var a0_3 = vec4(b0.w);
  var a0_4 = vec4(b1.x);
  var a0_5 = vec4(b1.y);
  var a0_6 = vec4(b1.z);
  var a0_7 = vec4(b1.w);
  var a1_0 = vec4(b0.x);
  var a1_1 = vec4(b0.y);
  var a1_2 = vec4(b0.z);
  var a1_3 = vec4(b0.w);
  var a1_4 = vec4(b1.x);
  var a1_5 = vec4(b1.y);
  var a1_6 = vec4(b1.z);
  var a1_7 = vec4(b1.w);
  var a2_0 = vec4(b0.x);
  var a2_1 = vec4(b0.y);
  var a2_2 = vec4(b0.z);
  var a2_3 = vec4(b0.w);
  var a2_4 = vec4(b1.x);
  var a2_5 = vec4(b1.y);
  var a2_6 = vec4(b1.z);
  var a2_7 = vec4(b1.w);
  var a3_0 = vec4(b0.x);
  var a3_1 = vec4(b0.y);
  var a3_2 = vec4(b0.z);
  var a3_3 = vec4(b0.w);
  var a3_4 = vec4(b1.x);
  var a3_5 = vec4(b1.y);
  var a3_6 = vec4(b1.z);
  var a3_7 = vec4(b1.w);
  for (var ci = 0u; ci < PW.cin; ci++) {
    let i = ci * PW.stride4;
    let x0 = pwIn[i + q0];
    let x1 = pwIn[i + q1];
    let x2 = pwIn[i + q2];
    let x3 = pwIn[i + q3];
    let o = ci * PW.coutPad4 + cg;
    let w0 = pwW[o + 0u];
    let w1 = pwW[o + 1u];
    a0_0 += x0 * w0.x; a0_1 += x0 * w0.y; a0_2 += x0 * w0.z; a0_3 += x0 * w0.w;
    a0_4 += x0 * w1.x; a0_5 += x0 * w1.y; a0_6 += x0 * w1.z; a0_7 += x0 * w1.w;
    a1_0 += x1 * w0.x; a1_1 += x1 * w0.y; a1_2 += x1 * w0.z; a1_3 += x1 * w0.w;
    a1_4 += x1 * w1.x; a1_5 += x1 * w1.y; a1_6 += x1 * w1.z; a1_7 += x1 * w1.w;
    a2_0 += x2 * w0.x; a2_1 += x2 * w0.y; a2_2 += x2 * w0.z; a2_3 += x2 * w0.w;
    a2_4 += x2 * w1.x; a2_5 += x2 * w1.y; a2_6 += x2 * w1.z; a2_7 += x2 * w1.w;
    a3_0 += x3 * w0.x; a3_1 += x3 * w0.y; a3_2 += x3 * w0.z; a3_3 += x3 * w0.w;
    a3_4 += x3 * w1.x; a3_5 += x3 * w1.y; a3_6 += x3 * w1.z; a3_7 += x3 * w1.w;
  }
  let co = cg * 4u;
  if (p4 + 0u * WG < PW.stride4) {
    pwStoreRes(co + 0u, p4 + 0u * WG, a0_0); pwStoreRes(co + 1u, p4 + 0u * WG, a0_1); pwStoreRes(co + 2u, p4 + 0u * WG, a0_2); pwStoreRes(co + 3u, p4 + 0u * WG, a0_3);
    pwStoreRes(co + 4u, p4 + 0u * WG, a0_4); pwStoreRes(co + 5u, p4 + 0u * WG, a0_5); pwStoreRes(co + 6u, p4 + 0u * WG, a0_6); pwStoreRes(co + 7u, p4 + 0u * WG, a0_7);
  }
  if (p4 + 1u * WG < PW.stride4) {
    pwStoreRes(co + 0u, p4 + 1u * WG, a1_0); pwStoreRes(co + 1u, p4 + 1u * WG, a1_1); pwStoreRes(co + 2u, p4 + 1u * WG, a1_2); pwStoreRes(co + 3u, p4 + 1u * WG, a1_3);
    pwStoreRes(co + 4u, p4 + 1u * WG, a1_4); pwStoreRes(co + 5u, p4 + 1u * WG, a1_5); pwStoreRes(co + 6u, p4 + 1u * WG, a1_6); pwStoreRes(co + 7u, p4 + 1u * WG, a1_7);
  }
  if (p4 + 2u * WG < PW.stride4) {
    pwStoreRes(co + 0u, p4 + 2u * WG, a2_0); pwStoreRes(co + 1u, p4 + 2u * WG, a2_1); pwStoreRes(co + 2u, p4 + 2u * WG, a2_2); pwStoreRes(co + 3u, p4 + 2u * WG, a2_3);
    pwStoreRes(co + 4u, p4 + 2u * WG, a2_4); pwStoreRes(co + 5u, p4 + 2u * WG, a2_5); pwStoreRes(co + 6u, p4 + 2u * WG, a2_6); pwStoreRes(co + 7u, p4 + 2u * WG, a2_7);
  }
  if (p4 + 3u * WG < PW.stride4) {
    pwStoreRes(co + 0u, p4 + 3u * WG, a3_0); pwStoreRes(co + 1u, p4 + 3u * WG, a3_1); pwStoreRes(co + 2u, p4 + 3u * WG, a3_2); pwStoreRes(co + 3u, p4 + 3u * WG, a3_3);
    pwStoreRes(co + 4u, p4 + 3u * WG, a3_4); pwStoreRes(co + 5u, p4 + 3u * WG, a3_5); pwStoreRes(co + 6u, p4 + 3u * WG, a3_6); pwStoreRes(co + 7u, p4 + 3u * WG, a3_7);
  }
}
// </pointwise tiles>

// ---- Depthwise convolution (depth multiplier 1; window and stride from the overrides): 4 horizontally
// adjacent output pixels per invocation, which share their input columns; one channel per workgroup, so
// the channel's weights are uniform. Weights [c][kh][kw].
const DW_SPAN: u32 = 16u; // input columns an invocation reads per row: 3 * SW + KW <= DW_SPAN
struct DwParams { inW: u32, inH: u32, inStride: u32, outW: u32, outH: u32, outStride: u32, padTop: u32, padLeft: u32, lo: f32, hi: f32 }
@group(0) @binding(0) var<uniform> DW: DwParams;
@group(0) @binding(1) var<storage, read> dwIn: array<f32>;
@group(0) @binding(2) var<storage, read> dwW: array<f32>;
@group(0) @binding(3) var<storage, read> dwBias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dwOut: array<f32>;

@compute @workgroup_size(WG)
fn depthwise(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let ox0 = (wg.x * TW + t % TW) * 4u;
  let oy = wg.y * (WG / TW) + t / TW;
  let c = wg.z;
  let iy0 = i32(oy * SH) - i32(DW.padTop);
  let ix0 = i32(ox0 * SW) - i32(DW.padLeft);
  let base = c * DW.inStride;
  let wbase = c * KH * KW;
  let b = dwBias[c];
  var a0 = b; var a1 = b; var a2 = b; var a3 = b;
  var v: array<f32, DW_SPAN>;
  for (var ky = 0u; ky < KH; ky++) {
    let iy = iy0 + i32(ky);
    let rowOk = iy >= 0 && iy < i32(DW.inH);
    let row = base + u32(clamp(iy, 0, i32(DW.inH) - 1)) * DW.inW;
    for (var j = 0u; j < 3u * SW + KW; j++) {
      let ix = ix0 + i32(j);
      v[j] = select(0.0, dwIn[row + u32(clamp(ix, 0, i32(DW.inW) - 1))], rowOk && ix >= 0 && ix < i32(DW.inW));
    }
    for (var kx = 0u; kx < KW; kx++) {
      let w = dwW[wbase + ky * KW + kx];
      a0 += v[kx] * w; a1 += v[SW + kx] * w; a2 += v[2u * SW + kx] * w; a3 += v[3u * SW + kx] * w;
    }
  }
  if (oy >= DW.outH) { return; }
  let o = c * DW.outStride + oy * DW.outW + ox0;
  if (ox0 < DW.outW) { dwOut[o] = clamp(a0, DW.lo, DW.hi); }
  if (ox0 + 1u < DW.outW) { dwOut[o + 1u] = clamp(a1, DW.lo, DW.hi); }
  if (ox0 + 2u < DW.outW) { dwOut[o + 2u] = clamp(a2, DW.lo, DW.hi); }
  if (ox0 + 3u < DW.outW) { dwOut[o + 3u] = clamp(a3, DW.lo, DW.hi); }
}

// ---- The 3x3 depthwise convolution on vec4 rows (the common case of MobileNetV2: stride 1 with one column of
// left padding, or stride 2 with none, row widths multiples of 4; the runtime falls back to `depthwise`
// otherwise): an invocation computes 4 adjacent outputs (one vec4) on ROWS rows. On a CPU adapter every
// storage access whose address varies per invocation costs about the same whatever its width, so this reads
// 3 vec4 per input row (and each input row once for the ROWS output rows it feeds) and writes one vec4 per
// output row: ~1 load and 1/4 store per output against 4.5 and 1 above. Rows outside the input are zero;
// a column left or right of the row is zero (the padding). SH = SW is the stride.
override ROWS: u32 = 4u;
// Stride 2 only: left padding 0 (Keras 'same': windows start on even columns) or 1 (symmetric, GluonCV).
override PL: u32 = 0u;
@group(0) @binding(1) var<storage, read> dw4In: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dw4Out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn depthwise3x3(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let q = wg.x * TW + t % TW;
  let oy0 = (wg.y * (WG / TW) + t / TW) * ROWS;
  let c = wg.z;
  let outW4 = DW.outW / 4u;
  let inW4 = DW.inW / 4u;
  if (q >= outW4 || oy0 >= DW.outH) { return; }
  let base = c * (DW.inStride / 4u);
  var wt: array<f32, 9>;
  for (var k = 0u; k < 9u; k++) { wt[k] = dwW[c * 9u + k]; }
  let b = vec4(dwBias[c]);
  var acc: array<vec4<f32>, 4>;
  for (var j = 0u; j < ROWS; j++) { acc[j] = b; }
  let iy0 = i32(oy0 * SH) - i32(DW.padTop);
  for (var i = 0u; i < (ROWS - 1u) * SH + 3u; i++) {
    let iy = iy0 + i32(i);
    let ok = iy >= 0 && iy < i32(DW.inH);
    let row = base + u32(clamp(iy, 0, i32(DW.inH) - 1)) * inW4;
    var s0: vec4<f32>;
    var s1: vec4<f32>;
    var s2: vec4<f32>;
    if (SW == 1u) {
      let m = dw4In[row + q];
      let l = select(0.0, dw4In[row + max(q, 1u) - 1u].w, q > 0u);
      let r = select(0.0, dw4In[row + min(q + 1u, inW4 - 1u)].x, q + 1u < inW4);
      s0 = vec4(l, m.xyz);
      s1 = m;
      s2 = vec4(m.yzw, r);
    } else if (PL == 0u) {
      let a = dw4In[row + 2u * q];
      let e = dw4In[row + 2u * q + 1u];
      let r = select(0.0, dw4In[row + min(2u * q + 2u, inW4 - 1u)].x, 2u * q + 2u < inW4);
      s0 = vec4(a.x, a.z, e.x, e.z);
      s1 = vec4(a.y, a.w, e.y, e.w);
      s2 = vec4(a.z, e.x, e.z, r);
    } else {
      // Output column 4q + j reads input columns 8q + 2j - 1 .. 8q + 2j + 1.
      let a = dw4In[row + 2u * q];
      let e = dw4In[row + 2u * q + 1u];
      let l = select(0.0, dw4In[row + max(2u * q, 1u) - 1u].w, q > 0u);
      s0 = vec4(l, a.y, a.w, e.y);
      s1 = vec4(a.x, a.z, e.x, e.z);
      s2 = vec4(a.y, a.w, e.y, e.w);
    }
    let z = vec4(0.0);
    s0 = select(z, s0, ok);
    s1 = select(z, s1, ok);
    s2 = select(z, s2, ok);
    for (var j = 0u; j < ROWS; j++) {
      let ky = i32(i) - i32(j * SH);
      if (ky >= 0 && ky < 3) {
        let k = u32(ky) * 3u;
        acc[j] += s0 * wt[k];
        acc[j] += s1 * wt[k + 1u];
        acc[j] += s2 * wt[k + 2u];
      }
    }
  }
  let ob = c * (DW.outStride / 4u) + q;
  for (var j = 0u; j < ROWS; j++) {
    let oy = oy0 + j;
    if (oy < DW.outH) { dw4Out[ob + oy * outW4] = clamp(acc[j], vec4(DW.lo), vec4(DW.hi)); }
  }
}

// ---- Max pool (window and stride from the overrides), one output pixel per invocation, one channel per
// workgroup z. Window positions outside the input are skipped, which is padding with -inf.
struct PoolParams { inW: u32, inH: u32, inStride: u32, outW: u32, outH: u32, outStride: u32, padTop: u32, padLeft: u32, lo: f32, hi: f32 }
@group(0) @binding(0) var<uniform> MP: PoolParams;
@group(0) @binding(1) var<storage, read> mpIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> mpOut: array<f32>;

@compute @workgroup_size(WG)
fn maxPool(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let ox = wg.x * TW + t % TW;
  let oy = wg.y * (WG / TW) + t / TW;
  let c = wg.z;
  if (ox >= MP.outW || oy >= MP.outH) { return; }
  let iy0 = i32(oy * SH) - i32(MP.padTop);
  let ix0 = i32(ox * SW) - i32(MP.padLeft);
  let base = c * MP.inStride;
  var m = -3.4028234663852886e38;
  for (var ky = 0u; ky < KH; ky++) {
    let iy = iy0 + i32(ky);
    if (iy < 0 || iy >= i32(MP.inH)) { continue; }
    for (var kx = 0u; kx < KW; kx++) {
      let ix = ix0 + i32(kx);
      if (ix < 0 || ix >= i32(MP.inW)) { continue; }
      m = max(m, mpIn[base + u32(iy) * MP.inW + u32(ix)]);
    }
  }
  mpOut[c * MP.outStride + oy * MP.outW + ox] = clamp(m, MP.lo, MP.hi);
}

// ---- Element-wise addition of two tensors of one shape (when it could not be fused), then the clamp.
struct AddParams { n4: u32, lo: f32, hi: f32 }
@group(0) @binding(0) var<uniform> AD: AddParams;
@group(0) @binding(1) var<storage, read> addA: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> addB: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> addOut: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn add(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = g.x + g.y * nwg.x * WG;
  if (i >= AD.n4) { return; }
  addOut[i] = clamp(addA[i] + addB[i], vec4(AD.lo), vec4(AD.hi));
}

// ---- PatchCore's local aggregation: the mean of each pixel's (2r+1)^2 neighbourhood (neighbours outside the
// map are left out of the mean) for the channels c0, c0 + 1, ..., written as compact planes for resampling.
struct MeanParams { width: u32, height: u32, inStride: u32, radius: u32, c0: u32 }
@group(0) @binding(0) var<uniform> MN: MeanParams;
@group(0) @binding(1) var<storage, read> meanIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> meanOut: array<f32>;

@compute @workgroup_size(WG)
fn localMean(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let x = i32(wg.x * TW + t % TW);
  let y = i32(wg.y * (WG / TW) + t / TW);
  let c = wg.z;
  if (x >= i32(MN.width) || y >= i32(MN.height)) { return; }
  let r = i32(MN.radius);
  let x0 = max(x - r, 0);
  let x1 = min(x + r, i32(MN.width) - 1);
  let y0 = max(y - r, 0);
  let y1 = min(y + r, i32(MN.height) - 1);
  let base = (MN.c0 + c) * MN.inStride;
  var s = 0.0;
  for (var yy = y0; yy <= y1; yy++) {
    for (var xx = x0; xx <= x1; xx++) { s += meanIn[base + u32(yy) * MN.width + u32(xx)]; }
  }
  meanOut[c * MN.width * MN.height + u32(y) * MN.width + u32(x)] = s / f32((x1 - x0 + 1) * (y1 - y0 + 1));
}

// The same 3x3 mean (radius 1) on vec4 rows, for widths that are multiples of 4: an invocation computes 4
// adjacent means from 3 vec4 per row, adding the same values in the same order as `localMean` (a neighbour
// outside the map adds 0, which changes no sum). Same uniform as `localMean`; its radius must be 1.
@group(0) @binding(1) var<storage, read> mean4In: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> mean4Out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn localMean3(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let q = wg.x * TW + t % TW;
  let y = wg.y * (WG / TW) + t / TW;
  let c = wg.z;
  let w4 = MN.width / 4u;
  if (q >= w4 || y >= MN.height) { return; }
  let base = (MN.c0 + c) * (MN.inStride / 4u);
  let y0 = max(i32(y) - 1, 0);
  let y1 = min(i32(y) + 1, i32(MN.height) - 1);
  var s = vec4(0.0);
  for (var yy = y0; yy <= y1; yy++) {
    let row = base + u32(yy) * w4;
    let m = mean4In[row + q];
    let l = select(0.0, mean4In[row + max(q, 1u) - 1u].w, q > 0u);
    let r = select(0.0, mean4In[row + min(q + 1u, w4 - 1u)].x, q + 1u < w4);
    s += vec4(l, m.xyz);
    s += m;
    s += vec4(m.yzw, r);
  }
  let cols = vec4(select(3.0, 2.0, q == 0u), 3.0, 3.0, select(3.0, 2.0, q + 1u == w4));
  mean4Out[(c * MN.width * MN.height + y * MN.width) / 4u + q] = s / (cols * f32(y1 - y0 + 1));
}
