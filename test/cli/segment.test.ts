// The real `ttt` CLI in a child process, on files written to a temp directory.

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calibrate, calibrationToJson } from '../../src/core/calibration.ts';
import { confusion, pixelMetrics } from '../../src/core/metrics.ts';
import { defaultOptions, resolveOptions } from '../../src/core/options.ts';
import { segment } from '../../src/core/pipeline.ts';
import { decodeImage, decodeMask, encodeImagePng } from '../../src/io/image.ts';
import { encodeNpy, parseNpy } from '../../src/io/npy.ts';
import { syntheticFeatures, syntheticSample } from '../../src/synthetic.ts';
import { agreement, testGpu } from '../helpers/gpu.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';
import { pointValidity } from '../../src/core/validity.ts';
import { decodePointCloud } from '../../src/io/pointcloud.ts';
import { synthetic3dSample } from '../../src/synthetic3d.ts';
import { type CliRun, runCli } from '../helpers/processes.ts';

// The default extractor is the pretrained network: provide its weights, as the CLI and server do.
registerMobileNet();


type Run = CliRun;

const ttt = (...args: string[]): Promise<Run> => runCli(args);

let dir: string;
const p = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ttt-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ttt synth + ttt segment', () => {
  it('synth writes a sample; segment --json reports it and writes a mask matching the report', async () => {
    const sample = p('sample');
    const s = await ttt('synth', '--out', sample, '--size', '128', '--seed', '5');
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toContain(join(sample, 'score.npy'));
    const image = await decodeImage(await readFile(join(sample, 'image.png')), 'image.png');
    expect([image.width, image.height, image.channels]).toEqual([128, 128, 1]);
    const map = parseNpy(await readFile(join(sample, 'score.npy')), 'score.npy');
    expect(map.shape).toEqual([128, 128]);
    const truth = await decodeMask(await readFile(join(sample, 'ground_truth.png')), 'gt.png', { width: 128, height: 128 });
    // The files hold exactly the synthetic sample of that seed.
    const expected = syntheticSample({ width: 128, height: 128, seed: 5 });
    expect(Array.from(map.data)).toEqual(Array.from(expected.scoreMap.data));
    expect(Array.from(truth)).toEqual(Array.from(expected.groundTruth));

    const mask = p('mask.png');
    const overlay = p('overlay.png');
    const r = await ttt('segment', '--image', join(sample, 'image.png'), '--score-map', join(sample, 'score.npy'), '--out', mask, '--overlay', overlay, '--json', '--set', 'seed=3', '--set', 'classifier.epochs=30');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.width).toBe(128);
    expect(j.height).toBe(128);
    expect(j.predLabel).toBe(true);
    expect(j.emptyReason).toBeNull();
    expect(j.predScore).toBeCloseTo(Math.max(...map.data), 5);
    expect(j.anomalyMap.max).toBe(j.predScore);
    expect(j.anomalyMap.min).toBeCloseTo(Math.min(...map.data), 5);
    expect(j.pseudoLabels.anomalous).toBeGreaterThan(0);
    expect(j.pseudoLabels.nominal).toBe(500);
    expect(j.classifier.epochs).toBeGreaterThan(0);
    expect(j.classifier.epochs).toBeLessThanOrEqual(30);
    expect(Number.isFinite(j.classifier.loss)).toBe(true);
    expect(j.featureChannels).toBeGreaterThan(1);
    // The feature set, readable in the report (options doc: features.extractor).
    expect(j.features).toEqual({ extractor: defaultOptions().features.extractor });
    expect(j.gate).toBeNull();
    for (const stage of ['upload', 'stats', 'pseudoLabels', 'features', 'classifier', 'predict', 'regions']) expect(j.timings[stage]).toBeGreaterThanOrEqual(0);
    expect(j.outputs).toEqual({ mask, overlay });

    const predicted = await decodeMask(await readFile(mask), 'mask.png', { width: 128, height: 128 });
    const defects = predicted.reduce((a, v) => a + v, 0);
    expect(defects / (128 * 128)).toBeCloseTo(j.defectFraction, 10);
    expect(j.regions.reduce((a: number, g: { area: number }) => a + g.area, 0)).toBe(defects);
    // The CLI computes what the library computes on the same decoded files, with the same options.
    const inProcess = await segment(await testGpu(), { image, scoreMap: { data: map.data, width: 128, height: 128 } }, resolveOptions({ seed: 3, 'classifier.epochs': 30 }));
    expect(j.pseudoLabels).toEqual(inProcess.pseudoLabels);
    expect(j.classifier.epochs).toBe(inProcess.classifier!.epochs);
    expect(agreement(predicted, inProcess.predMask)).toBeGreaterThanOrEqual(0.999);
    // The mask lands on the defects (a transposed or flipped decode would not): defects cover under 1% of
    // this image, so a precision of 0.5 is over 50 times chance. Measured: precision 1.00, recall 0.39, F1
    // 0.56 (the peak floor keeps the top of the blob's peak and of the fainter scratch's; without it
    // precision 0.19, recall 1.00, F1 0.33).
    const m = pixelMetrics(confusion(predicted, truth));
    expect(truth.reduce((a, v) => a + v, 0) / truth.length).toBeLessThan(0.01);
    expect(m.precision).toBeGreaterThan(0.5);
    expect(m.f1).toBeGreaterThan(0.5);
    const ov = await decodeImage(await readFile(overlay), 'overlay.png');
    expect([ov.width, ov.height, ov.channels]).toEqual([128, 128, 3]);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('--size downsizes a colour image; a coarser map is resampled; the mask is at the working resolution', async () => {
    const s = syntheticSample({ width: 160, height: 96, seed: 2, colour: true, mapStride: 8 });
    await writeFile(p('c.png'), await encodeImagePng(s.image));
    await writeFile(p('c.npy'), encodeNpy(s.scoreMap.data, [s.scoreMap.height, s.scoreMap.width]));
    const r = await ttt('segment', '--image', p('c.png'), '--score-map', p('c.npy'), '--size', '80', '--out', p('c-mask.png'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^image 80x48 \(colour\), score map 20x12/);
    expect(r.stdout).toMatch(/mask: [0-9.]+% defective in \d+ regions?/);
    const mask = await decodeMask(await readFile(p('c-mask.png')), 'c-mask.png', { width: 80, height: 48 });
    expect(mask.length).toBe(80 * 48);
  });

  it('--features: supplied C x h x w maps replace the filterbank; features of another aspect are refused by name', async () => {
    const s = syntheticSample({ width: 96, height: 64, seed: 6 });
    const f = syntheticFeatures(s, 12, 4);
    await writeFile(p('f.png'), await encodeImagePng(s.image));
    await writeFile(p('f-map.npy'), encodeNpy(s.scoreMap.data, [64, 96]));
    await writeFile(p('f.npy'), encodeNpy(f.data, [12, f.height, f.width]));
    const r = await ttt('segment', '--image', p('f.png'), '--score-map', p('f-map.npy'), '--features', p('f.npy'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.featureChannels).toBe(12);
    expect(j.features).toEqual({ extractor: 'supplied' });
    expect(j.classifier.epochs).toBeGreaterThan(0);
    // Where each stage ran, for every timed stage; --set compute.stages=host puts them all on the host.
    expect(Object.keys(j.placement).sort()).toEqual(Object.keys(j.timings).sort());
    const host = await ttt('segment', '--image', p('f.png'), '--score-map', p('f-map.npy'), '--features', p('f.npy'), '--json', '--set', 'compute.stages=host');
    expect(host.code, host.stderr).toBe(0);
    const hj = JSON.parse(host.stdout);
    expect(hj.placement).toEqual({ upload: 'host', stats: 'host', pseudoLabels: 'host', features: 'host', gather: 'host', classifier: 'host', predict: 'host', regions: 'host' });
    expect(hj.pseudoLabels).toEqual(j.pseudoLabels);
    await writeFile(p('f-square.npy'), encodeNpy(new Float32Array(12 * 16 * 16), [12, 16, 16]));
    const bad = await ttt('segment', '--image', p('f.png'), '--score-map', p('f-map.npy'), '--features', p('f-square.npy'), '--out', p('f-out.png'));
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe(`ttt: ${p('f-square.npy')}: the feature maps (16x16) and the image (96x64) have different aspect ratios [SIZE_MISMATCH]`);
    expect(await readdir(dir)).not.toContain('f-out.png');
  });

  it('no nominal pseudo-labels possible: empty mask, the reason said, exit 0', async () => {
    // One peak in a 12x12 map, dilated by 16 pixels, covers every pixel: nothing is left to be nominal.
    const s = syntheticSample({ width: 12, height: 12, seed: 1, defects: 1 });
    await writeFile(p('t.png'), await encodeImagePng(s.image));
    await writeFile(p('t.npy'), encodeNpy(s.scoreMap.data, [12, 12]));
    const r = await ttt('segment', '--image', p('t.png'), '--score-map', p('t.npy'), '--set', 'pseudoLabels.radius=16', '--out', p('t-mask.png'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.predLabel).toBe(false);
    expect(j.defectFraction).toBe(0);
    expect(j.classifier).toBeNull();
    expect(j.pseudoLabels).toEqual({ anomalous: 144, nominal: 0, eligible: 0 });
    expect(j.emptyReason).toMatch(/no nominal pseudo-labels/);
    const mask = await decodeMask(await readFile(p('t-mask.png')), 't-mask.png', { width: 12, height: 12 });
    expect(mask.every((v) => v === 0)).toBe(true);
  });

  it('--calibration: an image below the nominal gate gets an empty mask with the gate as the reason', async () => {
    const s = syntheticSample({ width: 64, height: 64, seed: 8 });
    await writeFile(p('g.png'), await encodeImagePng(s.image));
    await writeFile(p('g.npy'), encodeNpy(s.scoreMap.data, [64, 64]));
    // Nominal maps that score higher than this image: the gate (mode max) must stop it.
    const nominal = [1, 2, 3].map((seed) => {
      const n = syntheticSample({ width: 64, height: 64, seed, defects: 0 }).scoreMap;
      return { ...n, data: n.data.map((v) => v * 10) };
    });
    await writeFile(p('cal.json'), JSON.stringify(calibrationToJson(calibrate(nominal))));
    const r = await ttt('segment', '--image', p('g.png'), '--score-map', p('g.npy'), '--calibration', p('cal.json'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.gate.anomalous).toBe(false);
    expect(j.gate.threshold).toBeGreaterThan(j.gate.imageScore);
    expect(j.emptyReason).toMatch(/image-level gate/);
    expect(j.predLabel).toBe(false);
    const summary = await ttt('segment', '--image', p('g.png'), '--score-map', p('g.npy'), '--calibration', p('cal.json'));
    expect(summary.stdout).toMatch(/gate: image score .* -> nominal/);
    expect(summary.stdout).toMatch(/mask: empty \(image-level gate/);
  });
});

describe.concurrent('ttt segment: bad input -> one error line naming the file, exit 2, no output', () => {
  const W = 48;
  const H = 32;
  const sample = syntheticSample({ width: W, height: H, seed: 4 });
  let image: string;
  beforeAll(async () => {
    image = p('bad-image.png');
    await writeFile(image, await encodeImagePng(sample.image));
    await writeFile(p('noise.png'), Uint8Array.from({ length: 500 }, (_, i) => (i * 91 + 7) % 256));
    const zero = Buffer.from(await encodeImagePng(sample.image));
    zero.writeUInt32BE(0, 20); // IHDR height
    await writeFile(p('zero.png'), zero);
  });

  const cases: { name: string; map?: () => Uint8Array; args?: (image: string, map: string) => string[]; code: string; subject: 'map' | 'image' | 'out'; re: RegExp }[] = [
    {
      name: 'NaN in the .npy map',
      map: () => {
        const d = Float32Array.from(sample.scoreMap.data);
        d[5 * W + 7] = NaN;
        return encodeNpy(d, [H, W]);
      },
      code: 'NON_FINITE',
      subject: 'map',
      re: /the score map contains NaN at row 5, column 7/,
    },
    {
      name: 'Inf in the .npy map',
      map: () => {
        const d = Float32Array.from(sample.scoreMap.data);
        d[2] = -Infinity;
        return encodeNpy(d, [H, W]);
      },
      code: 'NON_FINITE',
      subject: 'map',
      re: /contains -Infinity at row 0, column 2/,
    },
    { name: 'constant map', map: () => encodeNpy(new Float32Array(W * H).fill(0.3), [H, W]), code: 'CONSTANT_MAP', subject: 'map', re: /constant/ },
    { name: 'empty map', map: () => encodeNpy(new Float32Array(0), [0, W]), code: 'INVALID_INPUT', subject: 'map', re: /zero or invalid size/ },
    { name: 'aspect ratio mismatch', map: () => encodeNpy(new Float32Array(20 * 20).map((_, i) => i), [20, 20]), code: 'SIZE_MISMATCH', subject: 'map', re: /\(20x20\) and the image \(48x32\) have different aspect ratios/ },
    {
      name: 'truncated .npy',
      map: () => {
        const b = encodeNpy(sample.scoreMap.data, [H, W]);
        return b.subarray(0, b.length - 100);
      },
      code: 'INVALID_INPUT',
      subject: 'map',
      re: /truncated: expected 6144 bytes of data for shape \(32, 48\) <f4, got 6044/,
    },
    { name: 'random bytes named .npy', map: () => Uint8Array.from({ length: 300 }, (_, i) => (i * 37) % 256), code: 'UNSUPPORTED_FORMAT', subject: 'map', re: /unrecognised content/ },
    {
      name: 'missing score map file',
      args: (image) => ['--image', image, '--score-map', p('does-not-exist.npy')],
      code: 'NOT_FOUND',
      subject: 'map',
      re: /no such file/,
    },
    {
      name: 'random bytes named .png as the image',
      args: (_image, map) => ['--image', p('noise.png'), '--score-map', map],
      code: 'UNSUPPORTED_FORMAT',
      subject: 'image',
      re: /the image must be PNG, JPEG or TIFF/,
    },
    {
      name: 'zero-size PNG image',
      args: (_image, map) => ['--image', p('zero.png'), '--score-map', map],
      code: 'INVALID_INPUT',
      subject: 'image',
      re: /zero size/,
    },
    {
      name: 'output directory missing',
      args: (image, map) => ['--image', image, '--score-map', map, '--out', p('nowhere/mask.png')],
      code: 'NOT_FOUND',
      subject: 'out',
      re: /output directory .* does not exist/,
    },
  ];

  for (const [k, c] of cases.entries()) {
    it(c.name, async () => {
      const map = p(`bad-${k}.npy`);
      await writeFile(map, c.map ? c.map() : encodeNpy(sample.scoreMap.data, [H, W]));
      const out = p(`out-${k}.png`);
      const overlay = p(`overlay-${k}.png`);
      const args = c.args ? [...c.args(image, map), '--out', c.subject === 'out' ? p('nowhere/mask.png') : out] : ['--image', image, '--score-map', map, '--out', out];
      const r = await ttt('segment', ...args, '--overlay', overlay);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      const subject = c.subject === 'map' ? (c.args ? p('does-not-exist.npy') : map) : c.subject === 'image' ? args[1] : p('nowhere/mask.png');
      const line = r.stderr.trim();
      expect(line.split('\n'), r.stderr).toHaveLength(1);
      expect(line.startsWith(`ttt: ${subject}: `), line).toBe(true);
      expect(line).toMatch(c.re);
      expect(line.endsWith(`[${c.code}]`), line).toBe(true);
      const left = await readdir(dir);
      expect(left).not.toContain(`out-${k}.png`);
      expect(left).not.toContain(`overlay-${k}.png`);
      expect(left.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    });
  }

  it('missing required options -> one line, INVALID_OPTION, exit 2', async () => {
    const r = await ttt('segment', '--image', image);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('ttt: --image and --score-map are required (see ttt segment --help) [INVALID_OPTION]');
  });

  it('a bad --set option -> INVALID_OPTION, exit 2', async () => {
    await writeFile(p('opt.npy'), encodeNpy(sample.scoreMap.data, [H, W]));
    const r = await ttt('segment', '--image', image, '--score-map', p('opt.npy'), '--set', 'classifier.epochs=0', '--out', p('opt-out.png'));
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('ttt: option classifier.epochs: 0 is outside [1, 10000] [INVALID_OPTION]');
    expect(await readdir(dir)).not.toContain('opt-out.png');
  });
});

describe('ttt synth --3d + ttt segment --point-cloud', () => {
  it('segments with the point cloud: 3-D features join the image features, holes stay out of the mask', async () => {
    const out = p('s3');
    const s = await ttt('synth', '--3d', '--out', out, '--size', '96', '--seed', '4');
    expect(s.code, s.stderr).toBe(0);
    const expected = synthetic3dSample({ width: 96, height: 72, seed: 4, defects: 2 });
    const cloud = decodePointCloud(await readFile(join(out, 'xyz.tiff')), 'xyz.tiff');
    expect(Array.from(cloud.data)).toEqual(Array.from(expected.pointCloud.data));
    const mask = join(out, 'mask.png');
    const r = await ttt('segment', '--image', join(out, 'image.png'), '--score-map', join(out, 'score.npy'), '--point-cloud', join(out, 'xyz.tiff'), '--set', 'features.extractor=filterbank', '--set', 'mask.peakFraction=0', '--out', mask, '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    const valid = pointValidity(expected.pointCloud);
    expect(j.modality).toBe('both');
    expect(j.pointCloud).toEqual({ width: 96, height: 72, validPoints: valid.reduce((a, b) => a + b, 0) });
    expect(j.featureChannels).toBe(3 + 11 * 3 + 13);
    const predicted = await decodeMask(await readFile(mask), 'mask.png', { width: 96, height: 72 });
    for (let i = 0; i < valid.length; i++) if (!valid[i]) expect(predicted[i]).toBe(0);
    expect(pixelMetrics(confusion(predicted, expected.groundTruth)).f1).toBeGreaterThan(0.4);

    // The same files without the point cloud: the image alone does not show the dents (the features' own
    // masks: without the peak floor, which trims any mask to the map's peaks).
    const rgb = await ttt('segment', '--image', join(out, 'image.png'), '--score-map', join(out, 'score.npy'), '--set', 'features.extractor=filterbank', '--set', 'mask.peakFraction=0', '--out', join(out, 'rgb.png'));
    expect(rgb.code, rgb.stderr).toBe(0);
    const rgbMask = await decodeMask(await readFile(join(out, 'rgb.png')), 'rgb.png', { width: 96, height: 72 });
    expect(pixelMetrics(confusion(rgbMask, expected.groundTruth)).f1).toBeLessThan(pixelMetrics(confusion(predicted, expected.groundTruth)).f1 - 0.2);
  });

  it('bad point clouds: one line naming the file, exit 2, no output', async () => {
    const out = p('s3bad');
    await ttt('synth', '--3d', '--out', out, '--size', '64', '--seed', '1');
    const args = ['--image', join(out, 'image.png'), '--score-map', join(out, 'score.npy'), '--out', join(out, 'never.png')];
    const png = await ttt('segment', ...args, '--point-cloud', join(out, 'image.png'));
    expect(png.code).toBe(2);
    expect(png.stderr.trim()).toBe(`ttt: ${join(out, 'image.png')}: the point cloud must be .npy or TIFF, but the file is PNG [UNSUPPORTED_FORMAT]`);
    await writeFile(join(out, 'square.npy'), encodeNpy(new Float32Array(8 * 8 * 3).fill(1), [8, 8, 3]));
    const square = await ttt('segment', ...args, '--point-cloud', join(out, 'square.npy'));
    expect(square.code).toBe(2);
    expect(square.stderr.trim()).toBe(`ttt: ${join(out, 'square.npy')}: the point cloud (8x8) and the image (64x48) have different aspect ratios [SIZE_MISMATCH]`);
    const none = await ttt('segment', ...args, '--set', 'features.modality=3d');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('features.modality=3d needs a point cloud, and none was given [INVALID_INPUT]');
    expect(await readdir(out)).not.toContain('never.png');
  });
});
