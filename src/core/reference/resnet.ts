// Reference of the ResNet-50 v2 architecture straight from the raw tensors, nothing folded: ImageNet
// mean/std, every batch norm as (x - mean) / sqrt(var + eps) * gamma + beta, ONNX kernels [cout][cin][k][k]
// read as they are, zero-padded convolutions, the max pool with -inf padding; f64 arithmetic on compact planes.
// It checks the graph builder's folding (features/resnet/graph.ts) on small synthetic weight sets.

import { BN_EPSILON, IMAGENET_MEAN, IMAGENET_STD, type NamedTensors, RESNET_PREFIX, stageBlocks } from '../features/resnet/graph.ts';
import type { FeatureTensor } from '../types.ts';

interface Map3 {
  data: Float64Array;
  c: number;
  h: number;
  w: number;
}

function get(t: NamedTensors, name: string): { shape: readonly number[]; values: Float32Array } {
  const v = t.tensors.get(RESNET_PREFIX + name);
  if (!v) throw new Error(`${RESNET_PREFIX}${name} is missing`);
  return v;
}

function batchNorm(t: NamedTensors, x: Map3, name: string, relu: boolean): Map3 {
  const [gamma, beta, mean, variance] = ['gamma', 'beta', 'running_mean', 'running_var'].map((p) => get(t, `${name}_${p}`).values);
  const out = new Float64Array(x.data.length);
  const n = x.h * x.w;
  for (let c = 0; c < x.c; c++) {
    for (let i = 0; i < n; i++) {
      const v = ((x.data[c * n + i] - mean[c]) / Math.sqrt(variance[c] + BN_EPSILON)) * gamma[c] + beta[c];
      out[c * n + i] = relu ? Math.max(0, v) : v;
    }
  }
  return { ...x, data: out };
}

function conv(t: NamedTensors, x: Map3, name: string, stride: number): Map3 {
  const { shape, values } = get(t, `${name}_weight`);
  const [cout, cin, k] = shape;
  if (cin !== x.c) throw new Error(`${name}: ${cin} input channels, the map has ${x.c}`);
  const p = (k - 1) / 2;
  const h = Math.floor((x.h + 2 * p - k) / stride) + 1;
  const w = Math.floor((x.w + 2 * p - k) / stride) + 1;
  const out = new Float64Array(cout * h * w);
  for (let co = 0; co < cout; co++) {
    for (let oy = 0; oy < h; oy++) {
      for (let ox = 0; ox < w; ox++) {
        let s = 0;
        for (let ci = 0; ci < cin; ci++) {
          for (let ky = 0; ky < k; ky++) {
            const iy = oy * stride - p + ky;
            if (iy < 0 || iy >= x.h) continue;
            for (let kx = 0; kx < k; kx++) {
              const ix = ox * stride - p + kx;
              if (ix >= 0 && ix < x.w) s += values[((co * cin + ci) * k + ky) * k + kx] * x.data[(ci * x.h + iy) * x.w + ix];
            }
          }
        }
        out[(co * h + oy) * w + ox] = s;
      }
    }
  }
  return { data: out, c: cout, h, w };
}

function maxPool(x: Map3): Map3 {
  const h = Math.floor((x.h + 2 - 3) / 2) + 1;
  const w = Math.floor((x.w + 2 - 3) / 2) + 1;
  const out = new Float64Array(x.c * h * w);
  for (let c = 0; c < x.c; c++) {
    for (let oy = 0; oy < h; oy++) {
      for (let ox = 0; ox < w; ox++) {
        let m = -Infinity;
        for (let iy = 2 * oy - 1; iy <= 2 * oy + 1; iy++) {
          for (let ix = 2 * ox - 1; ix <= 2 * ox + 1; ix++) {
            if (iy >= 0 && iy < x.h && ix >= 0 && ix < x.w) m = Math.max(m, x.data[(c * x.h + iy) * x.w + ix]);
          }
        }
        out[(c * h + oy) * w + ox] = m;
      }
    }
  }
  return { data: out, c: x.c, h, w };
}

/** The activated outputs `layers` (stem, stageN) for an RGB image in [0, 1] (3 planes of width x height). */
export function referenceResnet(t: NamedTensors, rgb: Float32Array, width: number, height: number, layers: readonly string[]): Map<string, FeatureTensor> {
  const n = width * height;
  const input = new Float64Array(3 * n);
  for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) input[c * n + i] = (rgb[c * n + i] - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
  let x: Map3 = batchNorm(t, { data: input, c: 3, h: height, w: width }, 'batchnorm0', false);
  x = maxPool(batchNorm(t, conv(t, x, 'conv0', 2), 'batchnorm1', true));
  const named = new Map<string, Map3>([['stem', x]]);
  const blocks = stageBlocks(t);
  const depth = Math.max(...layers.map((l) => (l === 'stem' ? 0 : Number(l.slice(5)))));
  for (let s = 1; s <= depth; s++) {
    const st = `stage${s}_`;
    for (let b = 0; b < blocks[s - 1]; b++) {
      const stride = b === 0 && s > 1 ? 2 : 1;
      const c = b === 0 ? [0, 1, 2, 3] : [4 + 3 * (b - 1), 5 + 3 * (b - 1), 6 + 3 * (b - 1)];
      const p = batchNorm(t, x, `${st}batchnorm${3 * b}`, true);
      let y = conv(t, p, `${st}conv${c[0]}`, 1);
      y = conv(t, batchNorm(t, y, `${st}batchnorm${3 * b + 1}`, true), `${st}conv${c[1]}`, stride);
      y = conv(t, batchNorm(t, y, `${st}batchnorm${3 * b + 2}`, true), `${st}conv${c[2]}`, 1);
      const shortcut = b === 0 ? conv(t, p, `${st}conv${c[3]}`, stride) : x;
      const sum = new Float64Array(y.data.length);
      for (let i = 0; i < sum.length; i++) sum[i] = y.data[i] + shortcut.data[i];
      x = { ...y, data: sum };
    }
    named.set(`stage${s}`, batchNorm(t, x, `stage${s + 1}_batchnorm0`, true));
  }
  const out = new Map<string, FeatureTensor>();
  for (const l of layers) {
    const m = named.get(l)!;
    out.set(l, { data: Float32Array.from(m.data), channels: m.c, height: m.h, width: m.w });
  }
  return out;
}
