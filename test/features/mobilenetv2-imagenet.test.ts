// The ImageNet MobileNetV2 1.0 backbone (GluonCV, models/mobilenetv2-imagenet/weights.bin): the shipped file,
// the graph builder (batch norms folded, symmetric padding at stride 2, the t = 1 expansion of block 0, the
// residual blocks) against an independent unfolded NCHW reference written from the raw tensors, the WGSL
// forward against the plain-TS reference of the compiled graph at both strides and odd sizes, and the
// mobilenetv2 extractor / PatchCore backbone selection (TTT_MOBILENET_WEIGHTS, TTT_MOBILENET_MODEL) and the
// refusal of banks built with other weights (the retired nsfwjs network's included).
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { chooseExtractor } from '../../src/core/features/index.ts';
import { DEFAULT_LAYERS } from '../../src/core/features/mobilenet/extractor.ts';
import { preprocessImage, readTensor, runNetwork } from '../../src/core/features/mobilenet/forward.ts';
import { buildGluonMobileNetGraph, GLUON_BLOCK_STRIDES, gluonBlocks, gluonLayers, IMAGENET_MEAN, IMAGENET_STD } from '../../src/core/features/mobilenet/gluon.ts';
import { type NetworkGraph, tensorShapes } from '../../src/core/features/mobilenet/graph.ts';
import { mobileNetGraph } from '../../src/core/features/mobilenet/registry.ts';
import { halfToFloat } from '../../src/core/features/mobilenet/weights.ts';
import { decodeTensorFile, floatToHalf, type TensorFile } from '../../src/core/features/resnet/weights.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { buildBank, checkBankWeights, PATCHCORE_DEFAULTS, PatchCoreScorer } from '../../src/core/patchcore/patchcore.ts';
import { referenceNetwork, referencePreprocess } from '../../src/core/reference/mobilenet.ts';
import type { FeatureTensor, ImageTensor } from '../../src/core/types.ts';
import { readMobileNetV2File, SHIPPED_MOBILENETV2 } from '../../src/models/mobilenetv2.ts';
import { mobileNetSelection, registerMobileNet } from '../../src/models/mobilenet.ts';
import { tfjsGluonMobileNet } from '../../src/cli/benchmarks/tfjsMobilenetV2.ts';
import { testGpu } from '../helpers/gpu.ts';
import { kerasMobileNetV2 } from '../helpers/kerasModel.ts';

/** A Keras MobileNetV2 (random weights) written out as a TensorFlow.js layers model: its folder. */
function kerasModelDir(): string {
  const net = kerasMobileNetV2(4);
  const dir = mkdtempSync(join(tmpdir(), 'ttt-mnv2-'));
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: net.modelTopology, weightsManifest: net.weightsManifest }));
  writeFileSync(join(dir, net.weightsManifest[0].paths[0]), new Uint8Array(net.weightData));
  return dir;
}

let gpu: Gpu;
let shipped: TensorFile;
beforeAll(async () => {
  gpu = await testGpu();
  const { bytes, what } = readMobileNetV2File(SHIPPED_MOBILENETV2);
  shipped = decodeTensorFile(bytes, what);
});

function testImage(width: number, height: number, channels: 1 | 3, seed: number): ImageTensor {
  const data = new Float32Array(channels * width * height);
  for (let i = 0; i < data.length; i++) data[i] = 0.5 + 0.45 * Math.sin(i * 0.37 + seed) * Math.cos(i * 0.011 * seed);
  return { data, width, height, channels };
}

/** Largest absolute difference relative to the expected tensor's largest magnitude. */
function relDiff(got: Float32Array, want: Float32Array): number {
  expect(got.length).toBe(want.length);
  let m = 0;
  let scale = 0;
  for (let i = 0; i < got.length; i++) {
    m = Math.max(m, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
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

/**
 * GluonCV's MobileNetV2 written directly from the raw tensors (NCHW, f64): separate batch norms (epsilon
 * 1e-5), convolutions with explicit symmetric zero padding (k - 1) / 2 and groups, ReLU6, the residual when
 * the stride is 1 and the channels do not change. Returns every block's output and the stem.
 */
function unfoldedReference(t: TensorFile, image: ImageTensor, blocks: number): { stem: FeatureTensor; outs: FeatureTensor[] } {
  const P = 'mobilenetv20_features_';
  const get = (n: string) => {
    const v = t.tensors.get(P + n);
    if (!v) throw new Error(`missing ${n}`);
    return v;
  };
  const { width: W, height: H } = image;
  let x: FeatureTensor = { channels: 3, width: W, height: H, data: new Float32Array(3 * W * H) };
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < W * H; i++) x.data[c * W * H + i] = (image.data[(image.channels === 3 ? c : 0) * W * H + i] - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
  }
  const conv = (inp: FeatureTensor, name: string, stride: number, groups: number): FeatureTensor => {
    const w = get(`${name}_weight`);
    const [cout, cinG, k] = w.shape;
    const p = (k - 1) / 2;
    const oh = Math.floor((inp.height + 2 * p - k) / stride) + 1;
    const ow = Math.floor((inp.width + 2 * p - k) / stride) + 1;
    const out = new Float32Array(cout * oh * ow);
    const perGroupOut = cout / groups;
    for (let co = 0; co < cout; co++) {
      const g = Math.floor(co / perGroupOut);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let s = 0;
          for (let ci = 0; ci < cinG; ci++) {
            const cIn = g * cinG + ci;
            for (let ky = 0; ky < k; ky++) {
              const iy = oy * stride + ky - p;
              if (iy < 0 || iy >= inp.height) continue;
              for (let kx = 0; kx < k; kx++) {
                const ix = ox * stride + kx - p;
                if (ix < 0 || ix >= inp.width) continue;
                s += inp.data[(cIn * inp.height + iy) * inp.width + ix] * w.values[((co * cinG + ci) * k + ky) * k + kx];
              }
            }
          }
          out[(co * oh + oy) * ow + ox] = s;
        }
      }
    }
    return { channels: cout, width: ow, height: oh, data: out };
  };
  const bn = (inp: FeatureTensor, name: string, relu6: boolean): FeatureTensor => {
    const n = inp.width * inp.height;
    const out = new Float32Array(inp.data.length);
    for (let c = 0; c < inp.channels; c++) {
      const [g, b, m, v] = ['gamma', 'beta', 'running_mean', 'running_var'].map((q) => get(`${name}_${q}`).values[c]);
      for (let i = 0; i < n; i++) {
        const y = ((inp.data[c * n + i] - m) / Math.sqrt(v + 1e-5)) * g + b;
        out[c * n + i] = relu6 ? Math.min(Math.max(y, 0), 6) : y;
      }
    }
    return { ...inp, data: out };
  };
  x = bn(conv(x, 'conv0', 2, 1), 'batchnorm0', true);
  const stem = x;
  const outs: FeatureTensor[] = [];
  for (let k = 0; k < blocks; k++) {
    const b = `linearbottleneck${k}_`;
    const e = bn(conv(x, `${b}conv0`, 1, 1), `${b}batchnorm0`, true);
    const d = bn(conv(e, `${b}conv1`, GLUON_BLOCK_STRIDES[k], e.channels), `${b}batchnorm1`, true);
    const y = bn(conv(d, `${b}conv2`, 1, 1), `${b}batchnorm2`, false);
    if (GLUON_BLOCK_STRIDES[k] === 1 && y.channels === x.channels) for (let i = 0; i < y.data.length; i++) y.data[i] += x.data[i];
    outs.push(y);
    x = y;
  }
  return { stem, outs };
}

describe('the shipped ImageNet MobileNetV2 weights', () => {
  it('decode to the 260 tensors of the stem and the 17 linear bottlenecks with their shapes and checksums', () => {
    const bytes = readFileSync(SHIPPED_MOBILENETV2);
    expect(bytes.length).toBe(3846456);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe('24785e9c5c3aa922b843d9ac55c45208f397cf1f6d53ddd2a6cec4326d7d253b');
    expect(shipped.tensors.size).toBe(260);
    expect([...shipped.tensors.values()].reduce((a, t) => a + t.values.length, 0)).toBe(1844416);
    const shape = (n: string) => shipped.tensors.get(`mobilenetv20_features_${n}`)?.shape;
    expect(shape('conv0_weight')).toEqual([32, 3, 3, 3]);
    expect(shape('linearbottleneck0_conv0_weight')).toEqual([32, 32, 1, 1]); // t = 1: the expansion is there
    expect(shape('linearbottleneck0_conv1_weight')).toEqual([32, 1, 3, 3]);
    expect(shape('linearbottleneck2_conv2_weight')).toEqual([24, 144, 1, 1]);
    expect(shape('linearbottleneck16_conv2_weight')).toEqual([320, 960, 1, 1]);
    expect(shape('linearbottleneck12_batchnorm2_running_var')).toEqual([96]);
    expect(shape('conv1_weight')).toBeUndefined();
    expect(shape('batchnorm1_gamma')).toBeUndefined();
    expect(gluonBlocks(shipped)).toBe(17);
    const names = [...gluonLayers(shipped).keys()].filter((n) => !n.startsWith('linearbottleneck'));
    expect(names).toEqual([
      'Conv1_relu', 'expanded_conv_project_BN', 'block_1_project_BN', 'block_2_add', 'block_3_project_BN', 'block_4_add', 'block_5_add',
      'block_6_project_BN', 'block_7_add', 'block_8_add', 'block_9_add', 'block_10_project_BN', 'block_11_add', 'block_12_add',
      'block_13_project_BN', 'block_14_add', 'block_15_add', 'block_16_project_BN',
    ]);
    // Values as numpy reads them from the .npy files: the first kernel value as float16 (numpy's float16 of
    // -0.1113732 is 0xaf21), a batch norm as float32.
    expect(shipped.tensors.get('mobilenetv20_features_conv0_weight')!.values[0]).toBe(halfToFloat(0xaf21));
    expect(halfToFloat(floatToHalf(-0.1113732))).toBe(halfToFloat(0xaf21));
    expect(shipped.tensors.get('mobilenetv20_features_linearbottleneck12_batchnorm2_running_var')!.values[0]).toBe(Math.fround(0.02448859));
  });

  it('compile the default layers to 24 / 32 / 96 channels at strides 4, 8, 16 (same names and sizes as the Keras network)', () => {
    const g = buildGluonMobileNetGraph(shipped, [...DEFAULT_LAYERS, 'linearbottleneck16']);
    const shapes = tensorShapes(g, { width: 256, height: 256 });
    const at = (l: string) => ({ c: g.channels[g.outputs.get(l)!], ...shapes[g.outputs.get(l)!] });
    expect(at('block_2_add')).toEqual({ c: 24, width: 64, height: 64 });
    expect(at('block_5_add')).toEqual({ c: 32, width: 32, height: 32 });
    expect(at('block_12_add')).toEqual({ c: 96, width: 16, height: 16 });
    expect(at('linearbottleneck16')).toEqual({ c: 320, width: 8, height: 8 });
    // The stem and 3 ops per block; the residual fused into the projection of 10 blocks.
    expect(g.ops.length).toBe(1 + 17 * 3);
    expect(g.ops.filter((o) => o.kind === 'conv' && o.residual !== null).length).toBe(10);
    // Symmetric padding 1 at both strides (ceil(n / 2) at stride 2 for odd sizes too).
    for (const o of g.ops) if (o.kind === 'depthwise') expect([o.padding.top, o.padding.bottom, o.padding.left, o.padding.right, o.padding.same]).toEqual([1, 1, 1, 1, false]);
    expect(tensorShapes(g, { width: 71, height: 45 })[g.outputs.get('block_2_add')!]).toEqual({ width: 18, height: 12 });
    // Only what the outputs need.
    expect(buildGluonMobileNetGraph(shipped, ['block_2_add']).ops.length).toBe(1 + 3 * 3);
    expect(() => buildGluonMobileNetGraph(shipped, ['block_3_add'])).toThrow(/no layer "block_3_add" \(block outputs: Conv1_relu, expanded_conv_project_BN, .*block_3_project_BN/);
    expect(() => buildGluonMobileNetGraph(shipped, [])).toThrow(/no output layer/);
  });

  it('the compiled graph (folded, WGSL) = GluonCV written from the raw tensors (unfolded NCHW reference), 33x29 and 24x24', async () => {
    for (const [w, h, ch] of [[33, 29, 3], [24, 24, 1]] as const) {
      const layers = ['Conv1_relu', 'expanded_conv_project_BN', 'block_1_project_BN', 'block_2_add', 'block_3_project_BN', 'block_5_add', 'block_6_project_BN', 'block_12_add', 'block_13_project_BN', 'block_16_project_BN'];
      const graph = buildGluonMobileNetGraph(shipped, layers);
      const image = testImage(w, h, ch, 7);
      const got = await gpuForward(graph, image);
      const { stem, outs } = unfoldedReference(shipped, image, 17);
      const want = (l: string) => (l === 'Conv1_relu' ? stem : outs[gluonLayers(shipped).get(l)!]);
      for (const l of layers) {
        const s = tensorShapes(graph, image)[graph.outputs.get(l)!];
        expect([want(l).width, want(l).height], `${l} size`).toEqual([s.width, s.height]);
        // Tolerance: 1e-4 of the range (f32 sums, folded batch norms); measured below 1e-5.
        expect(relDiff(got.get(l)!, want(l).data), `${l} at ${w}x${h}`).toBeLessThan(1e-4);
      }
    }
  });

  it('the compiled graph (WGSL) = TensorFlow.js written from the raw tensors (tf.batchNorm, symmetric padding), 40x36', async () => {
    const layers = ['Conv1_relu', 'block_1_project_BN', ...DEFAULT_LAYERS];
    const graph = buildGluonMobileNetGraph(shipped, layers);
    const image = testImage(40, 36, 3, 5);
    const got = await gpuForward(graph, image);
    const model = await tfjsGluonMobileNet(shipped, layers, 36, 40);
    const ys = await model.run(image.data);
    model.dispose();
    layers.forEach((l, k) => {
      const s = tensorShapes(graph, image)[graph.outputs.get(l)!];
      expect([ys[k].channels, ys[k].width, ys[k].height]).toEqual([graph.channels[graph.outputs.get(l)!], s.width, s.height]);
      expect(relDiff(got.get(l)!, ys[k].data), l).toBeLessThan(1e-4);
    });
  });

  // The plain-TS reference of the compiled graph (as for the Keras network) at even and odd sizes: the
  // stride-2 depthwise with padding 1 before takes the general depthwise kernel, stride 1 the vec4 one.
  for (const [w, h, ch] of [[64, 64, 3], [50, 70, 1]] as const) {
    it(`WGSL forward = the reference of the compiled graph (${w}x${h}, ${ch} channel${ch > 1 ? 's' : ''})`, async () => {
      const layers = ['Conv1_relu', 'block_1_project_BN', ...DEFAULT_LAYERS, 'block_16_project_BN'];
      const graph = buildGluonMobileNetGraph(shipped, layers);
      const image = testImage(w, h, ch, 3);
      const got = await gpuForward(graph, image);
      const want = referenceNetwork(graph, referencePreprocess(image, image, graph.input), image);
      for (const l of layers) expect(relDiff(got.get(l)!, want.get(l)!.data), `${l} at ${w}x${h}`).toBeLessThan(2e-5);
    });
  }
});

describe('choosing the MobileNetV2 (TTT_MOBILENET_WEIGHTS)', () => {
  it('imagenet: the mobilenetv2 extractor gives the same 152 channels from the shipped weights', async () => {
    registerMobileNet(undefined, 'imagenet');
    const g = await mobileNetGraph(DEFAULT_LAYERS);
    expect(g.source).toMatch(/^ImageNet MobileNetV2 1\.0/);
    const extractor = chooseExtractor(resolveOptions({ 'features.extractor': 'mobilenetv2' }));
    const image = testImage(48, 40, 1, 4);
    const f = await extractor.extract(gpu, image);
    expect([f.channels, f.width, f.height, f.chunks.map((c) => c.channels)]).toEqual([152, 48, 40, [24, 32, 96]]);
    for (const c of f.chunks) gpu.release(c.data);
    await expect(mobileNetGraph(['block_99_add'])).rejects.toThrow(/no layer "block_99_add"/);
  });

  it('a layers model (TTT_MOBILENET_MODEL) over the weights; nsfwjs (no longer shipped) is refused by name; a missing weights file is named', async () => {
    const dir = kerasModelDir();
    registerMobileNet(join(dir, 'model.json'), 'imagenet');
    const g = await mobileNetGraph(DEFAULT_LAYERS);
    expect(g.source).toBe(join(dir, 'model.json'));
    expect(DEFAULT_LAYERS.map((l) => g.channels[g.outputs.get(l)!])).toEqual([24, 32, 96]);
    expect(mobileNetSelection(undefined, undefined)).toEqual({ kind: 'file', path: SHIPPED_MOBILENETV2 });
    expect(mobileNetSelection('/m/model.json', 'imagenet')).toEqual({ kind: 'layers', modelJson: '/m/model.json' });
    expect(mobileNetSelection('/m/model.json', 'nsfwjs')).toEqual({ kind: 'layers', modelJson: '/m/model.json' });
    const retired = /TTT_MOBILENET_WEIGHTS=nsfwjs: the NSFW-tuned MobileNetV2 of the nsfwjs package is no longer shipped; use TTT_MOBILENET_WEIGHTS=imagenet .* or point TTT_MOBILENET_MODEL at that network's model\.json/;
    expect(() => mobileNetSelection(undefined, 'nsfwjs')).toThrow(retired);
    // Registering does not throw (a process starts); the first use does.
    registerMobileNet(undefined, 'nsfwjs');
    await expect(mobileNetGraph(DEFAULT_LAYERS)).rejects.toThrow(retired);
    registerMobileNet(undefined, '/nonexistent/weights.bin');
    await expect(mobileNetGraph(DEFAULT_LAYERS)).rejects.toThrow(/\/nonexistent\/weights\.bin: the mobilenetv2 weights cannot be read .*TTT_MOBILENET_WEIGHTS takes imagenet or a weights file's path/);
  });

  it('a mobilenetv2 bank records its weights; one of the nsfwjs network is refused with what to do, other ImageNet weights too', async () => {
    registerMobileNet(undefined, 'imagenet');
    const config = { ...PATCHCORE_DEFAULTS, backbone: 'mobilenetv2' as const, layers: [...DEFAULT_LAYERS], size: 32, coresetRows: 0, coresetRatio: 1, preselect: 1 };
    const bank = await buildBank(gpu, [testImage(32, 32, 1, 2)], config);
    expect(bank.header.weights).toMatch(/^ImageNet MobileNetV2 1\.0 /);
    (await PatchCoreScorer.load(gpu, bank)).release();
    // A bank of an earlier version, built with the nsfwjs network (same layers and channels).
    const old = { ...bank, header: { ...bank.header, weights: 'nsfwjs 4.4.0 mobilenet_v2' } };
    await expect(PatchCoreScorer.load(gpu, old)).rejects.toThrow(
      /built with the MobileNetV2 "nsfwjs 4\.4\.0 mobilenet_v2" \(the NSFW-tuned network of the nsfwjs package\), whose weights are no longer shipped: rebuild the bank .* point TTT_MOBILENET_MODEL at its model\.json/,
    );
    // With that network as a layers model (here a Keras MobileNetV2 of the same topology) the bank loads.
    registerMobileNet(join(kerasModelDir(), 'model.json'), 'imagenet');
    (await PatchCoreScorer.load(gpu, old)).release();
    registerMobileNet(undefined, 'imagenet');
    const other = { ...bank, header: { ...bank.header, weights: 'ImageNet MobileNetV2 1.0 (another file)' } };
    await expect(PatchCoreScorer.load(gpu, other)).rejects.toThrow(/built with the MobileNetV2 "ImageNet MobileNetV2 1\.0 \(another file\)" but this process has "ImageNet MobileNetV2 1\.0 .*": select the same weights \(TTT_MOBILENET_WEIGHTS\) or rebuild the bank/);
    // Weights the project does not know (a layers model's path, a test's name), processes running such a model and other backbones are not checked.
    expect(() => checkBankWeights({ backbone: 'mobilenetv2', weights: '/models/x/model.json' }, 'ImageNet MobileNetV2 1.0 (x)')).not.toThrow();
    expect(() => checkBankWeights({ backbone: 'mobilenetv2', weights: 'ImageNet MobileNetV2 1.0 (x)' }, '/models/x/model.json')).not.toThrow();
    expect(() => checkBankWeights({ backbone: 'resnet50', weights: 'nsfwjs 4.4.0 mobilenet_v2' }, 'ImageNet MobileNetV2 1.0 (x)')).not.toThrow();
    expect(() => checkBankWeights({ backbone: 'mobilenetv2', weights: 'nsfwjs 4.4.0 mobilenet_v2' }, 'ImageNet MobileNetV2 1.0 (x)')).toThrow(/no longer shipped: rebuild the bank/);
  });
});
