// Reference of the network runtime (shaders/conv.wgsl, features/mobilenet/forward.ts): preprocessing, the
// compiled graph's ops and PatchCore's local mean, in f64 with f32 storage, on compact planes (C x h x w).

import { type InputNormalization, type NetworkGraph, type Shape, SYMMETRIC_INPUT, tensorShapes, windowGeometry } from '../features/mobilenet/graph.ts';
import type { FeatureTensor, ImageTensor } from '../types.ts';
import { referenceBilinear } from './features.ts';

/** The image resized (bilinear, half-pixel centres) to `size`, as 3 planes mapped by `norm` (default [0, 1] -> [-1, 1]). */
export function referencePreprocess(image: ImageTensor, size: Shape, norm: InputNormalization = SYMMETRIC_INPUT): Float32Array {
  const planes = image.channels === 3 ? 3 : 1;
  const resized = referenceBilinear(image.data.subarray(0, planes * image.width * image.height), planes, image, size);
  const n = size.width * size.height;
  const out = new Float32Array(3 * n);
  // A grey image feeds its one plane to all three input channels.
  for (let k = 0; k < 3; k++) for (let i = 0; i < n; i++) out[k * n + i] = norm.scale[k] * resized[(planes === 3 ? k : 0) * n + i] + norm.offset[k];
  return out;
}

/** The graph's requested outputs for a preprocessed input (3 x h x w). */
export function referenceNetwork(graph: NetworkGraph, input: Float32Array, size: Shape): Map<string, FeatureTensor> {
  const shapes = tensorShapes(graph, size);
  const values: Float32Array[] = [input];
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  for (const op of graph.ops) {
    const out = shapes[op.output];
    const n = out.width * out.height;
    const res = new Float32Array(graph.channels[op.output] * n);
    if (op.kind === 'add') {
      const [a, b] = op.inputs.map((t) => values[t]);
      for (let i = 0; i < res.length; i++) res[i] = clamp(a[i] + b[i], op.lo, op.hi);
    } else if (op.kind === 'maxpool') {
      // Window positions outside the input are left out (padding with -inf).
      const inS = shapes[op.input];
      const inp = values[op.input];
      const { padTop, padLeft } = windowGeometry(op, inS);
      for (let c = 0; c < op.channels; c++) {
        for (let oy = 0; oy < out.height; oy++) {
          for (let ox = 0; ox < out.width; ox++) {
            let m = -Infinity;
            for (let ky = 0; ky < op.kh; ky++) {
              const iy = oy * op.sh - padTop + ky;
              if (iy < 0 || iy >= inS.height) continue;
              for (let kx = 0; kx < op.kw; kx++) {
                const ix = ox * op.sw - padLeft + kx;
                if (ix >= 0 && ix < inS.width) m = Math.max(m, inp[(c * inS.height + iy) * inS.width + ix]);
              }
            }
            res[(c * out.height + oy) * out.width + ox] = clamp(m, op.lo, op.hi);
          }
        }
      }
    } else {
      const inS = shapes[op.input];
      const inp = values[op.input];
      const inN = inS.width * inS.height;
      const { padTop, padLeft } = windowGeometry(op, inS);
      const cout = op.kind === 'conv' ? op.cout : op.channels;
      const acc = new Float64Array(n);
      for (let co = 0; co < cout; co++) {
        acc.fill(op.bias[co]);
        for (let ky = 0; ky < op.kh; ky++) {
          for (let kx = 0; kx < op.kw; kx++) {
            const cins = op.kind === 'conv' ? op.cin : 1;
            for (let ci = 0; ci < cins; ci++) {
              const w = op.kind === 'conv' ? op.weights[((ky * op.kw + kx) * op.cin + ci) * op.cout + co] : op.weights[(co * op.kh + ky) * op.kw + kx];
              if (w === 0) continue;
              const plane = (op.kind === 'conv' ? ci : co) * inN;
              for (let oy = 0; oy < out.height; oy++) {
                const iy = oy * op.sh - padTop + ky;
                if (iy < 0 || iy >= inS.height) continue;
                for (let ox = 0; ox < out.width; ox++) {
                  const ix = ox * op.sw - padLeft + kx;
                  if (ix < 0 || ix >= inS.width) continue;
                  acc[oy * out.width + ox] += w * inp[plane + iy * inS.width + ix];
                }
              }
            }
          }
        }
        const residual = op.kind === 'conv' && op.residual !== null ? values[op.residual] : null;
        for (let i = 0; i < n; i++) res[co * n + i] = clamp(acc[i] + (residual ? residual[co * n + i] : 0), op.lo, op.hi);
      }
    }
    values[op.output] = res;
  }
  const outputs = new Map<string, FeatureTensor>();
  for (const [name, t] of graph.outputs) outputs.set(name, { data: values[t], channels: graph.channels[t], ...shapes[t] });
  return outputs;
}

/** Mean over each pixel's (2r+1)^2 neighbourhood, neighbours outside the map left out. */
export function referenceLocalMean(f: FeatureTensor, radius = 1): FeatureTensor {
  const { width: w, height: h, channels } = f;
  const n = w * h;
  const out = new Float32Array(channels * n);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let s = 0;
        let k = 0;
        for (let yy = Math.max(0, y - radius); yy <= Math.min(h - 1, y + radius); yy++) {
          for (let xx = Math.max(0, x - radius); xx <= Math.min(w - 1, x + radius); xx++) {
            s += f.data[c * n + yy * w + xx];
            k++;
          }
        }
        out[c * n + y * w + x] = s / k;
      }
    }
  }
  return { data: out, channels, width: w, height: h };
}
