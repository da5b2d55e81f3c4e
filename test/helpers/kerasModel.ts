// A small Keras functional model in TensorFlow.js layers format, built in memory with seeded random weights
// (some stored as affine-quantized uint8/uint16, as converters write them). It exercises every path of the
// graph compiler and the kernels: zero padding, strided and 'same' windows, 3x3 and 5x5 kernels, folded
// batch normalization, ReLU/ReLU6, a fused residual and a standalone addition.
import type { LayersModelArtifacts, WeightSpec } from '../../src/core/features/mobilenet/weights.ts';

type Json = Record<string, unknown>;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function tinyKerasModel(seed = 1, inputChannels = 3): LayersModelArtifacts {
  const rand = rng(seed);
  const layers: Json[] = [];
  const specs: WeightSpec[] = [];
  const parts: Uint8Array[] = [];
  const weight = (name: string, shape: number[], lo: number, hi: number, quantize: 'uint8' | 'uint16' | null = null) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
    if (quantize) {
      const levels = quantize === 'uint8' ? 255 : 65535;
      const scale = (hi - lo) / levels;
      const q = quantize === 'uint8' ? new Uint8Array(n) : new Uint16Array(n);
      for (let i = 0; i < n; i++) q[i] = Math.round((values[i] - lo) / scale);
      specs.push({ name, shape, dtype: 'float32', quantization: { min: lo, scale, dtype: quantize } });
      parts.push(new Uint8Array(q.buffer));
    } else {
      specs.push({ name, shape, dtype: 'float32' });
      parts.push(new Uint8Array(values.buffer));
    }
  };
  const layer = (name: string, className: string, config: Json, inputs: string[]) =>
    layers.push({ name, class_name: className, config: { name, ...config }, inbound_nodes: inputs.length ? [inputs.map((i) => [i, 0, 0, {}])] : [] });
  const conv = (name: string, input: string, cin: number, filters: number, k: number, s: number, padding: string, opts: { bias?: boolean; activation?: string; q?: 'uint8' | 'uint16' } = {}) => {
    layer(name, 'Conv2D', { filters, kernel_size: [k, k], strides: [s, s], padding, data_format: 'channels_last', dilation_rate: [1, 1], activation: opts.activation ?? 'linear', use_bias: opts.bias ?? false }, [input]);
    weight(`${name}/kernel`, [k, k, cin, filters], -0.6, 0.6, opts.q ?? null);
    if (opts.bias) weight(`${name}/bias`, [filters], -0.3, 0.3);
  };
  const depthwise = (name: string, input: string, c: number, k: number, s: number, padding: string, opts: { bias?: boolean; activation?: string } = {}) => {
    layer(name, 'DepthwiseConv2D', { kernel_size: [k, k], strides: [s, s], padding, data_format: 'channels_last', dilation_rate: [1, 1], activation: opts.activation ?? 'linear', use_bias: opts.bias ?? false, depth_multiplier: 1 }, [input]);
    weight(`${name}/depthwise_kernel`, [k, k, c, 1], -0.6, 0.6, 'uint8');
    if (opts.bias) weight(`${name}/bias`, [c], -0.3, 0.3);
  };
  const bn = (name: string, input: string, c: number) => {
    layer(name, 'BatchNormalization', { axis: -1, epsilon: 1e-3, center: true, scale: true }, [input]);
    weight(`${name}/gamma`, [c], 0.5, 1.5, 'uint8');
    weight(`${name}/beta`, [c], -0.5, 0.5);
    weight(`${name}/moving_mean`, [c], -0.2, 0.2, 'uint16');
    weight(`${name}/moving_variance`, [c], 0.5, 1.5);
  };
  const relu = (name: string, input: string, maxValue: number | null) => layer(name, 'ReLU', { max_value: maxValue, negative_slope: 0, threshold: 0 }, [input]);

  layer('input_1', 'InputLayer', { batch_input_shape: [null, 32, 32, inputChannels], dtype: 'float32' }, []);
  layer('c1_pad', 'ZeroPadding2D', { padding: [[0, 1], [0, 1]], data_format: 'channels_last' }, ['input_1']);
  conv('c1', 'c1_pad', inputChannels, 8, 3, 2, 'valid', { q: 'uint8' });
  bn('c1_bn', 'c1', 8);
  relu('c1_relu', 'c1_bn', 6);
  depthwise('dw1', 'c1_relu', 8, 3, 1, 'same');
  bn('dw1_bn', 'dw1', 8);
  relu('dw1_relu', 'dw1_bn', null);
  conv('pw1', 'dw1_relu', 8, 8, 1, 1, 'same', { bias: true });
  bn('pw1_bn', 'pw1', 8);
  layer('add1', 'Add', {}, ['c1_relu', 'pw1_bn']); // fused into pw1 as a residual
  depthwise('dw2', 'add1', 8, 3, 2, 'same', { bias: true, activation: 'relu6' });
  conv('e1', 'dw2', 8, 12, 1, 1, 'valid', { bias: true, activation: 'relu' });
  conv('e2', 'dw2', 8, 12, 1, 1, 'valid', { bias: true, activation: 'relu' });
  layer('add2', 'Add', {}, ['e1', 'e2']); // both addends activated: a standalone addition
  relu('add2_relu', 'add2', 6);
  conv('c5', 'add2_relu', 12, 4, 5, 1, 'same', { bias: true });
  depthwise('dw5', 'c5', 4, 5, 2, 'valid');
  layer('flat', 'Flatten', {}, ['dw5']); // a head the compiler never needs to support

  const modelTopology = {
    keras_version: '2.2.4',
    backend: 'tensorflow',
    model_config: { class_name: 'Model', config: { name: 'tiny', layers, input_layers: [['input_1', 0, 0]], output_layers: [['flat', 0, 0]] } },
  };
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const data = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.byteLength;
  }
  return { modelTopology, weightsManifest: [{ paths: ['tiny.bin'], weights: specs }], weightData: data.buffer, source: 'tiny test model' };
}
