// `ttt eval` on a synthetic dataset in the MVTec 3D-AD layout: parts whose dents and bumps do not show in
// the image, their point clouds and a multimodal detector's maps. The 3-D features must find what the image
// features miss, holes must stay out of every count, and the layout's errors are typed.

import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pointValidity, resampleValidity } from '../../src/core/validity.ts';
import { openDataset, loadImage, loadPointCloud } from '../../src/eval/dataset.ts';
import { ALL_METHOD_NAMES } from '../../src/eval/methods.ts';
import { runEval, type EvalResult } from '../../src/eval/run.ts';
import { mapsFolder, patchcoreSource } from '../../src/eval/scoreSource.ts';
import { writeSynthetic3dDataset, writeSyntheticDataset } from '../../src/eval/syntheticDataset.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';
import { registerResnet50 } from '../../src/models/resnet50.ts';
import { testGpu } from '../helpers/gpu.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const MAIN = join(ROOT, 'src/cli/main.ts');

let dir: string;
let synth: { dataset: string; maps: string };
let result: EvalResult;
// The features' own masks: without the peak floor (mask.peakFraction), which trims any mask to the map's peaks.
const FILTERBANK = { 'features.extractor': 'filterbank', 'mask.peakFraction': 0 };

beforeAll(async () => {
  // ttt4as's features are the ResNet-50's, as the CLI and server provide them.
  registerResnet50();
  dir = await mkdtemp(join(tmpdir(), 'ttt-eval3d-'));
  synth = await writeSynthetic3dDataset(join(dir, 'synth3d'), { width: 96, count: 3, seed: 5 });
  result = await runEval({ gpu: await testGpu(), dataset: synth.dataset, source: mapsFolder(synth.maps), size: null, seed: 0, tttOverrides: FILTERBANK });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ttt eval on the MVTec 3D-AD layout', () => {
  it('reads rgb, xyz and gt of every split', async () => {
    const d = await openDataset(synth.dataset, { seed: 0 });
    expect(d.layout).toBe('mvtec3d');
    expect(d.types).toEqual(['dent', 'dent_and_bump', 'good']);
    expect(d.validationSource).toBe('validation/good');
    expect(d.test.map((i) => i.id).slice(0, 2)).toEqual(['test/dent/rgb/000.png', 'test/dent/rgb/001.png']);
    const first = d.test[0];
    expect(first.maskPath).toBe(join(synth.dataset, 'test/dent/gt/000.png'));
    expect(first.pointCloudPath).toBe(join(synth.dataset, 'test/dent/xyz/000.tiff'));
    expect(d.validation[0].pointCloudPath).toBe(join(synth.dataset, 'validation/good/xyz/000.tiff'));
    const cloud = await loadPointCloud(first);
    expect([cloud!.width, cloud!.height]).toEqual([96, 72]);
  });

  it('reports RGB-only, 3-D-only and combined test-time training: the 3-D features find dents the image does not show', () => {
    const m = result.summary.methods;
    expect(Object.keys(m)).toEqual([...ALL_METHOD_NAMES]);
    expect(result.report.run.layout).toBe('mvtec3d');
    expect(result.report.run.options.ttt_rgb?.['features.modality']).toBe('rgb');
    expect(result.report.run.options.ttt_3d?.['features.modality']).toBe('3d');
    expect(result.report.run.options.ttt?.['features.modality']).toBe('auto');
    const f1 = (k: string) => m[k as keyof typeof m]!.pooled!.f1;
    // Measured: ttt 0.60, ttt_3d 0.52, ttt_rgb 0.30 (pooled F1 over the 6 anomalous parts).
    expect(f1('ttt_rgb')).toBeLessThan(0.4);
    expect(f1('ttt_3d')).toBeGreaterThan(f1('ttt_rgb') + 0.15);
    expect(f1('ttt')).toBeGreaterThan(f1('ttt_rgb') + 0.2);
    expect(f1('ttt')).toBeGreaterThan(f1('thr_global_3sigma'));
    // The gate (calibrated on the validation parts) keeps the defect-free parts clean.
    for (const k of ['ttt', 'ttt_rgb', 'ttt_3d']) expect(m[k as keyof typeof m]!.nominal!.flaggedImages).toBe(0);
  });

  it('pixels without a valid point are in no count, for every method', async () => {
    const d = await openDataset(synth.dataset, { seed: 0 });
    for (const r of result.report.imageResults) {
      const item = d.test.find((i) => i.id === r.id)!;
      const { image } = await loadImage(item, undefined);
      const cloud = (await loadPointCloud(item))!;
      const valid = resampleValidity(pointValidity(cloud), cloud, image);
      const count = valid.reduce((a, b) => a + b, 0);
      expect(count).toBeLessThan(0.9 * valid.length);
      for (const c of Object.values(r.methods)) expect(c!.tp + c!.fp + c!.fn + c!.tn).toBe(count);
    }
  });

  it('a smaller working size resamples the point clouds with the images', async () => {
    const r = await runEval({ gpu: await testGpu(), dataset: synth.dataset, source: mapsFolder(synth.maps), methods: ['ttt_rgb', 'ttt'], size: 48, seed: 0, tttOverrides: FILTERBANK });
    expect(r.report.imageResults[0].width).toBe(48);
    expect(r.summary.methods.ttt!.pooled!.f1).toBeGreaterThan(r.summary.methods.ttt_rgb!.pooled!.f1);
  });

  it('the built-in scorer without --maps: its bank of image and 3-D features finds the dents, one of image features alone does not', async () => {
    registerMobileNet();
    const run = async (modality: 'rgb' | 'both') => {
      const source = patchcoreSource(await testGpu(), { modality, backbone: 'mobilenetv2' });
      const r = await runEval({ gpu: await testGpu(), dataset: synth.dataset, source, methods: ['oracle', 'ttt_rgb', 'ttt'], size: null, seed: 0, tttOverrides: FILTERBANK });
      expect(r.report.run.scoreSource).toContain(`"modality":"${modality}"`);
      return r.summary.methods;
    };
    const rgb = await run('rgb');
    const both = await run('both');
    // Measured (pooled F1): rgb bank oracle 0.07, ttt 0.01; image + 3-D bank oracle 0.85, ttt 0.57, ttt_rgb 0.33.
    expect(rgb.oracle!.pooled!.f1).toBeLessThan(0.2);
    expect(both.oracle!.pooled!.f1).toBeGreaterThan(0.7);
    expect(both.ttt!.pooled!.f1).toBeGreaterThan(0.45);
    expect(both.ttt!.pooled!.f1).toBeGreaterThan(rgb.ttt!.pooled!.f1 + 0.4);
    expect(both.ttt!.pooled!.f1).toBeGreaterThan(both.ttt_rgb!.pooled!.f1);
  });

  it('errors: a missing point cloud, ttt_3d without point clouds', async () => {
    const copy = join(dir, 'copy');
    await cp(synth.dataset, copy, { recursive: true });
    await unlink(join(copy, 'test/dent/xyz/001.tiff'));
    await expect(openDataset(copy, { seed: 0 })).rejects.toMatchObject({ code: 'NOT_FOUND', message: `${join(copy, 'test/dent/xyz/001')}.tiff: the point cloud of test/dent/rgb/001.png does not exist (looked for ${['.tiff', '.tif', '.npy'].map((e) => join(copy, 'test/dent/xyz/001') + e).join(', ')})` });
    const flat = await writeSyntheticDataset(join(dir, 'flat'), { width: 32, count: 2 });
    await expect(runEval({ gpu: await testGpu(), dataset: flat.dataset, source: mapsFolder(flat.maps), methods: ['ttt_3d'], size: null, seed: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: 'ttt_3d need point clouds: a dataset in the MVTec 3D-AD layout (<split>/<type>/{rgb,xyz,gt}/)',
    });
  });

  it('the CLI prints the same summary', async () => {
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(TSX, [MAIN, 'eval', '--dataset', synth.dataset, '--maps', synth.maps, '--size', '0', '--set', 'features.extractor=filterbank', '--set', 'mask.peakFraction=0', '--json'], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(JSON.stringify(result.summary)));
  });
});
