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

/** The pieces of a Keras functional model in the making: layers, weight specs and their bytes. */
function kerasBuilder(seed: number) {
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
  const conv = (name: string, input: string, cin: number, filters: number, k: number, s: number, padding: string, opts: { bias?: boolean; activation?: string; q?: 'uint8' | 'uint16'; scale?: number } = {}) => {
    layer(name, 'Conv2D', { filters, kernel_size: [k, k], strides: [s, s], padding, data_format: 'channels_last', dilation_rate: [1, 1], activation: opts.activation ?? 'linear', use_bias: opts.bias ?? false }, [input]);
    weight(`${name}/kernel`, [k, k, cin, filters], -(opts.scale ?? 0.6), opts.scale ?? 0.6, opts.q ?? null);
    if (opts.bias) weight(`${name}/bias`, [filters], -0.3, 0.3);
  };
  const depthwise = (name: string, input: string, c: number, k: number, s: number, padding: string, opts: { bias?: boolean; activation?: string; scale?: number } = {}) => {
    layer(name, 'DepthwiseConv2D', { kernel_size: [k, k], strides: [s, s], padding, data_format: 'channels_last', dilation_rate: [1, 1], activation: opts.activation ?? 'linear', use_bias: opts.bias ?? false, depth_multiplier: 1 }, [input]);
    weight(`${name}/depthwise_kernel`, [k, k, c, 1], -(opts.scale ?? 0.6), opts.scale ?? 0.6, 'uint8');
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

  const finish = (name: string, output: string, file: string, source: string): LayersModelArtifacts => {
    const modelTopology = {
      keras_version: '2.2.4',
      backend: 'tensorflow',
      model_config: { class_name: 'Model', config: { name, layers, input_layers: [['input_1', 0, 0]], output_layers: [[output, 0, 0]] } },
    };
    const total = parts.reduce((a, p) => a + p.byteLength, 0);
    const data = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      data.set(p, o);
      o += p.byteLength;
    }
    return { modelTopology, weightsManifest: [{ paths: [`${file}.bin`], weights: specs }], weightData: data.buffer, source };
  };
  return { layer, conv, depthwise, bn, relu, finish };
}

export function tinyKerasModel(seed = 1, inputChannels = 3): LayersModelArtifacts {
  const { layer, conv, depthwise, bn, relu, finish } = kerasBuilder(seed);
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

  return finish('tiny', 'flat', 'tiny', 'tiny test model');
}

/** The (output channels, stride) of the 17 inverted residual blocks of MobileNetV2 1.0 (block 0: no expansion). */
const MOBILENETV2_BLOCKS: readonly (readonly [number, number])[] = [
  [16, 1], [24, 2], [24, 1], [32, 2], [32, 1], [32, 1], [64, 2], [64, 1], [64, 1], [64, 1], [96, 1], [96, 1], [96, 1], [160, 2], [160, 1], [160, 1], [320, 1],
];

/**
 * Keras's MobileNetV2 1.0 (keras.applications, as TensorFlow.js's converter writes it: the topology of
 * the NSFW-tuned network shipped until 2026-12-07) up to block `lastBlock`, with seeded random weights
 * scaled by fan-in so that the activations keep their range through the blocks: Conv1_pad (zero padding after) + Conv1 at stride 2,
 * block 0 without expansion, then expand / depthwise / project with batch norms and ReLU6, each stride-2
 * depthwise on a block_N_pad, and block_N_add where the shape is kept. Layer names are Keras's.
 */
export function kerasMobileNetV2(seed = 1, lastBlock = 12): LayersModelArtifacts {
  const { layer, conv, depthwise, bn, relu, finish } = kerasBuilder(seed);
  const he = (fanIn: number) => Math.sqrt(6 / fanIn);
  layer('input_1', 'InputLayer', { batch_input_shape: [null, 224, 224, 3], dtype: 'float32' }, []);
  layer('Conv1_pad', 'ZeroPadding2D', { padding: [[0, 1], [0, 1]], data_format: 'channels_last' }, ['input_1']);
  conv('Conv1', 'Conv1_pad', 3, 32, 3, 2, 'valid', { scale: he(27) });
  bn('bn_Conv1', 'Conv1', 32);
  relu('Conv1_relu', 'bn_Conv1', 6);
  let x = 'Conv1_relu';
  let c = 32;
  for (let b = 0; b <= lastBlock; b++) {
    const [out, stride] = MOBILENETV2_BLOCKS[b];
    const p = b === 0 ? 'expanded_conv_' : `block_${b}_`;
    let y = x;
    let e = c;
    if (b > 0) {
      e = 6 * c;
      conv(`${p}expand`, y, c, e, 1, 1, 'same', { scale: he(c) });
      bn(`${p}expand_BN`, `${p}expand`, e);
      relu(`${p}expand_relu`, `${p}expand_BN`, 6);
      y = `${p}expand_relu`;
    }
    if (stride === 2) {
      layer(`${p}pad`, 'ZeroPadding2D', { padding: [[0, 1], [0, 1]], data_format: 'channels_last' }, [y]);
      y = `${p}pad`;
    }
    depthwise(`${p}depthwise`, y, e, 3, stride, stride === 2 ? 'valid' : 'same', { scale: he(9) });
    bn(`${p}depthwise_BN`, `${p}depthwise`, e);
    relu(`${p}depthwise_relu`, `${p}depthwise_BN`, 6);
    conv(`${p}project`, `${p}depthwise_relu`, e, out, 1, 1, 'same', { scale: he(e) });
    bn(`${p}project_BN`, `${p}project`, out);
    y = `${p}project_BN`;
    if (stride === 1 && out === c) {
      layer(`${p}add`, 'Add', {}, [x, y]);
      y = `${p}add`;
    }
    x = y;
    c = out;
  }
  return finish('mobilenetv2_1.00_224', x, 'mobilenetv2', `Keras MobileNetV2 1.0 to block ${lastBlock} (random weights, seed ${seed})`);
}
