// The per-image linear classifier. `trainSgd` runs in one workgroup: mini-batch SGD on
//   L(w, b) = lambda/2 |w|^2 + sum_i a_i loss(y_i (w.x_i + b)) / sum_i a_i
// with the hinge loss (a linear SVM) or the logistic loss, class weights a (balanced or 1), batches drawn
// with replacement by pcgHash(seed ^ pcgHash(step * 256 + j)) % rows, step size lr / (1 + lr lambda t),
// and an early stop when the epoch loss has not improved by a relative `tol` for `patience` epochs.
// Every reduction runs in a fixed order, so a seed gives the same model on every run.
// `predict` evaluates w.x + b at every pixel, one channel chunk at a time (accumulating the decision
// between chunks), and on the last chunk writes the mask (decision > 0, and score > the score floor),
// four pixels per u32, one byte each.

override WG: u32 = 256u;
const MAXC: u32 = 2048u;
const MAXB: u32 = 256u;

struct TrainParams {
  rows: u32, channels: u32, epochs: u32, batch: u32,
  loss: u32, seed: u32, patience: u32, stepsPerEpoch: u32,
  lr: f32, lambda: f32, wPos: f32, wNeg: f32,
  tol: f32,
}

@group(0) @binding(0) var<uniform> P: TrainParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> model: array<f32>; // channels weights, then the bias
@group(0) @binding(4) var<storage, read_write> info: array<f32>;  // final loss, epochs run, then the loss per epoch

var<workgroup> w: array<f32, MAXC>;
var<workgroup> coef: array<f32, MAXB>;
var<workgroup> alpha: array<f32, MAXB>;
var<workgroup> lossOf: array<f32, MAXB>;
var<workgroup> rowOf: array<u32, MAXB>;
var<workgroup> bias: f32;
var<workgroup> stopFlag: u32;
var<workgroup> epochsRun: u32;

// One workgroup of SGD_WG invocations: the batch and the channels are strided over them. Fewer,
// busier invocations cost less per barrier on software drivers, which run a workgroup on one thread.
const SGD_WG: u32 = 64u;

@compute @workgroup_size(SGD_WG)
fn trainSgd(@builtin(local_invocation_index) t: u32) {
  let C = P.channels;
  for (var c = t; c < C; c += SGD_WG) { w[c] = 0.0; }
  if (t == 0u) { bias = 0.0; stopFlag = 0u; epochsRun = 0u; }
  workgroupBarrier();
  var best = 3.4e38;
  var wait = 0u;
  var lastLoss = 0.0;
  var step = 0u;
  for (var epoch = 0u; epoch < P.epochs; epoch++) {
    var lossSum = 0.0;
    var weightSum = 0.0;
    for (var s = 0u; s < P.stepsPerEpoch; s++) {
      let lr = P.lr / (1.0 + P.lr * P.lambda * f32(step));
      for (var j = t; j < P.batch; j += SGD_WG) {
        let i = pcgHash(P.seed ^ pcgHash(step * MAXB + j)) % P.rows;
        var f = bias;
        for (var c = 0u; c < C; c++) { f += w[c] * x[i * C + c]; }
        let y = targets[i];
        let a = select(P.wNeg, P.wPos, y > 0.0);
        let m = y * f;
        var l = 0.0;
        var d = 0.0;
        if (P.loss == 0u) {
          l = max(0.0, 1.0 - m);
          d = select(0.0, -1.0, m < 1.0);
        } else {
          l = max(-m, 0.0) + log(1.0 + exp(-abs(m)));
          d = -1.0 / (1.0 + exp(m));
        }
        coef[j] = a * d * y;
        alpha[j] = a;
        lossOf[j] = a * l;
        rowOf[j] = i;
      }
      workgroupBarrier();
      var asum = 0.0;
      for (var j = 0u; j < P.batch; j++) { asum += alpha[j]; }
      for (var c = t; c < C; c += SGD_WG) {
        var g = 0.0;
        for (var j = 0u; j < P.batch; j++) { g += coef[j] * x[rowOf[j] * C + c]; }
        w[c] -= lr * (P.lambda * w[c] + g / asum);
      }
      if (t == 0u) {
        var gb = 0.0;
        for (var j = 0u; j < P.batch; j++) { gb += coef[j]; lossSum += lossOf[j]; }
        bias -= lr * gb / asum;
        weightSum += asum;
      }
      workgroupBarrier();
      step++;
    }
    if (t == 0u) {
      var reg = 0.0;
      for (var c = 0u; c < C; c++) { reg += w[c] * w[c]; }
      lastLoss = lossSum / weightSum + 0.5 * P.lambda * reg;
      info[2u + epoch] = lastLoss;
      if (lastLoss < best - P.tol * abs(best)) {
        best = lastLoss;
        wait = 0u;
      } else {
        wait++;
      }
      epochsRun = epoch + 1u;
      if (wait >= P.patience) { stopFlag = 1u; }
    }
    if (workgroupUniformLoad(&stopFlag) != 0u) { break; }
  }
  for (var c = t; c < C; c += SGD_WG) { model[c] = w[c]; }
  if (t == 0u) {
    model[C] = bias;
    info[0] = lastLoss;
    info[1] = f32(epochsRun);
  }
}

struct PredictParams { pixels: u32, channels: u32, chunkChannels: u32, channelOffset: u32, first: u32, last: u32, scoreFloor: f32 }

@group(0) @binding(0) var<uniform> Q: PredictParams;
@group(0) @binding(5) var<storage, read> chunk: array<f32>;
@group(0) @binding(6) var<storage, read_write> decision: array<f32>;
@group(0) @binding(7) var<storage, read_write> mask: array<u32>;
// The anomaly map: a pixel is defective only where its score is also above scoreFloor (-inf: anywhere).
@group(0) @binding(10) var<storage, read> scores: array<f32>;
@group(0) @binding(11) var<storage, read> scores4: array<vec4<f32>>;

// With MASKED = 1, pixels without a measurement are never defective (validity: 4 bytes per u32, as the mask).
override MASKED: u32 = 0u;
@group(0) @binding(12) var<storage, read> validPx: array<u32>;

@compute @workgroup_size(WG)
fn predict(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let word = g.x + g.y * nwg.x * WG;
  let p0 = word * 4u;
  if (p0 >= Q.pixels) { return; }
  var packed = 0u;
  for (var k = 0u; k < 4u; k++) {
    let p = p0 + k;
    if (p >= Q.pixels) { break; }
    var d = 0.0;
    if (Q.first != 0u) { d = model[Q.channels]; } else { d = decision[p]; }
    for (var c = 0u; c < Q.chunkChannels; c++) {
      d += model[Q.channelOffset + c] * chunk[c * Q.pixels + p];
    }
    if (Q.last == 0u) { decision[p] = d; }
    if (d > 0.0 && scores[p] > Q.scoreFloor) { packed |= 1u << (8u * k); }
  }
  if (MASKED != 0u) { packed &= validPx[word]; }
  if (Q.last != 0u) { mask[word] = packed; }
}

// The same with 16-byte loads of four consecutive pixels, when the plane size is a multiple of 4.
@group(0) @binding(8) var<storage, read> chunk4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> decision4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn predictVec4(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let word = g.x + g.y * nwg.x * WG;
  let words = Q.pixels / 4u;
  if (word >= words) { return; }
  var d: vec4<f32>;
  if (Q.first != 0u) { d = vec4<f32>(model[Q.channels]); } else { d = decision4[word]; }
  for (var c = 0u; c < Q.chunkChannels; c++) {
    d += model[Q.channelOffset + c] * chunk4[c * words + word];
  }
  if (Q.last == 0u) {
    decision4[word] = d;
  } else {
    let on = select(vec4<u32>(0u), vec4<u32>(1u), (d > vec4<f32>(0.0)) & (scores4[word] > vec4<f32>(Q.scoreFloor)));
    var packed = on.x | (on.y << 8u) | (on.z << 16u) | (on.w << 24u);
    if (MASKED != 0u) { packed &= validPx[word]; }
    mask[word] = packed;
  }
}
