// The network runtime: weight decoding, the graph compiler, every kernel against its plain-TS reference,
// whole layers against TensorFlow.js (CPU backend), and the mobilenetv2 extractor.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TttError } from '../../src/core/errors.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { chooseExtractor } from '../../src/core/features/index.ts';
import { DEFAULT_LAYERS, networkFeatureMaps, networkFeatureMapsHost, networkInputSize } from '../../src/core/features/mobilenet/extractor.ts';
import { resampleBilinear, resampleBilinearHost } from '../../src/core/features/resample.ts';
import { materializeCoarse } from '../../src/core/coarseFeatures.ts';
import { preprocessImage, readTensor, runNetwork, type GpuTensor } from '../../src/core/features/mobilenet/forward.ts';
import { buildGraph, type NetworkGraph, SYMMETRIC_INPUT, tensorShapes, windowGeometry } from '../../src/core/features/mobilenet/graph.ts';
import { depthwise3x3Fits } from '../../src/core/features/mobilenet/kernels.ts';
import { mobileNetGraph, provideMobileNet } from '../../src/core/features/mobilenet/registry.ts';
import { decodeWeights, type LayersModelArtifacts } from '../../src/core/features/mobilenet/weights.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { segment } from '../../src/core/pipeline.ts';
import { referenceBilinear } from '../../src/core/reference/features.ts';
import { referenceLocalMean, referenceNetwork, referencePreprocess } from '../../src/core/reference/mobilenet.ts';
import type { FeatureTensor, ImageTensor } from '../../src/core/types.ts';
import { loadLayersModelFiles, registerMobileNet } from '../../src/models/mobilenet.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { testGpu } from '../helpers/gpu.ts';
import { kerasMobileNetV2, tinyKerasModel } from '../helpers/kerasModel.ts';
import { tfjsOutputs } from '../helpers/tfjs.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

function testImage(width: number, height: number, channels: 1 | 3, seed: number): ImageTensor {
  const data = new Float32Array(channels * width * height);
  for (let i = 0; i < data.length; i++) data[i] = 0.5 + 0.45 * Math.sin(i * 0.37 + seed) * Math.cos(i * 0.011 * seed);
  return { data, width, height, channels };
}

function range(t: FeatureTensor): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of t.data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return hi - lo;
}

/** Largest absolute difference relative to the expected tensor's range (max - min). */
function relDiff(got: Float32Array, want: FeatureTensor): number {
  expect(got.length).toBe(want.data.length);
  let m = 0;
  for (let i = 0; i < got.length; i++) m = Math.max(m, Math.abs(got[i] - want.data[i]));
  return m / range(want);
}

async function gpuOutputs(a: LayersModelArtifacts | NetworkGraph, layers: readonly string[], input: Float32Array, width: number, height: number) {
  const graph = 'ops' in a ? a : buildGraph(a, layers);
  const n = width * height;
  const stride = Math.ceil(n / 4) * 4;
  const padded = new Float32Array(3 * stride);
  for (let c = 0; c < 3; c++) padded.set(input.subarray(c * n, (c + 1) * n), c * stride);
  const t: GpuTensor = { data: gpu.upload(padded), channels: 3, width, height, stride };
  const outs = runNetwork(gpu, graph, t);
  const host = new Map<string, Float32Array>();
  for (const [name, o] of outs) {
    host.set(name, await readTensor(gpu, o));
    gpu.release(o.data);
  }
  gpu.release(t.data);
  return { graph, host };
}

describe('layers-model weights', () => {
  it('dequantizes uint8/uint16 as TensorFlow.js does (q * scale + min) and reads float16/float32', () => {
    const data = new Uint8Array([0, 255, 7, 0x00, 0x3c, 0x00, 0xc0, 0, 0, 0, 0, 0, 0, 0xc0, 0x3f]);
    const a: LayersModelArtifacts = {
      modelTopology: {},
      source: 'test',
      weightData: data.buffer,
      weightsManifest: [
        {
          paths: ['x'],
          weights: [
            { name: 'a', shape: [2], dtype: 'float32', quantization: { min: -1, scale: 0.01, dtype: 'uint8' } },
            { name: 'b', shape: [1], dtype: 'float32', quantization: { min: 0.5, scale: 2, dtype: 'uint8' } },
            { name: 'h', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
            { name: 'pad', shape: [2], dtype: 'float32', quantization: { min: 0, scale: 1, dtype: 'uint16' } },
            { name: 'f', shape: [1], dtype: 'float32' },
          ],
        },
      ],
    };
    const w = decodeWeights(a);
    expect(Array.from(w.get('a')!.values)).toEqual([Math.fround(-1), Math.fround(255 * 0.01 - 1)]);
    expect(Array.from(w.get('b')!.values)).toEqual([14.5]);
    expect(Array.from(w.get('h')!.values)).toEqual([1, -2]);
    expect(Array.from(w.get('pad')!.values)).toEqual([0, 0]);
    expect(Array.from(w.get('f')!.values)).toEqual([1.5]);
  });

  it('rejects truncated or oversized weight data and unknown dtypes', () => {
    const spec = { name: 'a', shape: [4], dtype: 'float32' };
    const make = (bytes: number, s = spec): LayersModelArtifacts => ({ modelTopology: {}, source: 'w.bin', weightData: new ArrayBuffer(bytes), weightsManifest: [{ paths: ['x'], weights: [s] }] });
    expect(() => decodeWeights(make(12))).toThrow(/w.bin: the weight data ends at byte 12/);
    expect(() => decodeWeights(make(20))).toThrow(/describes 16 bytes of weights but the shards hold 20/);
    expect(() => decodeWeights(make(16, { ...spec, dtype: 'complex64' }))).toThrow(TttError);
  });
});

describe('layers model from files (TTT_MOBILENET_MODEL)', () => {
  it('reads model.json and the weight files its manifest names', async () => {
    const tiny = tinyKerasModel(4);
    const dir = mkdtempSync(join(tmpdir(), 'ttt-model-'));
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: tiny.modelTopology, weightsManifest: tiny.weightsManifest }));
    writeFileSync(join(dir, 'tiny.bin'), new Uint8Array(tiny.weightData));
    const files = loadLayersModelFiles(join(dir, 'model.json'));
    expect(files.source).toBe(join(dir, 'model.json'));
    const [a, b] = [decodeWeights(files), decodeWeights(tiny)];
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [k, t] of a) expect(t.values).toEqual(b.get(k)!.values);
    expect(buildGraph(files, ['add1']).ops.length).toBe(3);
    writeFileSync(join(dir, 'broken.json'), '{"modelTopology": ');
    expect(() => loadLayersModelFiles(join(dir, 'broken.json'))).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_FORMAT' }));
    writeFileSync(join(dir, 'orphan.json'), JSON.stringify({ modelTopology: tiny.modelTopology, weightsManifest: [{ paths: ['gone.bin'], weights: [] }] }));
    expect(() => loadLayersModelFiles(join(dir, 'orphan.json'))).toThrow(/weight file .*gone.bin cannot be read/);
    expect(() => loadLayersModelFiles(join(dir, 'absent.json'))).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });
});

describe('graph compiler', () => {
  const tiny = tinyKerasModel(3);

  it('folds batch normalization, fuses activations and the residual, keeps only what the outputs need', () => {
    const g = buildGraph(tiny, ['add1', 'add2_relu', 'c5']);
    expect(g.ops.map((o) => `${o.kind}:${o.name}`)).toEqual([
      'conv:c1', 'depthwise:dw1', 'conv:pw1', 'depthwise:dw2', 'conv:e1', 'conv:e2', 'add:add2', 'conv:c5',
    ]);
    const [c1, dw1, pw1, , e1, , add2] = g.ops;
    expect(c1.kind === 'conv' && [c1.lo, c1.hi, c1.padding.bottom, c1.padding.right]).toEqual([0, 6, 1, 1]);
    expect(dw1.kind === 'depthwise' && [dw1.lo, dw1.hi, dw1.padding.same]).toEqual([0, Infinity, true]);
    expect(pw1.kind === 'conv' && pw1.residual).toBe(c1.output);
    expect(e1.kind === 'conv' && [e1.lo, e1.residual]).toEqual([0, null]);
    expect(add2.kind === 'add' && [add2.lo, add2.hi]).toEqual([0, 6]);
    expect(tensorShapes(g, { width: 32, height: 32 }).map((s) => s.width)).toEqual([32, 16, 16, 16, 8, 8, 8, 8, 8]);
    // c1_relu is read until pw1 runs (its residual); nothing reads the outputs.
    expect(g.lastUse[c1.output]).toBe(2);
  });

  it('names the problem for unknown outputs, unsupported layers and too small inputs', () => {
    expect(() => buildGraph(tiny, ['nope'])).toThrow(/no layer "nope" \(block outputs: add1, add2\)/);
    expect(() => buildGraph(tiny, ['flat'])).toThrow(/layer flat: layer type Flatten is not supported/);
    // Requesting the convolution before its batch normalization leaves the normalization nothing to fold into.
    expect(() => buildGraph(tiny, ['c1', 'c1_bn'])).toThrow(/c1_bn: batch normalization is only supported right after a convolution/);
    const g = buildGraph(tiny, ['dw5']); // a valid 5x5 window at stride 2 on the 1/4-scale map
    expect(tensorShapes(g, { width: 40, height: 40 }).at(-1)).toEqual({ width: 3, height: 3 });
    expect(() => tensorShapes(g, { width: 16, height: 40 })).toThrow(/an input of 16x40 is too small for the network: layer dw5 would be empty/);
  });
});

describe('network kernels against the plain-TS reference and TensorFlow.js', () => {
  it('preprocessing: bilinear resize, grey to RGB, [0, 1] to [-1, 1] (at the image\'s size: preprocessSameSize)', async () => {
    for (const [image, size] of [
      [testImage(50, 37, 1, 2), { width: 64, height: 48 }],
      [testImage(40, 40, 3, 5), { width: 23, height: 17 }],
      [testImage(64, 48, 1, 3), { width: 64, height: 48 }],
      [testImage(40, 30, 3, 4), { width: 40, height: 30 }],
      [testImage(23, 17, 3, 6), { width: 23, height: 17 }], // 391 pixels: the general kernel
    ] as const) {
      const t = preprocessImage(gpu, image, size);
      const got = await readTensor(gpu, t);
      gpu.release(t.data);
      const want = referencePreprocess(image, size);
      let m = 0;
      for (let i = 0; i < got.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]));
      expect(m).toBeLessThan(1e-5); // f32 GPU vs f64 reference on values in [-1, 1]
      const plane = size.width * size.height;
      if (image.channels === 1) expect(got.subarray(0, plane)).toEqual(got.subarray(2 * plane));
    }
  });

  it('every op of a small model: GPU = reference = TensorFlow.js', async () => {
    const tiny = tinyKerasModel(7);
    const layers = ['add1', 'add2_relu', 'c5'];
    for (const [w, h] of [[32, 32], [29, 22]]) {
      const input = referencePreprocess(testImage(w, h, 3, w), { width: w, height: h });
      const { graph, host } = await gpuOutputs(tiny, layers, input, w, h);
      const ref = referenceNetwork(graph, input, { width: w, height: h });
      const tfjs = await tfjsOutputs(tiny, layers, input, h, w);
      for (const name of layers) {
        // Tolerance: 1e-5 of the layer's range (f32 accumulation in another order; BN folded here, not in tfjs).
        expect(relDiff(host.get(name)!, ref.get(name)!), `${name} vs reference`).toBeLessThan(1e-5);
        expect(relDiff(host.get(name)!, tfjs.get(name)!), `${name} vs tfjs`).toBeLessThan(1e-5);
      }
    }
  });

  it('3x3 depthwise on vec4 rows (depthwise3x3, 1 to 4 rows per invocation) and its fallback = the reference', async () => {
    // Hand-built one-op graphs: 'same' 3x3 windows at stride 1 and 2, widths that fit the vec4 kernel (rows
    // per invocation 4, 2 and 1; heights not a multiple of a workgroup's rows) and ones that take `depthwise`.
    // Symmetric padding 1 (GluonCV's MobileNetV2) at stride 2 takes the vec4 kernel too (PL = 1).
    const cases: [number, number, 1 | 2, boolean, boolean?][] = [
      [128, 45, 1, true], [256, 40, 2, true], [64, 10, 1, true], [64, 30, 2, true], [32, 9, 2, true], [16, 16, 1, true], [8, 5, 2, true], [4, 3, 1, true],
      [20, 10, 2, false], [18, 7, 1, false],
      [64, 30, 2, true, true], [32, 9, 2, true, true], [8, 5, 2, true, true], [128, 45, 1, true, true], [20, 10, 2, false, true],
    ];
    for (const [w, h, s, fits, symmetric] of cases) {
      const channels = 3;
      const weights = Float32Array.from({ length: channels * 9 }, (_, k) => Math.sin(k * 1.7 + w) * 0.8);
      const bias = Float32Array.from({ length: channels }, (_, k) => 0.1 * k - 0.1);
      const op = {
        kind: 'depthwise', name: 'dw', input: 0, output: 1, kh: 3, kw: 3, sh: s, sw: s,
        padding: symmetric ? { top: 1, bottom: 1, left: 1, right: 1, same: false } : { top: 0, bottom: 0, left: 0, right: 0, same: true }, lo: -1.5, hi: 6, bias, channels, weights,
      } as const;
      const graph: NetworkGraph = { source: 'one depthwise op', input: SYMMETRIC_INPUT, channels: [channels, channels], ops: [op], outputs: new Map([['dw', 1]]), lastUse: [0, -1] };
      const geo = windowGeometry(op, { width: w, height: h });
      expect(depthwise3x3Fits(op, w, geo.shape.width, geo.padLeft), `${w}x${h} stride ${s}${symmetric ? ' pad 1' : ''}`).toBe(fits);
      if (symmetric) expect(geo.padLeft).toBe(1);
      const input = Float32Array.from({ length: channels * w * h }, (_, k) => Math.cos(k * 0.37) * 2);
      const { host } = await gpuOutputs(graph, ['dw'], input, w, h);
      const ref = referenceNetwork(graph, input, { width: w, height: h }).get('dw')!;
      expect([ref.width, ref.height]).toEqual([geo.shape.width, geo.shape.height]);
      // Tolerance: 1e-6 of the range (nine f32 products in the reference's order; measured 0 or a few ulps).
      expect(relDiff(host.get('dw')!, ref), `${w}x${h} stride ${s}${symmetric ? ' pad 1' : ''}`).toBeLessThan(1e-6);
    }
  });

  it('Keras MobileNetV2 1.0 (its topology, random weights): block_2_add, block_5_add and block_12_add against TensorFlow.js and the reference', async () => {
    const net = kerasMobileNetV2(3);
    const layers = DEFAULT_LAYERS;
    for (const [w, h, channels] of [[64, 64, 3], [72, 56, 1]] as const) {
      const image = testImage(w, h, channels, 11);
      const input = referencePreprocess(image, { width: w, height: h });
      const { graph, host } = await gpuOutputs(net, layers, input, w, h);
      const tfjs = await tfjsOutputs(net, layers, input, h, w);
      const ref = referenceNetwork(graph, input, { width: w, height: h });
      // Each stride-2 stage pads one column/row after, then takes a valid 3x3 window: n -> floor((n - 2) / 2) + 1.
      expect([...tfjs.values()].map((t) => [t.channels, t.width, t.height])).toEqual(
        w === 64 ? [[24, 16, 16], [32, 8, 8], [96, 4, 4]] : [[24, 18, 14], [32, 9, 7], [96, 4, 3]],
      );
      for (const name of layers) {
        // Tolerance: 1e-4 of the layer's range (14 to 42 here); measured 2e-7 to 3e-6.
        expect(relDiff(host.get(name)!, tfjs.get(name)!), `${name} ${w}x${h} vs tfjs`).toBeLessThan(1e-4);
        expect(relDiff(host.get(name)!, ref.get(name)!), `${name} ${w}x${h} vs reference`).toBeLessThan(1e-4);
      }
    }
  });

  it('feature maps: 3x3 local mean and bilinear resampling of each layer, concatenated', async () => {
    const tiny = tinyKerasModel(5);
    const layers = ['add1', 'c5'];
    const graph = buildGraph(tiny, layers);
    const image = testImage(40, 30, 1, 3);
    const target = { width: 20, height: 15 };
    const f = networkFeatureMaps(gpu, graph, image, image, target);
    expect(f.channels).toBe(12);
    expect(f.names.slice(0, 2)).toEqual(['add1.0', 'add1.1']);
    const input = referencePreprocess(image, image);
    const ref = referenceNetwork(graph, input, image);
    for (const [k, name] of layers.entries()) {
      const mean = referenceLocalMean(ref.get(name)!);
      const want = { ...mean, ...target, data: referenceBilinear(mean.data, mean.channels, mean, target) };
      const got = await gpu.readF32(f.chunks[k].data, want.data.length);
      expect(relDiff(got, want)).toBeLessThan(1e-5);
    }
    for (const c of f.chunks) gpu.release(c.data);
  });

  it('feature maps for the host (coarse means read back), resampled = the GPU maps = the reference', async () => {
    const tiny = tinyKerasModel(5);
    const layers = ['add1', 'c5'];
    const graph = buildGraph(tiny, layers);
    const image = testImage(40, 30, 1, 3);
    const target = { width: 37, height: 23 };
    const f = networkFeatureMaps(gpu, graph, image, image, target);
    const coarse = await networkFeatureMapsHost(gpu, graph, image, image, target);
    expect([coarse.channels, coarse.width, coarse.height, coarse.names]).toEqual([f.channels, 37, 23, f.names]);
    expect(coarse.layers.map((l) => [l.channels, l.width, l.height])).toEqual([[8, 20, 15], [4, 10, 8]]);
    const h = { ...coarse, data: materializeCoarse(coarse) };
    const input = referencePreprocess(image, image);
    const ref = referenceNetwork(graph, input, image);
    const n = target.width * target.height;
    let offset = 0;
    for (const [k, name] of layers.entries()) {
      const mean = referenceLocalMean(ref.get(name)!);
      // The coarse means themselves (20 wide: localMean3 on vec4 rows; 10 wide: localMean).
      expect(relDiff(coarse.layers[k].data, mean), `${name} coarse means`).toBeLessThan(1e-6);
      const want = { ...mean, ...target, data: referenceBilinear(mean.data, mean.channels, mean, target) };
      const onHost = h.data.subarray(offset, offset + mean.channels * n);
      expect(relDiff(onHost, want)).toBeLessThan(1e-5);
      const onGpu = { ...want, data: await gpu.readF32(f.chunks[k].data, want.data.length) };
      expect(relDiff(onHost, onGpu)).toBeLessThan(1e-6);
      offset += mean.channels * n;
    }
    expect(offset).toBe(h.data.length);
    for (const c of f.chunks) gpu.release(c.data);
  });

  it('the host bilinear resampling = the GPU kernel, up and down, odd sizes, into an offset', async () => {
    const from = { width: 13, height: 7 };
    const src = new Float32Array(3 * 13 * 7).map((_, i) => Math.sin(i * 1.7) * 100 + i);
    const buffer = gpu.upload(src);
    for (const to of [{ width: 64, height: 29 }, { width: 5, height: 4 }, { width: 13, height: 7 }]) {
      const dst = resampleBilinear(gpu, buffer, 3, from, to);
      const want = await gpu.readF32(dst, 3 * to.width * to.height);
      gpu.release(dst);
      const out = new Float32Array(2 + want.length).fill(-1);
      resampleBilinearHost(src, 3, from, to, out, 2);
      expect(Array.from(out.subarray(0, 2))).toEqual([-1, -1]);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(out[2 + i] - want[i]));
      expect(worst).toBeLessThan(1e-4); // values up to ~360: a few f32 ulps
    }
    gpu.release(buffer);
  });
});

describe('the mobilenetv2 extractor', () => {
  it('needs weights from the host, then extracts 152 channels at the working resolution', async () => {
    await expect(mobileNetGraph(DEFAULT_LAYERS)).rejects.toThrow(/has no weights/);
    registerMobileNet();
    const options = resolveOptions({ 'features.extractor': 'mobilenetv2' });
    expect(options.features.layers).toEqual([...DEFAULT_LAYERS]);
    const extractor = chooseExtractor(options);
    expect(extractor.name).toBe('mobilenetv2');
    const image = testImage(48, 40, 1, 4);
    const f = await extractor.extract(gpu, image);
    expect([f.channels, f.width, f.height, f.chunks.map((c) => c.channels)]).toEqual([152, 48, 40, [24, 32, 96]]);
    const coarse = await extractor.extractHost!(gpu, image);
    const h = { ...coarse, data: materializeCoarse(coarse) };
    expect([h.channels, h.width, h.height, h.data.length]).toEqual([152, 48, 40, 152 * 48 * 40]);
    let offset = 0;
    let worst = 0;
    for (const c of f.chunks) {
      const g = await gpu.readF32(c.data, c.channels * 48 * 40);
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - h.data[offset + i]));
      offset += g.length;
    }
    expect(worst).toBeLessThan(1e-5);
    for (const c of f.chunks) gpu.release(c.data);
  });

  it('validates its options', () => {
    expect(() => resolveOptions({ 'features.layers': 'block_2_add,block_2_add' })).toThrow(/listed twice/);
    expect(() => resolveOptions({ 'features.layers': 'a b' })).toThrow(/is not a layer name/);
    expect(() => resolveOptions({ 'features.inputSize': 4096 })).toThrow(/outside \[0, 2048\]/);
    expect(resolveOptions({ 'features.layers': 'block_5_add' }).features.layers).toEqual(['block_5_add']);
    expect(networkInputSize({ width: 300, height: 150 }, 128)).toEqual({ width: 128, height: 64 });
  });

  it('rejects a layer the network does not have', async () => {
    provideMobileNet(async () => kerasMobileNetV2(2));
    await expect(mobileNetGraph(['block_99_add'])).rejects.toThrow(/no layer "block_99_add"/);
  });

  it('segments a synthetic sample end to end with pretrained features', async () => {
    registerMobileNet();
    const s = syntheticSample({ width: 64, height: 64, seed: 2, defects: 2 });
    const options = resolveOptions({ 'features.extractor': 'mobilenetv2', 'features.layers': 'block_2_add,block_5_add', 'classifier.epochs': 10 });
    const r = await segment(gpu, s, options);
    expect(r.featureChannels).toBe(56);
    expect(r.classifier).not.toBeNull();
    expect(r.pseudoLabels!.anomalous).toBeGreaterThan(0);
  });

  it('the host path gives the same segmentation on the coarse maps as with the GPU-resampled maps read back', async () => {
    registerMobileNet();
    const s = syntheticSample({ width: 96, height: 80, seed: 5, defects: 2 });
    const options = resolveOptions({ 'features.extractor': 'mobilenetv2', 'compute.stages': 'host' });
    const full = chooseExtractor(options);
    expect(full.extractHost).toBeDefined();
    const onHost = await segment(gpu, s, options);
    const readBack = await segment(gpu, s, options, { extractor: { name: full.name, extract: (g, image) => full.extract(g, image) } });
    expect(onHost.featureChannels).toBe(152);
    expect(onHost.pseudoLabels).toEqual(readBack.pseudoLabels);
    let same = 0;
    for (let i = 0; i < onHost.predMask.length; i++) same += onHost.predMask[i] === readBack.predMask[i] ? 1 : 0;
    expect(same / onHost.predMask.length).toBeGreaterThanOrEqual(0.999);
    expect(onHost.classifier!.weights.length).toBe(153);
    onHost.classifier!.weights.forEach((w, i) => expect(w).toBeCloseTo(readBack.classifier!.weights[i], 3));
  });
});
