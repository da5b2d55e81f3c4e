// The ResNet-50 v2 backbone: the weights file format, the shipped file, the graph builder's batch-norm folding
// against an unfolded reference on synthetic weights, every stage output of the WGSL forward against the
// plain-TS reference of the compiled graph (and against TensorFlow.js written from the raw tensors), and the
// resnet50 extractor.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { TttError } from '../../src/core/errors.ts';
import type { Gpu } from '../../src/core/gpu.ts';
import { chooseExtractor } from '../../src/core/features/index.ts';
import { preprocessImage, readTensor, runNetwork } from '../../src/core/features/mobilenet/forward.ts';
import { type NetworkGraph, tensorShapes } from '../../src/core/features/mobilenet/graph.ts';
import { buildResnetGraph, resnetLayers, stageBlocks, type NamedTensors } from '../../src/core/features/resnet/graph.ts';
import { resnetLayersFor } from '../../src/core/features/resnet/extractor.ts';
import { provideResnet50, resnet50Graph } from '../../src/core/features/resnet/registry.ts';
import { decodeTensorFile, encodeTensorFile, floatToHalf, type StoredType, type TensorFile } from '../../src/core/features/resnet/weights.ts';
import { halfToFloat } from '../../src/core/features/mobilenet/weights.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { segment } from '../../src/core/pipeline.ts';
import { planRun } from '../../src/core/plan.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { referenceBilinear } from '../../src/core/reference/features.ts';
import { referenceLocalMean, referenceNetwork, referencePreprocess } from '../../src/core/reference/mobilenet.ts';
import { referenceResnet } from '../../src/core/reference/resnet.ts';
import type { FeatureTensor, ImageTensor } from '../../src/core/types.ts';
import { tfjsResnet } from '../../src/cli/benchmarks/tfjsResnet.ts';
import { readResnet50File, registerResnet50, SHIPPED_RESNET50 } from '../../src/models/resnet50.ts';
import { testGpu } from '../helpers/gpu.ts';

let gpu: Gpu;
let shipped: TensorFile;
beforeAll(async () => {
  gpu = await testGpu();
  const { bytes, what } = readResnet50File(SHIPPED_RESNET50);
  shipped = decodeTensorFile(bytes, what);
});

function testImage(width: number, height: number, channels: 1 | 3, seed: number): ImageTensor {
  const data = new Float32Array(channels * width * height);
  for (let i = 0; i < data.length; i++) data[i] = 0.5 + 0.45 * Math.sin(i * 0.37 + seed) * Math.cos(i * 0.011 * seed);
  return { data, width, height, channels };
}

/** Largest absolute difference relative to the expected tensor's largest magnitude. */
function relDiff(got: Float32Array, want: FeatureTensor): number {
  expect(got.length).toBe(want.data.length);
  let m = 0;
  let scale = 0;
  for (let i = 0; i < got.length; i++) {
    m = Math.max(m, Math.abs(got[i] - want.data[i]));
    scale = Math.max(scale, Math.abs(want.data[i]));
  }
  expect(scale).toBeGreaterThan(0);
  return m / scale;
}

async function gpuForward(graph: NetworkGraph, image: ImageTensor): Promise<Map<string, Float32Array>> {
  const input = preprocessImage(gpu, image, image, undefined, graph.input);
  const outs = runNetwork(gpu, graph, input);
  gpu.release(input.data);
  const host = new Map<string, Float32Array>();
  for (const [name, o] of outs) {
    host.set(name, await readTensor(gpu, o));
    gpu.release(o.data);
  }
  return host;
}

/** A deterministic pseudo-random value in [-1, 1). */
const rnd = (i: number, seed: number): number => {
  let h = Math.imul(i + 0x9e3779b9 * seed, 0x85ebca6b) ^ 0xc2b2ae35;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 31 - 1;
};

/**
 * A tiny ResNet v2 in the ONNX naming: stem of 8 channels, stage 1 with 2 blocks (4 -> 16), stage 2 with
 * 1 block (8 -> 32, stride 2), stage 3's first batch norm; batch norms with negative gammas and spread
 * variances, so that folding errors show.
 */
function tinyWeights(): { name: string; shape: number[]; dtype: StoredType; values: Float32Array }[] {
  const out: { name: string; shape: number[]; dtype: StoredType; values: Float32Array }[] = [];
  let seed = 1;
  const conv = (name: string, cout: number, cin: number, k: number) => {
    const fan = cin * k * k;
    const s = seed++;
    out.push({ name: `resnetv24_${name}_weight`, shape: [cout, cin, k, k], dtype: 'float16', values: Float32Array.from({ length: cout * fan }, (_, i) => (1.5 * rnd(i, s)) / Math.sqrt(fan)) });
  };
  const bn = (name: string, c: number) => {
    const s = seed++;
    const v = (f: (i: number) => number) => Float32Array.from({ length: c }, (_, i) => f(i));
    out.push({ name: `resnetv24_${name}_gamma`, shape: [c], dtype: 'float32', values: v((i) => (i % 3 === 2 ? -1 : 1) * (0.5 + Math.abs(rnd(i, s)))) });
    out.push({ name: `resnetv24_${name}_beta`, shape: [c], dtype: 'float32', values: v((i) => 0.3 * rnd(i, s + 100)) });
    out.push({ name: `resnetv24_${name}_running_mean`, shape: [c], dtype: 'float32', values: v((i) => 0.2 * rnd(i, s + 200)) });
    out.push({ name: `resnetv24_${name}_running_var`, shape: [c], dtype: 'float32', values: v((i) => 0.05 + 2 * Math.abs(rnd(i, s + 300))) });
  };
  bn('batchnorm0', 3);
  conv('conv0', 8, 3, 7);
  bn('batchnorm1', 8);
  // stage 1: block 0 (with the shortcut conv3), block 1
  bn('stage1_batchnorm0', 8); conv('stage1_conv0', 4, 8, 1); bn('stage1_batchnorm1', 4); conv('stage1_conv1', 4, 4, 3);
  bn('stage1_batchnorm2', 4); conv('stage1_conv2', 16, 4, 1); conv('stage1_conv3', 16, 8, 1);
  bn('stage1_batchnorm3', 16); conv('stage1_conv4', 4, 16, 1); bn('stage1_batchnorm4', 4); conv('stage1_conv5', 4, 4, 3);
  bn('stage1_batchnorm5', 4); conv('stage1_conv6', 16, 4, 1);
  // stage 2: one block of stride 2
  bn('stage2_batchnorm0', 16); conv('stage2_conv0', 8, 16, 1); bn('stage2_batchnorm1', 8); conv('stage2_conv1', 8, 8, 3);
  bn('stage2_batchnorm2', 8); conv('stage2_conv2', 32, 8, 1); conv('stage2_conv3', 32, 16, 1);
  bn('stage3_batchnorm0', 32);
  return out;
}

describe('the weights file format', () => {
  it('rounds float16 to nearest even, keeps subnormals, and round-trips float16/float32 tensors', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(-2)).toBe(0xc000);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // halfway, to even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway, to even (up)
    expect(floatToHalf(2 ** -24)).toBe(0x0001);
    expect(floatToHalf(2 ** -26)).toBe(0);
    expect(floatToHalf(3 * 2 ** -25)).toBe(0x0002); // 1.5 units: to even
    for (let i = 0; i < 2000; i++) {
      const v = 10 * rnd(i, 7) ** 3;
      const back = halfToFloat(floatToHalf(v));
      expect(Math.abs(back - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25);
    }
    const values = Float32Array.from([0.1, -3.25, 7]);
    const file = encodeTensorFile('test', [
      { name: 'a', shape: [3], dtype: 'float32', values },
      { name: 'b', shape: [1, 3], dtype: 'float16', values },
    ]);
    const d = decodeTensorFile(file, 'mem');
    expect(d.source).toBe('test');
    expect([...d.tensors.get('a')!.values]).toEqual([...values]);
    expect(d.tensors.get('b')!.shape).toEqual([1, 3]);
    expect([...d.tensors.get('b')!.values]).toEqual([0.0999755859375, -3.25, 7]);
    // Bytes at an odd offset (a slice of a larger buffer) decode the same (no aligned 16-bit view there).
    const odd = new Uint8Array(file.length + 1);
    odd.set(file, 1);
    expect([...decodeTensorFile(odd.subarray(1), 'odd').tensors.get('b')!.values]).toEqual([0.0999755859375, -3.25, 7]);
    expect(() => encodeTensorFile('t', [{ name: 'x', shape: [1], dtype: 'float16', values: Float32Array.of(1e6) }])).toThrow(/cannot be stored as float16/);
  });

  it('refuses a foreign, truncated, extended or corrupted file with a typed error', () => {
    const file = encodeTensorFile('test', [{ name: 'a', shape: [4], dtype: 'float16', values: Float32Array.of(1, 2, 3, 4) }]);
    const fail = (bytes: Uint8Array, code: string, message: RegExp) => {
      let error: unknown = null;
      try {
        decodeTensorFile(bytes, 'w.bin');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TttError);
      expect((error as TttError).code).toBe(code);
      expect((error as TttError).message).toMatch(message);
    };
    fail(new TextEncoder().encode('{"not": "weights"}'), 'UNSUPPORTED_FORMAT', /w\.bin: not a weights file/);
    fail(file.subarray(0, 20), 'INVALID_INPUT', /truncated/);
    fail(file.subarray(0, file.length - 2), 'INVALID_INPUT', /truncated: the header describes 8 bytes of data, the file holds 6/);
    fail(Uint8Array.from([...file, 0, 0, 0, 0]), 'INVALID_INPUT', /trailing data/);
    const corrupt = file.slice();
    corrupt[corrupt.length - 1] ^= 0x40;
    fail(corrupt, 'INVALID_INPUT', /corrupted/);
    const version = file.slice();
    version[4] = 9;
    fail(version, 'UNSUPPORTED_FORMAT', /version 9/);
    const header = file.slice();
    header[13] = 0x7b; // '{' inside the JSON
    fail(header, 'UNSUPPORTED_FORMAT', /unreadable header/);
  });
});

describe('the shipped ResNet-50 v2 weights', () => {
  it('decode to the 211 tensors up to stage 3 with their shapes and known checksums', () => {
    const bytes = readFileSync(SHIPPED_RESNET50);
    expect(bytes.length).toBe(17263028);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe('662174147bc566cad38b7ef92bcd6360c69e2d980bcfa10dbbc3fba9fa0c849d');
    expect(shipped.checksum).toBe(0xb04157be);
    expect(shipped.tensors.size).toBe(211);
    expect([...shipped.tensors.values()].reduce((a, t) => a + t.values.length, 0)).toBe(8566988);
    const shape = (n: string) => shipped.tensors.get(`resnetv24_${n}`)?.shape;
    expect(shape('conv0_weight')).toEqual([64, 3, 7, 7]);
    expect(shape('batchnorm0_gamma')).toEqual([3]);
    expect(shape('stage1_conv3_weight')).toEqual([256, 64, 1, 1]);
    expect(shape('stage2_conv1_weight')).toEqual([128, 128, 3, 3]);
    expect(shape('stage2_conv3_weight')).toEqual([512, 256, 1, 1]);
    expect(shape('stage3_conv18_weight')).toEqual([1024, 256, 1, 1]);
    expect(shape('stage4_batchnorm0_running_var')).toEqual([1024]);
    expect(shape('batchnorm2_gamma')).toBeUndefined();
    expect(shape('dense0_bias')).toBeUndefined();
    expect(stageBlocks(shipped)).toEqual([3, 4, 6]);
    expect(resnetLayers(shipped)).toEqual(['stem', 'stage1', 'stage2', 'stage3']);
    // Values as numpy reads them from the .npy files: the first kernel value as float16 (0x8083, a
    // subnormal: numpy's float16 of -7.829359e-06), a batch norm as float32.
    expect(shipped.tensors.get('resnetv24_conv0_weight')!.values[0]).toBe(halfToFloat(0x8083));
    expect(halfToFloat(floatToHalf(-7.829359e-6))).toBe(halfToFloat(0x8083));
    expect(shipped.tensors.get('resnetv24_stage4_batchnorm0_running_var')!.values[0]).toBe(Math.fround(0.029386036));
  });

  it('compile to 64 / 256 / 512 / 1024 channels at strides 4, 4, 8, 16', () => {
    const g = buildResnetGraph(shipped, ['stem', 'stage1', 'stage2', 'stage3']);
    const shapes = tensorShapes(g, { width: 256, height: 256 });
    const at = (l: string) => ({ c: g.channels[g.outputs.get(l)!], ...shapes[g.outputs.get(l)!] });
    expect(at('stem')).toEqual({ c: 64, width: 64, height: 64 });
    expect(at('stage1')).toEqual({ c: 256, width: 64, height: 64 });
    expect(at('stage2')).toEqual({ c: 512, width: 32, height: 32 });
    expect(at('stage3')).toEqual({ c: 1024, width: 16, height: 16 });
    // conv0 + pool + 13 blocks of 3 convs and 1 pre-activation (stage 2/3's first is stage 1/2's activated
    // output) + 3 shortcut convs + stage 3's activation.
    expect(g.ops.length).toBe(2 + 13 * 4 + 3 + 1);
    expect(g.ops.filter((o) => o.kind === 'conv' && o.residual !== null).length).toBe(13);
    // Only what the outputs need: stage 1 alone stops after stage 2's first batch norm.
    expect(buildResnetGraph(shipped, ['stage1']).ops.length).toBe(2 + 3 * 4 + 1 + 1);
    expect(() => buildResnetGraph(shipped, ['stage4'])).toThrow(/no layer "stage4" \(layers: stem, stage1, stage2, stage3\)/);
  });

  // Measured <= 3e-6 relative: f32 sums in another order than the f64 reference. One test per size (each
  // reference forward takes 5-30 s on this machine).
  for (const [w, h, ch] of [[64, 64, 3], [50, 70, 1]] as const) {
    it(`WGSL forward = the reference of the compiled graph for every stage output (${w}x${h}, ${ch} channel${ch > 1 ? 's' : ''})`, async () => {
      const layers = ['stem', 'stage1', 'stage2', 'stage3'];
      const graph = buildResnetGraph(shipped, layers);
      const image = testImage(w, h, ch, 3);
      const got = await gpuForward(graph, image);
      const want = referenceNetwork(graph, referencePreprocess(image, image, graph.input), image);
      for (const l of layers) expect(relDiff(got.get(l)!, want.get(l)!), `${l} at ${w}x${h}`).toBeLessThan(2e-5);
    });
  }

  it('the compiled graph = TensorFlow.js written from the raw tensors (unfolded batch norms), 40x36', async () => {
    const layers = ['stem', 'stage1', 'stage2', 'stage3'];
    const graph = buildResnetGraph(shipped, layers);
    const image = testImage(40, 36, 3, 5);
    const got = await gpuForward(graph, image);
    const model = await tfjsResnet(shipped, layers, 36, 40);
    const ys = await model.run(image.data);
    model.dispose();
    layers.forEach((l, k) => {
      expect([ys[k].channels, ys[k].width, ys[k].height]).toEqual([graph.channels[graph.outputs.get(l)!], ...[tensorShapes(graph, image)[graph.outputs.get(l)!]].map((s) => [s.width, s.height]).flat()]);
      expect(relDiff(got.get(l)!, ys[k]), l).toBeLessThan(2e-5);
    });
  });
});

describe('the ResNet graph builder', () => {
  it('folds the batch norms exactly: compiled graph (WGSL and reference) = unfolded reference on a tiny synthetic network', async () => {
    const t: NamedTensors = decodeTensorFile(encodeTensorFile('tiny', tinyWeights()), 'tiny');
    expect(stageBlocks(t)).toEqual([2, 1]);
    expect(resnetLayers(t)).toEqual(['stem', 'stage1', 'stage2']);
    const layers = ['stem', 'stage1', 'stage2'];
    const graph = buildResnetGraph(t, layers);
    for (const [w, h] of [[33, 29], [16, 16]] as const) {
      const image = testImage(w, h, 3, 9);
      const unfolded = referenceResnet(t, image.data, w, h, layers);
      const folded = referenceNetwork(graph, referencePreprocess(image, image, graph.input), image);
      const got = await gpuForward(graph, image);
      for (const l of layers) {
        const u = unfolded.get(l)!;
        expect([folded.get(l)!.channels, folded.get(l)!.width, folded.get(l)!.height]).toEqual([u.channels, u.width, u.height]);
        // Folding changes only float32 rounding (weights * scale): measured ~1e-6 relative.
        expect(relDiff(folded.get(l)!.data, u), `${l} folded ${w}x${h}`).toBeLessThan(1e-5);
        expect(relDiff(got.get(l)!, u), `${l} WGSL ${w}x${h}`).toBeLessThan(1e-5);
      }
      // The ReLU outputs are not trivially zero (the network does something).
      expect(got.get('stage2')!.some((v) => v > 0.01)).toBe(true);
      expect(got.get('stage2')!.some((v) => v === 0)).toBe(true);
    }
  });

  it('names a missing or misshapen tensor', () => {
    const all = tinyWeights();
    const without = decodeTensorFile(encodeTensorFile('tiny', all.filter((x) => x.name !== 'resnetv24_stage1_batchnorm4_beta')), 'tiny');
    expect(() => buildResnetGraph(without, ['stage1'])).toThrow(/resnetv24_stage1_batchnorm4_beta is missing/);
    const wrong = decodeTensorFile(encodeTensorFile('tiny', all.map((x) => (x.name === 'resnetv24_stage1_conv4_weight' ? { ...x, shape: [4, 8, 1, 1], values: x.values.subarray(0, 32) } : x))), 'tiny');
    expect(() => buildResnetGraph(wrong, ['stage1'])).toThrow(/stage1_conv4_weight has shape 4x8x1x1, expected 4x16x1x1/);
  });
});

describe('the resnet50 extractor', () => {
  it('needs weights from the host, then extracts the activated stages, 3x3-averaged and resampled', async () => {
    provideResnet50(async () => {
      throw new TttError('NOT_FOUND', 'nothing here');
    });
    await expect(resnet50Graph(['stage1'])).rejects.toThrow(/nothing here/);
    const bytes = encodeTensorFile('tiny', tinyWeights());
    provideResnet50(async () => ({ bytes: bytes.subarray(0, bytes.length - 10), what: 'cut.bin' }));
    await expect(resnet50Graph(['stage1'])).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/cut\.bin: truncated/) });
    provideResnet50(async () => ({ bytes, what: 'tiny.bin' }));
    const options = resolveOptions({ 'features.extractor': 'resnet50', 'features.layers': 'stage1,stage2' });
    const extractor = chooseExtractor(options);
    expect(extractor.name).toBe('resnet50');
    const image = testImage(40, 36, 1, 2);
    const f = await extractor.extract(gpu, image);
    expect([f.channels, f.width, f.height, f.names[0], f.names[16]]).toEqual([48, 40, 36, 'stage1.0', 'stage2.0']);
    const t = decodeTensorFile(bytes, 'tiny');
    const want = referenceResnet(t, referencePreprocess(image, image, { scale: [1, 1, 1], offset: [0, 0, 0] }), 40, 36, ['stage1', 'stage2']);
    let offset = 0;
    const got = new Float32Array(48 * 40 * 36);
    for (const c of f.chunks) {
      got.set(await gpu.readF32(c.data, c.channels * 40 * 36), offset);
      offset += c.channels * 40 * 36;
      gpu.release(c.data);
    }
    const expected = new Float32Array(got.length);
    offset = 0;
    for (const l of ['stage1', 'stage2']) {
      const m = referenceLocalMean(want.get(l)!);
      const r = referenceBilinear(m.data, m.channels, m, { width: 40, height: 36 });
      expected.set(r, offset);
      offset += r.length;
    }
    expect(relDiff(got, { data: expected, channels: 48, width: 40, height: 36 })).toBeLessThan(1e-5);
  });

  it('takes stage names; the option default (MobileNetV2 names) stands for stage1..3', async () => {
    expect(resolveOptions({ 'features.extractor': 'resnet50' }).features.extractor).toBe('resnet50');
    expect(resnetLayersFor(resolveOptions({}).features.layers)).toEqual(['stage1', 'stage2', 'stage3']);
    expect(resnetLayersFor(['stage2'])).toEqual(['stage2']);
    provideResnet50(async () => ({ bytes: encodeTensorFile('tiny', tinyWeights()), what: 'tiny.bin' }));
    await expect(resnet50Graph(['block_2_add'])).rejects.toMatchObject({ code: 'INVALID_OPTION', message: expect.stringMatching(/no layer "block_2_add" \(layers: stem, stage1, stage2\)/) });
  });

  it('plans a run (an input of 2048 over a 2^25-float binding names features.inputSize) and segments a sample end to end', async () => {
    provideResnet50(async () => readResnet50File(SHIPPED_RESNET50));
    const limits = (floats: number) => ({ maxStorageBufferBindingSize: floats * 4, maxComputeWorkgroupsPerDimension: 65535 });
    const colour = { image: { width: 64, height: 64, channels: 3 } };
    const options = resolveOptions({ 'features.extractor': 'resnet50', 'features.inputSize': 2048 });
    const refused = await planRun(limits(2 ** 25), colour, options).then(() => null, (e: unknown) => e as TttError);
    expect(refused?.code).toBe('INVALID_OPTION');
    // conv0's output: 64 planes of 1024 x 1024 (its windows, 147 rows of them, come later in the plan).
    expect(refused?.message).toMatch(/^option features\.inputSize: a network input of 2048x2048: layer output 1 \(64 x 1024x1024\) needs 67108864 floats in one buffer/);
    await expect(planRun(limits(2 ** 25), colour, resolveOptions({ 'features.extractor': 'resnet50', 'features.inputSize': 512 }))).resolves.toBeLessThanOrEqual(2 ** 25);

    registerResnet50();
    const sample = syntheticSample({ width: 64, height: 64, seed: 2, defects: 2 });
    const r = await segment(gpu, sample, resolveOptions({ 'features.extractor': 'resnet50', 'features.layers': 'stage1,stage2', 'classifier.epochs': 10 }));
    expect(r.featureChannels).toBe(768);
    expect(r.classifier).not.toBeNull();
    expect(r.pseudoLabels!.anomalous).toBeGreaterThan(0);
  });
});
