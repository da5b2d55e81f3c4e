// `ttt eval` on small synthetic MVTec-layout datasets written to a temp folder: metric values against a hand
// computation, the JSON shape, determinism, --limit, the validation split, report files, bad datasets, and
// the CLI against the in-process runEval.

import { cp, mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resampleBilinear } from '../../src/core/features/resample.ts';
import { confusion } from '../../src/core/metrics.ts';
import { OPTION_SPECS, defaultOptions, flattenOptions, resolveOptions } from '../../src/core/options.ts';
import { segment } from '../../src/core/pipeline.ts';
import { calibrate } from '../../src/core/calibration.ts';
import { openDataset, resampleNearest } from '../../src/eval/dataset.ts';
import { METHOD_NAMES, TTT4AS_FEATURES, ttt4asOptions, ttt4asOverrides, type MethodName } from '../../src/eval/methods.ts';
import type { EvalSummary } from '../../src/eval/report.ts';
import { runEval, type EvalOptions } from '../../src/eval/run.ts';
import { mapsFolder, patchcoreSource, savingMaps } from '../../src/eval/scoreSource.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';
import { registerResnet50 } from '../../src/models/resnet50.ts';
import { writeSyntheticDataset } from '../../src/eval/syntheticDataset.ts';
import { progressReporter } from '../../src/cli/progress.ts';
import { decodeImage, decodeMask, encodeImagePng, encodeMaskPng } from '../../src/io/image.ts';
import { encodeNpy, parseNpy } from '../../src/io/npy.ts';
import { testGpu } from '../helpers/gpu.ts';
import { TttError } from '../../src/core/errors.ts';
import { runCli } from '../helpers/processes.ts';

// The default extractor is the pretrained network, ttt4as's the ResNet-50: provide their weights, as the CLI
// and server do.
registerMobileNet();
registerResnet50();


const ttt = (...args: string[]) => runCli(args);

let dir: string;
let synth: { dataset: string; maps: string };
const W = 64;
const H = 48;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ttt-eval-'));
  // Maps at stride 2 (32x24): every method sees them resampled to the 64x48 working resolution.
  synth = await writeSyntheticDataset(join(dir, 'synth'), { width: W, count: 3, mapStride: 2, seed: 11 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function evaluate(over: Partial<EvalOptions> & { maps?: string } = {}) {
  const { maps, ...rest } = over;
  return runEval({
    gpu: await testGpu(),
    dataset: synth.dataset,
    source: mapsFolder(maps ?? synth.maps),
    methods: METHOD_NAMES,
    size: 256,
    seed: 0,
    ...rest,
  });
}

async function expectError(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a TttError').toBeInstanceOf(TttError);
  expect((err as TttError).code, (err as Error).message).toBe(code);
  expect((err as Error).message).toMatch(re);
}

describe('metrics by hand', () => {
  // 8x8 images. Validation maps all 0 and all 1: mean 0.5, std 0.5, so 3 sigma = 2, 1 sigma = 1, max = 1.
  const N = 8;
  const at = (r: number, c: number) => r * N + c;
  let root: string;
  beforeAll(async () => {
    root = join(dir, 'hand');
    const data = join(root, 'data');
    const maps = join(root, 'maps');
    const grey = { data: new Float32Array(N * N).fill(0.5), width: N, height: N, channels: 1 as const };
    const png = await encodeImagePng(grey);
    const put = async (path: string, bytes: Uint8Array) => {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, bytes);
    };
    const map = (values: [number, number][]) => {
      const m = new Float32Array(N * N);
      for (const [i, v] of values) m[i] = v;
      return encodeNpy(m, [N, N]);
    };
    const mask = (pixels: number[]) => {
      const m = new Uint8Array(N * N);
      for (const i of pixels) m[i] = 1;
      return encodeMaskPng(m, N, N);
    };
    await put(join(data, 'train/good/t.png'), png);
    for (const s of ['v0', 'v1']) await put(join(data, `validation/good/${s}.png`), png);
    await put(join(maps, 'validation/good/v0.npy'), encodeNpy(new Float32Array(N * N), [N, N]));
    await put(join(maps, 'validation/good/v1.npy'), encodeNpy(new Float32Array(N * N).fill(1), [N, N]));
    // Type a: truth = row 0, columns 0-5. Scores 3 on columns 0-3, 1.5 on 4-5, 2.5 on two wrong pixels.
    await put(join(data, 'test/a/x.png'), png);
    await put(join(data, 'ground_truth/a/x_mask.png'), await mask([0, 1, 2, 3, 4, 5].map((c) => at(0, c))));
    await put(join(maps, 'a/x.npy'), map([...[0, 1, 2, 3].map((c) => [at(0, c), 3] as [number, number]), [at(0, 4), 1.5], [at(0, 5), 1.5], [at(7, 0), 2.5], [at(7, 1), 2.5]]));
    // Type b: truth = row 3, columns 2-5, all scored 1.2.
    await put(join(data, 'test/b/y.png'), png);
    await put(join(data, 'ground_truth/b/y_mask.png'), await mask([2, 3, 4, 5].map((c) => at(3, c))));
    await put(join(maps, 'b/y.npy'), map([2, 3, 4, 5].map((c) => [at(3, c), 1.2])));
    // A defect-free test image with one pixel at 2.2 and one at 1.1.
    await put(join(data, 'test/good/z.png'), png);
    await put(join(maps, 'good/z.npy'), map([[at(5, 5), 2.2], [at(1, 6), 1.1]]));
  });

  it('pooled, per-image and nominal metrics of the global thresholds and the oracle', async () => {
    const r = await runEval({
      gpu: await testGpu(),
      dataset: join(root, 'data'),
      source: mapsFolder(join(root, 'maps')),
      methods: ['thr_global_3sigma', 'thr_global_1sigma', 'max_nominal', 'oracle'],
      size: null,
      seed: 0,
    });
    const s = r.summary;
    expect(s.images).toEqual({ anomalous: 2, nominal: 1 });
    expect(r.report.run.calibration).toMatchObject({ globalMean: 0.5, globalStd: 0.5, maxScore: 1 });
    const close = (got: Record<string, number> | null, want: Record<string, number>) => {
      expect(got).not.toBeNull();
      for (const [k, v] of Object.entries(want)) expect(got![k], k).toBeCloseTo(v, 12);
    };
    // 3 sigma (score > 2): a: tp 4, fp 2, fn 2; b: nothing found (tp 0, fn 4); good: 1 pixel flagged.
    const t3 = s.methods.thr_global_3sigma;
    close(t3.pooled as never, { precision: 4 / 6, recall: 4 / 10, f1: 8 / 16, iou: 4 / 12 });
    close(t3.perImage as never, { precision: (4 / 6 + 0) / 2, recall: (4 / 6 + 0) / 2, f1: (8 / 12 + 0) / 2, iou: (4 / 8 + 0) / 2 });
    close(t3.nominal as never, { falsePositiveRate: 1 / 64, flaggedImages: 1 });
    close(s.perType.a.thr_global_3sigma.pooled as never, { precision: 4 / 6, recall: 4 / 6, f1: 8 / 12, iou: 4 / 8 });
    close(s.perType.b.thr_global_3sigma.pooled as never, { precision: 0, recall: 0, f1: 0, iou: 0 });
    expect(s.perType.a.thr_global_3sigma.nominal).toBeNull();
    expect(s.perType.good.thr_global_3sigma.pooled).toBeNull();
    close(s.perType.good.thr_global_3sigma.nominal as never, { falsePositiveRate: 1 / 64, flaggedImages: 1 });
    // 1 sigma (score > 1): a: tp 6, fp 2; b: tp 4; good: 2 pixels.
    const t1 = s.methods.thr_global_1sigma;
    close(t1.pooled as never, { precision: 10 / 12, recall: 1, f1: 20 / 22, iou: 10 / 12 });
    close(t1.perImage as never, { precision: (6 / 8 + 1) / 2, recall: 1, f1: (12 / 14 + 1) / 2, iou: (6 / 8 + 1) / 2 });
    close(t1.nominal as never, { falsePositiveRate: 2 / 64, flaggedImages: 1 });
    // max_nominal = 1: the same masks as 1 sigma here.
    expect(s.methods.max_nominal).toEqual(t1);
    // The oracle's best pooled F1 is everything above 0 (20/22), which it then applies to the good image too.
    expect(r.report.run.oracle!.threshold).toBe(0);
    close(s.methods.oracle.pooled as never, { f1: 20 / 22 });
    expect(r.report.run.oracle!.f1).toBeCloseTo(20 / 22, 12);
    close(s.methods.oracle.nominal as never, { falsePositiveRate: 2 / 64, flaggedImages: 1 });
    // Two of the goal checks need ttt: none are computed without it.
    expect(r.report.goals).toEqual([]);
    expect(r.report.imageResults.find((i) => i.id === 'test/a/x.png')!.methods.thr_global_3sigma).toEqual({ tp: 4, fp: 2, fn: 2, tn: 56 });
  });
});

describe('ttt eval on a synthetic dataset', () => {
  let full: Awaited<ReturnType<typeof evaluate>>;
  let out: string;
  beforeAll(async () => {
    out = join(dir, 'out');
    full = await evaluate({ out, command: 'ttt eval (test)' });
  });

  it('has the --json shape: every method overall and per type, image counts', () => {
    const s = full.summary;
    expect(Object.keys(s).sort()).toEqual(['images', 'methods', 'perType']);
    expect(s.images).toEqual({ anomalous: 6, nominal: 3 });
    expect(Object.keys(s.methods)).toEqual([...METHOD_NAMES]);
    expect(Object.keys(s.perType)).toEqual(['blob', 'good', 'mixed']);
    const metric = (m: unknown) => {
      expect(Object.keys(m as object).sort()).toEqual(['f1', 'iou', 'precision', 'recall']);
      for (const v of Object.values(m as object)) expect(v >= 0 && v <= 1, String(v)).toBe(true);
    };
    for (const m of METHOD_NAMES) {
      const x = s.methods[m];
      metric(x.pooled);
      metric(x.perImage);
      expect(Object.keys(x.nominal!).sort()).toEqual(['falsePositiveRate', 'flaggedImages']);
      // 3 defect-free images: the flagged share is a multiple of 1/3.
      expect(Math.round(x.nominal!.flaggedImages * 3)).toBeCloseTo(x.nominal!.flaggedImages * 3, 9);
      for (const t of ['blob', 'mixed']) {
        metric(s.perType[t][m].pooled);
        expect(s.perType[t][m].nominal).toBeNull();
      }
      expect(s.perType.good[m].pooled).toBeNull();
      expect(s.perType.good[m].nominal).toEqual(x.nominal);
    }
  });

  it('pools exactly the per-image confusion counts it records', () => {
    for (const m of METHOD_NAMES) {
      const c = full.report.imageResults.filter((r) => r.anomalous).map((r) => r.methods[m]!);
      const tp = c.reduce((a, x) => a + x.tp, 0);
      const fp = c.reduce((a, x) => a + x.fp, 0);
      const fn = c.reduce((a, x) => a + x.fn, 0);
      expect(full.summary.methods[m].pooled!.f1).toBeCloseTo((2 * tp) / (2 * tp + fp + fn), 12);
      for (const r of full.report.imageResults) {
        const x = r.methods[m]!;
        expect(x.tp + x.fp + x.fn + x.tn).toBe(W * H);
        expect(x.tp + x.fn).toBe(r.defectPixels);
      }
    }
  });

  it('the oracle bounds every global threshold, and its F1 is the one oracleThreshold found', () => {
    const f1 = (m: MethodName) => full.summary.methods[m].pooled!.f1;
    for (const m of ['thr_global_3sigma', 'thr_global_1sigma', 'max_nominal'] as const) expect(f1('oracle')).toBeGreaterThanOrEqual(f1(m));
    expect(f1('oracle')).toBeCloseTo(full.report.run.oracle!.f1, 12);
    // The synthetic maps separate defects well: the oracle is far above chance.
    expect(f1('oracle')).toBeGreaterThan(0.6);
  });

  it('ttt is segment() on the image and the score map as the service gets them', async () => {
    const gpu = await testGpu();
    const id = 'test/mixed/001.png';
    const image = await decodeImage(await readFile(join(synth.dataset, id)), id, { maxSide: 256 });
    const map = parseNpy(await readFile(join(synth.maps, 'mixed/001.npy')), 'map');
    const truth = await decodeMask(await readFile(join(synth.dataset, 'ground_truth/mixed/001_mask.png')), 'mask', image);
    // The service passes the detector's own map; segment resamples it to the image.
    const scoreMap = { data: map.data, width: map.shape[1], height: map.shape[0] };
    const calibrationMaps = [];
    for (const stem of ['000', '001', '002']) {
      const v = parseNpy(await readFile(join(synth.maps, `validation/good/${stem}.npy`)), 'v');
      const src = gpu.upload(v.data);
      const dst = resampleBilinear(gpu, src, 1, { width: v.shape[1], height: v.shape[0] }, image);
      calibrationMaps.push({ data: await gpu.readF32(dst, W * H), width: W, height: H });
      gpu.release(src, dst);
    }
    const calibration = calibrate(calibrationMaps);
    for (const [method, options] of [['ttt', resolveOptions({ seed: 0 })], ['ttt4as', ttt4asOptions(0)]] as const) {
      const r = await segment(gpu, { image, scoreMap, calibration }, options);
      const got = full.report.imageResults.find((x) => x.id === id)!.methods[method]!;
      expect({ ...got, emptyReason: undefined }).toEqual({ ...confusion(r.predMask, truth), emptyReason: undefined });
    }
  });

  it('ttt4as is the paper configuration; ttt the defaults with the gate on the calibration', () => {
    const o = full.report.run.options;
    expect(o.ttt4as).toMatchObject({
      'classifier.loss': 'squared_hinge',
      'pseudoLabels.anomalousPercentile': 99,
      'pseudoLabels.radius': 1,
      'pseudoLabels.nominalCount': 500,
      'pseudoLabels.nominalPercentile': 100,
      'gate.mode': 'off',
      'classifier.svmC': 0.001,
      'classifier.regularizeBias': true,
      'classifier.balanced': false,
      'features.extractor': TTT4AS_FEATURES.extractor,
      'features.layers': [...TTT4AS_FEATURES.layers],
    });
    expect(o.ttt4as!['pseudoLabels.seedFloor']).toBe('off');
    expect(o.ttt4as!['mask.scoreFloor']).toBe('off');
    // Every option is pinned, so that the project's defaults never leak into the paper's configuration.
    expect(Object.keys(ttt4asOverrides(0)).sort()).toEqual(OPTION_SPECS.map((spec) => spec.key).sort());
    expect(o.ttt).toEqual(flattenOptions(defaultOptions()));
    expect(o.ttt!['gate.mode']).not.toBe('off');
    // ttt4as trains on every image (no gate); ttt's gate stops some defect-free ones here.
    expect(full.report.diagnostics.ttt4as!.emptyReasons.gate).toBeUndefined();
    expect(full.report.diagnostics.ttt4as!.trained!.images).toBe(9);
    const tttGate = full.report.diagnostics.ttt!.emptyReasons.gate ?? 0;
    expect(full.report.diagnostics.ttt!.trained!.images + tttGate + (full.report.diagnostics.ttt!.emptyReasons['no pseudo-labels'] ?? 0)).toBe(9);
    expect(full.report.diagnostics.ttt!.trained!.nominalRows).toBe(500);
  });

  it('writes report.json, report.md and one contact sheet per type into --out', async () => {
    expect((await readdir(out)).sort()).toEqual(['contact-blob.png', 'contact-good.png', 'contact-mixed.png', 'report.json', 'report.md']);
    const json = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(json.methods).toEqual(JSON.parse(JSON.stringify(full.summary.methods)));
    expect(json.perType).toEqual(JSON.parse(JSON.stringify(full.summary.perType)));
    expect(json.run).toMatchObject({ command: 'ttt eval (test)', seed: 0, size: 256, dataset: synth.dataset, validation: { source: 'validation/good', images: 3 } });
    expect(json.run.scoreSource).toBe(`maps ${synth.maps}`);
    expect(json.run.timings.perImageMs.ttt).toBeGreaterThan(0);
    expect(json.goals.map((g: { goal: string }) => g.goal)).toEqual([
      'ttt pooled F1 >= 2 x the best thr_* (' + ['thr_global_3sigma', 'thr_global_1sigma', 'thr_pixel_3sigma'].sort((a, b) => full.summary.methods[b].pooled!.f1 - full.summary.methods[a].pooled!.f1)[0] + ')',
      'ttt pooled F1 >= ttt4as',
      'ttt pooled F1 >= oracle',
      'ttt flags no more defect-free images than thr_global_3sigma',
    ]);
    const md = await readFile(join(out, 'report.md'), 'utf8');
    expect(md).toContain('Command: `ttt eval (test)`');
    expect(md).toContain('## Goals');
    for (const h of ['## Overall', '## blob', '## mixed', '## good (defect-free)', '![contact-blob.png](contact-blob.png)']) expect(md).toContain(h);
    const f1 = full.summary.methods.ttt.pooled!.f1.toFixed(3);
    expect(md).toMatch(new RegExp(`\\| ttt \\| [0-9.]+ \\| [0-9.]+ \\| ${f1.replace('.', '\\.')} \\|`));
    // Columns image | score map | thr_global_3sigma | ttt | ground truth; 3 rows; 4-pixel gaps.
    for (const t of ['blob', 'good', 'mixed']) {
      const sheet = await decodeImage(await readFile(join(out, `contact-${t}.png`)), t);
      expect([sheet.width, sheet.height, sheet.channels]).toEqual([5 * W + 6 * 4, 3 * H + 4 * 4, 3]);
    }
    // The ground-truth cell of a blob row shows that image's mask.
    const sheet = await decodeImage(await readFile(join(out, 'contact-blob.png')), 'blob');
    const truth = await decodeMask(await readFile(join(synth.dataset, 'ground_truth/blob/000_mask.png')), 'm', { width: W, height: H });
    const n = sheet.width * sheet.height;
    let same = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const v = sheet.data[n + (4 + y) * sheet.width + 4 + 4 * (W + 4) + x] > 0.5 ? 1 : 0;
        if (v === truth[y * W + x]) same++;
      }
    expect(same).toBe(W * H);
  });

  it('the same seed gives the same numbers', async () => {
    const again = await evaluate();
    expect(again.summary).toEqual(full.summary);
    expect(again.report.imageResults).toEqual(full.report.imageResults);
  });

  it('--limit keeps at most N images per test type and per nominal set, drawn by the seed', async () => {
    const r = await evaluate({ limit: 2, methods: ['thr_global_3sigma', 'ttt'] });
    expect(r.summary.images).toEqual({ anomalous: 4, nominal: 2 });
    expect(r.report.run.validation.images).toBe(2);
    expect(r.report.run.available).toEqual({ train: 3, validation: 3, 'test/blob': 3, 'test/good': 3, 'test/mixed': 3 });
    const ids = r.report.imageResults.map((x) => x.id);
    expect(new Set(ids).size).toBe(6);
    // The images chosen keep their results: a subset of the full run's.
    for (const x of r.report.imageResults) {
      const f = full.report.imageResults.find((y) => y.id === x.id)!;
      expect(x.methods.thr_global_3sigma!.tp + x.methods.thr_global_3sigma!.fn).toBe(f.methods.thr_global_3sigma!.tp + f.methods.thr_global_3sigma!.fn);
    }
    const again = await evaluate({ limit: 2, methods: ['thr_global_3sigma', 'ttt'] });
    expect(again.report.imageResults.map((x) => x.id)).toEqual(ids);
  });
});

describe('dataset reader', () => {
  let split: { dataset: string; maps: string };
  beforeAll(async () => {
    split = await writeSyntheticDataset(join(dir, 'split'), { width: 32, count: 10, seed: 5, validation: false });
  });

  it('without validation/good, a seeded 20% of train/good is the validation set, disjoint from train', async () => {
    const ids = async (seed: number) => {
      const d = await openDataset(split.dataset, { seed });
      expect(d.validationSource).toBe('train/good split');
      expect(d.validation.length).toBe(2);
      expect(d.train.length).toBe(8);
      expect(new Set([...d.train, ...d.validation].map((x) => x.id)).size).toBe(10);
      for (const x of d.validation) expect(x.split).toBe('train');
      return d.validation.map((x) => x.id);
    };
    const first = await ids(1);
    expect(await ids(1)).toEqual(first);
    const others = await Promise.all([2, 3, 4, 5].map(ids));
    expect(others.some((o) => o.join() !== first.join())).toBe(true);
  });

  it('reads the maps of a split validation set from maps/train/good and evaluates', async () => {
    const r = await runEval({ gpu: await testGpu(), dataset: split.dataset, source: mapsFolder(split.maps), methods: ['thr_global_3sigma', 'oracle'], size: 256, seed: 1 });
    expect(r.report.run.validation).toEqual({ source: 'train/good split', images: 2 });
    expect(r.summary.images).toEqual({ anomalous: 20, nominal: 10 });
  });

  it('--size: images downscaled, masks nearest-neighbour to the same grid', async () => {
    const d = await openDataset(synth.dataset, { seed: 0 });
    const r = await evaluate({ size: 32, methods: ['thr_global_3sigma'] });
    for (const x of r.report.imageResults) expect([x.width, x.height]).toEqual([32, 24]);
    const item = d.test.find((x) => x.id === 'test/mixed/000.png')!;
    const truth = await decodeMask(await readFile(item.maskPath!), 'm', { width: W, height: H });
    const small = resampleNearest(truth, { width: W, height: H }, { width: 32, height: 24 });
    // 2x nearest-neighbour takes the pixel at (2x + 1, 2y + 1).
    for (let y = 0; y < 24; y++) for (let x = 0; x < 32; x++) expect(small[y * 32 + x]).toBe(truth[(2 * y + 1) * W + 2 * x + 1]);
    expect(r.report.imageResults.find((x) => x.id === item.id)!.defectPixels).toBe(small.reduce((a, v) => a + v, 0));
  });
});

describe('bad datasets fail with the file named', () => {
  const copy = async (name: string) => {
    const to = join(dir, name);
    await cp(join(dir, 'synth'), to, { recursive: true });
    return { dataset: join(to, 'dataset'), maps: join(to, 'maps') };
  };

  it('a missing ground-truth mask', async () => {
    const c = await copy('no-mask');
    await unlink(join(c.dataset, 'ground_truth/mixed/002_mask.png'));
    await expectError(evaluate({ dataset: c.dataset, maps: c.maps }), 'NOT_FOUND', /ground_truth\/mixed\/002_mask\.png: the ground-truth mask of test\/mixed\/002\.png does not exist/);
  });

  it('a missing score map, before any work', async () => {
    const c = await copy('no-map');
    await unlink(join(c.maps, 'blob/001.npy'));
    await expectError(evaluate({ dataset: c.dataset, maps: c.maps }), 'NOT_FOUND', /maps\/blob\/001\.npy: the score map of test\/blob\/001\.png does not exist/);
    await unlink(join(c.maps, 'validation/good/000.npy'));
    await expectError(evaluate({ dataset: c.dataset, maps: c.maps }), 'NOT_FOUND', /maps\/validation\/good\/000\.npy: the score map of validation\/good\/000\.png/);
  });

  it('a mask of another size than its image', async () => {
    const c = await copy('bad-mask');
    const path = join(c.dataset, 'ground_truth/blob/000_mask.png');
    await writeFile(path, await encodeMaskPng(new Uint8Array(W * W), W, W));
    await expectError(evaluate({ dataset: c.dataset, maps: c.maps }), 'SIZE_MISMATCH', new RegExp(`^${path}: the mask is 64x64 but the image is 64x48`));
  });

  it('a map of another aspect ratio than its image', async () => {
    const c = await copy('bad-map');
    const path = join(c.maps, 'good/002.npy');
    await writeFile(path, encodeNpy(new Float32Array(16 * 16).map((_, i) => i), [16, 16]));
    await expectError(evaluate({ dataset: c.dataset, maps: c.maps }), 'SIZE_MISMATCH', new RegExp(`^${path}: the score map \\(16x16\\) and the image \\(64x48\\) have different aspect ratios`));
  });

  it('no test folder; a missing dataset', async () => {
    const c = await copy('no-test');
    await rm(join(c.dataset, 'test'), { recursive: true });
    await expectError(evaluate({ dataset: c.dataset, maps: c.maps }), 'NOT_FOUND', /test: the dataset has no test folder/);
    await expectError(evaluate({ dataset: join(dir, 'nowhere') }), 'NOT_FOUND', /nowhere: the dataset folder does not exist/);
  });
});

describe('ttt eval CLI', () => {
  it('--json prints only the JSON object, equal to the in-process run', async () => {
    const methods: MethodName[] = ['thr_global_3sigma', 'otsu', 'oracle', 'ttt'];
    const r = await ttt('eval', '--dataset', synth.dataset, '--maps', synth.maps, '--methods', methods.join(','), '--json', '--set', 'classifier.epochs=20');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as EvalSummary;
    const inProcess = await evaluate({ methods, tttOverrides: { 'classifier.epochs': '20' } });
    expect(j).toEqual(JSON.parse(JSON.stringify(inProcess.summary)));
    // Not a TTY: progress as plain lines on stderr.
    expect(r.stderr).toMatch(/^eval: test 9\/9, done in/m);
    expect(r.stderr).not.toContain('\r');
  });

  it('prints tables per type and overall, with the goals', async () => {
    const r = await ttt('eval', '--dataset', synth.dataset, '--maps', synth.maps, '--methods', 'thr_global_3sigma,thr_global_1sigma,ttt', '--limit', '1');
    expect(r.code, r.stderr).toBe(0);
    for (const s of ['blob:', 'good:', 'mixed:', 'overall (2 anomalous, 1 defect-free', 'goals:']) expect(r.stdout).toContain(s);
    expect(r.stdout).toMatch(/^ttt\s+[0-9.]+\s+/m);
  });

  it('refuses built-in scorer options with --maps, an unknown method, a bad --set', async () => {
    const both = await ttt('eval', '--dataset', synth.dataset, '--maps', synth.maps, '--bank-images', '2');
    expect(both.code).toBe(2);
    expect(both.stderr.trim()).toMatch(/^ttt: --bank, --bank-images, --save-bank, --modality and --backbone belong to the built-in scorer/);
    const method = await ttt('eval', '--dataset', synth.dataset, '--maps', synth.maps, '--methods', 'ttt,nope');
    expect(method.code).toBe(2);
    expect(method.stderr).toMatch(/unknown method "nope" \(known: thr_global_3sigma, .*ttt, ttt_rgb, ttt_3d\) \[INVALID_OPTION\]/);
    const set = await ttt('eval', '--dataset', synth.dataset, '--maps', synth.maps, '--set', 'classifier.loss=squared');
    expect(set.code).toBe(2);
    expect(set.stderr).toMatch(/option classifier\.loss: expected one of hinge, logistic/);
  });
});

describe('progress reporter', () => {
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    return { chunks, out: { isTTY, columns: 200, write: (s: string) => chunks.push(s) } };
  };

  it('plain lines at each tenth with an ETA when not a terminal', () => {
    const s = sink(false);
    let t = 0;
    const bar = progressReporter(s.out, 'eval', () => t);
    for (let i = 0; i <= 20; i++) {
      t = i * 1000;
      bar.update({ phase: 'test', done: i, total: 20 });
    }
    bar.end();
    expect(s.chunks.length).toBe(11);
    expect(s.chunks[0]).toBe('eval: test 0/20, 0s elapsed, ETA ?\n');
    // 2 images in 2 s, 18 to go.
    expect(s.chunks[1]).toBe('eval: test 2/20, 2s elapsed, ETA 18s\n');
    expect(s.chunks.at(-1)).toBe('eval: test 20/20, done in 20s\n');
  });

  it('a redrawn bar on a terminal', () => {
    const s = sink(true);
    let t = 0;
    const bar = progressReporter(s.out, 'eval', () => t);
    bar.update({ phase: 'test', done: 0, total: 4 });
    t = 1000;
    bar.update({ phase: 'test', done: 1, total: 4, item: 'test/a/1.png' });
    t = 4000;
    bar.update({ phase: 'test', done: 4, total: 4 });
    bar.end();
    expect(s.chunks[1]).toBe('\r\x1b[Keval test [######..................] 1/4 25% ETA 3s test/a/1.png');
    expect(s.chunks[2]).toBe('\r\x1b[Keval test [########################] 4/4 100% in 4s');
    expect(s.chunks.at(-1)).toBe('\n');
  });

  it('cuts the bar to the terminal width, and ignores a width of 0', () => {
    for (const [columns, length] of [[40, 39], [0, 80]]) {
      const chunks: string[] = [];
      const bar = progressReporter({ isTTY: true, columns, write: (s: string) => chunks.push(s) }, 'eval', () => 0);
      bar.update({ phase: 'validation', done: 0, total: 10, item: 'validation/good/000.png' });
      expect(chunks[0].slice('\r\x1b[K'.length)).toHaveLength(length);
    }
  });
});

describe('the built-in scorer as a score source', () => {
  it('builds a PatchCore bank from train/good, scores every image, and saved maps reproduce the run', async () => {
    registerMobileNet();
    const gpu = await testGpu();
    const saved = join(dir, 'saved-maps');
    let bankPatches = 0;
    const base = { gpu, dataset: synth.dataset, methods: ['thr_global_3sigma', 'oracle', 'ttt'] as MethodName[], size: null, seed: 3, tttOverrides: {} };
    const source = savingMaps(patchcoreSource(gpu, { backbone: 'mobilenetv2', bankImages: 2, onBank: async (b) => void (bankPatches = b.header.patches) }), saved);
    const built = await runEval({ ...base, source });
    expect(bankPatches).toBeGreaterThan(0);
    expect(built.summary.images).toEqual({ anomalous: 6, nominal: 3 });
    // Every validation and test image got a map, in the --maps layout.
    expect((await readdir(join(saved, 'validation', 'good'))).length).toBe(3);
    expect((await readdir(join(saved, 'blob'))).length).toBe(3);
    const again = await runEval({ ...base, source: mapsFolder(saved) });
    expect(again.summary.methods).toEqual(built.summary.methods);
    expect(built.summary.methods.oracle.pooled!.f1).toBeGreaterThan(0);
  });
});
