// `ttt eval --shift`: the spec's parsing, the shift's values by hand, that only the test images are
// shifted (the bank and the calibration are those of the unshifted run), the over-marking check, the
// report's two tables, and the CLI's refusals.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TttError } from '../../src/core/errors.ts';
import { encodeBank } from '../../src/core/patchcore/bank.ts';
import type { ImageTensor } from '../../src/core/types.ts';
import { loadImage, openDataset, testHalf, type DatasetImage } from '../../src/eval/dataset.ts';
import type { MethodName } from '../../src/eval/methods.ts';
import { OVER_MARKING, overMarkedImages, type ImageResult } from '../../src/eval/report.ts';
import { runEval, type EvalOptions } from '../../src/eval/run.ts';
import { mapsFolder, patchcoreSource, type ScoreSource } from '../../src/eval/scoreSource.ts';
import { NO_SHIFT, applyShift, formatShift, parseShift } from '../../src/eval/shift.ts';
import { writeSyntheticDataset } from '../../src/eval/syntheticDataset.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';
import { maxAbsDiff, testGpu } from '../helpers/gpu.ts';
import { runCli } from '../helpers/processes.ts';

registerMobileNet();


const ttt = (...args: string[]) => runCli(args);

function refused(spec: string, re: RegExp): void {
  let err: unknown;
  try {
    parseShift(spec);
  } catch (e) {
    err = e;
  }
  expect(err, spec).toBeInstanceOf(TttError);
  expect((err as TttError).code).toBe('INVALID_OPTION');
  expect((err as Error).message).toMatch(re);
}

describe('--shift SPEC', () => {
  it('parses the keys given and leaves the others neutral', () => {
    expect(parseShift('brightness=0.8,contrast=1.2')).toEqual({ ...NO_SHIFT, brightness: 0.8, contrast: 1.2 });
    expect(parseShift(' gamma = 2 , offset=-0.1,pivot=mean,gradient=0.3,angle=90')).toEqual({
      ...NO_SHIFT,
      gamma: 2,
      offset: -0.1,
      pivot: 'mean',
      gradient: 0.3,
      angle: 90,
    });
    expect(formatShift(parseShift('contrast=1.2,brightness=0.8'))).toBe('brightness=0.8,contrast=1.2');
    expect(formatShift(NO_SHIFT)).toBe('none');
  });

  it('refuses unknown keys, repeats, non-numbers and values out of range, naming the key', () => {
    refused('brightnes=0.8', /unknown key "brightnes" \(known: brightness, contrast/);
    refused('brightness=0.8,brightness=0.9', /"brightness" is given twice/);
    refused('contrast=NaN', /contrast must be a finite number, got "NaN"/);
    refused('offset=', /offset must be a finite number/);
    refused('gamma=abc', /gamma must be a finite number/);
    refused('brightness=0', /brightness must be in \(0, 4\], got 0/);
    refused('contrast=5', /contrast must be in \[0, 4\], got 5/);
    refused('gamma=0.05', /gamma must be in \[0.1, 10\]/);
    refused('offset=-2', /offset must be in \[-1, 1\]/);
    refused('gradient=Infinity', /gradient must be a finite number/);
    refused('pivot=median', /pivot must be grey or mean/);
    refused('', /expects key=value/);
    refused('brightness=0.8,', /expects key=value/);
    refused('brightness', /expected key=value, got "brightness"/);
  });
});

describe('applyShift', () => {
  const image: ImageTensor = { data: new Float32Array([0, 0.25, 0.5, 1, 0.1, 0.9]), width: 3, height: 2, channels: 1 };
  const close = (a: ArrayLike<number>, b: number[]) => expect(maxAbsDiff(a, b)).toBeLessThan(1e-6);

  it('brightness and contrast about mid-grey, clamped to [0, 1]', () => {
    // v -> 0.5 + 1.2 (0.8 v - 0.5) = 0.96 v - 0.1
    const out = applyShift(image, parseShift('brightness=0.8,contrast=1.2'));
    close(out.data, [0, 0.14, 0.38, 0.86, 0, 0.764]);
    expect(out).toMatchObject({ width: 3, height: 2, channels: 1 });
    // The input is left as it was.
    close(image.data, [0, 0.25, 0.5, 1, 0.1, 0.9]);
  });

  it('contrast about the image mean, offset, gamma', () => {
    const mean = (0 + 0.25 + 0.5 + 1 + 0.1 + 0.9) / 6;
    const out = applyShift(image, parseShift('contrast=2,pivot=mean'));
    close(out.data, [...image.data].map((v) => Math.min(1, Math.max(0, mean + 2 * (v - mean)))));
    close(applyShift(image, parseShift('offset=0.2,gamma=2')).data, [0.04, 0.2025, 0.49, 1, 0.09, 1]);
  });

  it('a gradient runs the gain from 1 - g to 1 + g along its direction, every channel alike', () => {
    const flat: ImageTensor = { data: new Float32Array(2 * 3 * 5).fill(0.5), width: 5, height: 3, channels: 2 as 1 };
    const lr = applyShift(flat, parseShift('gradient=0.4'));
    // Left to right: columns at gains 0.6, 0.8, 1, 1.2, 1.4, every row and channel.
    for (let c = 0; c < 2; c++) for (let y = 0; y < 3; y++) close(lr.data.subarray(c * 15 + y * 5, c * 15 + y * 5 + 5), [0.3, 0.4, 0.5, 0.6, 0.7]);
    const tb = applyShift(flat, parseShift('gradient=0.4,angle=90'));
    close([tb.data[0], tb.data[5], tb.data[10]], [0.3, 0.5, 0.7]);
  });
});

describe('over-marked images', () => {
  const r = (id: string, defectPixels: number, c: { tp: number; fp: number; fn: number; tn: number }): ImageResult => ({
    id,
    type: defectPixels ? 'crack' : 'good',
    anomalous: defectPixels > 0,
    width: 10,
    height: 10,
    defectPixels,
    methods: { ttt: c },
  });
  it(`flags a mask over ${OVER_MARKING.marked} of an image whose defects cover under ${OVER_MARKING.truth}, defect-free images included`, () => {
    const flagged = overMarkedImages([
      r('small defect, 60% marked', 4, { tp: 4, fp: 56, fn: 0, tn: 40 }),
      r('small defect, 50% marked', 4, { tp: 4, fp: 46, fn: 0, tn: 50 }),
      r('large defect, 90% marked', 30, { tp: 30, fp: 60, fn: 0, tn: 10 }),
      r('defect-free, 51% marked', 0, { tp: 0, fp: 51, fn: 0, tn: 49 }),
    ]);
    expect(flagged.map((f) => [f.id, f.marked, f.defectShare])).toEqual([
      ['small defect, 60% marked', 0.6, 0.04],
      ['defect-free, 51% marked', 0.51, 0],
    ]);
  });
});

describe('ttt eval with a shift on a synthetic dataset', () => {
  let dir: string;
  let synth: { dataset: string; maps: string };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ttt-shift-'));
    synth = await writeSyntheticDataset(join(dir, 'synth'), { width: 64, count: 3, mapStride: 2, seed: 5 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The built-in scorer, recording every image it is given (split, id, data). */
  function recording(source: ScoreSource, log: { item: DatasetImage; image: ImageTensor }[]): ScoreSource {
    return {
      get name() {
        return source.name;
      },
      prepare: source.prepare?.bind(source),
      async score(item, image, cloud) {
        log.push({ item, image });
        return source.score(item, image, cloud);
      },
    };
  }

  it('shifts the test images only: the same bank, calibration and plain results as without the shift', async () => {
    const gpu = await testGpu();
    const shift = parseShift('brightness=0.8,contrast=1.2');
    const methods: MethodName[] = ['thr_global_3sigma', 'thr_pixel_3sigma', 'otsu', 'oracle', 'ttt'];
    const base: EvalOptions = { gpu, dataset: synth.dataset, source: null as unknown as ScoreSource, methods, size: null, seed: 2, tttOverrides: { 'classifier.epochs': '20' } };
    const banks: Uint8Array[] = [];
    const logs: { item: DatasetImage; image: ImageTensor }[][] = [[], []];
    const source = (k: number) => recording(patchcoreSource(gpu, { backbone: 'mobilenetv2', bankImages: 2, onBank: async (b) => void banks.push(encodeBank(b)) }), logs[k]);
    const without = await runEval({ ...base, source: source(0) });
    const withShift = await runEval({ ...base, source: source(1), shift, out: join(dir, 'out') });

    // The bank is built from the unshifted train images and the calibration from the unshifted validation maps.
    expect(banks.length).toBe(2);
    expect(Buffer.compare(Buffer.from(banks[0]), Buffer.from(banks[1]))).toBe(0);
    expect(withShift.report.run.calibration).toEqual(without.report.run.calibration);
    // The plain pass is the run without the shift.
    expect(withShift.report.methods).toEqual(without.report.methods);
    expect(withShift.report.imageResults).toEqual(without.report.imageResults);

    // Validation images are scored once, unshifted; every test image twice: as it is, then shifted.
    const dataset = await openDataset(synth.dataset, { seed: 2 });
    const validation = logs[1].filter((l) => l.item.split !== 'test');
    expect(validation.map((l) => l.item.id)).toEqual(dataset.validation.map((i) => i.id));
    const test = logs[1].filter((l) => l.item.split === 'test');
    expect(test.map((l) => l.item.id)).toEqual(dataset.test.flatMap((i) => [i.id, i.id]));
    for (const [k, item] of dataset.test.entries()) {
      const { image } = await loadImage(item, undefined);
      expect(maxAbsDiff(test[2 * k].image.data, image.data)).toBe(0);
      expect(maxAbsDiff(test[2 * k + 1].image.data, applyShift(image, shift).data)).toBe(0);
    }
    for (const l of validation) expect(maxAbsDiff(l.image.data, (await loadImage(l.item, undefined)).image.data)).toBe(0);

    // Both tables, the F1 lost and the goals.
    const s = withShift.summary.shifted!;
    expect(s.shift).toBe('brightness=0.8,contrast=1.2');
    expect(Object.keys(s.methods)).toEqual(methods);
    expect(Object.keys(s.perType).sort()).toEqual(['blob', 'good', 'mixed']);
    expect(s.images).toEqual(withShift.summary.images);
    for (const m of methods) {
      const l = s.f1Lost[m];
      expect(l.plain).toBe(withShift.summary.methods[m].pooled!.f1);
      expect(l.shifted).toBe(s.methods[m].pooled!.f1);
      expect(l.lost).toBeCloseTo(l.plain! - l.shifted!, 12);
    }
    // The shift moved the maps: some method's F1 differs.
    expect(methods.some((m) => s.f1Lost[m].lost !== 0)).toBe(true);
    expect(withShift.report.shift!.imageResults.length).toBe(withShift.report.imageResults.length);
    expect(withShift.report.goals.map((g) => g.goal)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^under the shift \(brightness=0.8,contrast=1.2\) ttt loses less pooled F1 than every thr_\*/), expect.stringMatching(/^ttt marks > 50.0% of no image/)]),
    );
    const md = await readFile(join(dir, 'out', 'report.md'), 'utf8');
    expect(md).toContain('## Overall');
    expect(md).toContain('## Shifted test images (brightness=0.8,contrast=1.2)');
    expect(md).toContain('### Shifted: overall');
    expect(md).toMatch(/\| ttt \| [0-9.]+ \| [0-9.]+ \| -?[0-9.]+ \|/);
    expect(withShift.written.map((f) => f.split('/').pop())).toEqual(expect.arrayContaining(['contact-blob.png', 'contact-shifted-blob.png']));
    // Without a shift the summary has no shifted part (the --json shape is unchanged).
    expect(Object.keys(without.summary).sort()).toEqual(['images', 'methods', 'perType']);
    expect(without.report.shift).toBeNull();
  });

  it('with maps from a folder: refused without the shifted maps; with them the maps-only methods lose nothing', async () => {
    const gpu = await testGpu();
    const base = { gpu, dataset: synth.dataset, methods: ['thr_global_3sigma', 'otsu', 'ttt'] as MethodName[], size: null, seed: 0, shift: parseShift('brightness=0.8') };
    await expect(runEval({ ...base, source: mapsFolder(synth.maps) })).rejects.toThrow(/a shift of the images cannot change maps read from a folder/);
    const r = await runEval({ ...base, source: mapsFolder(synth.maps), shiftedSource: mapsFolder(synth.maps), tttOverrides: { 'classifier.epochs': '20' } });
    expect(r.summary.shifted!.f1Lost.thr_global_3sigma.lost).toBe(0);
    expect(r.summary.shifted!.f1Lost.otsu.lost).toBe(0);
  });

  it('--half: two disjoint seeded halves that make up the test set', async () => {
    const all = await openDataset(synth.dataset, { seed: 4 });
    const a = await openDataset(synth.dataset, { seed: 4, half: 'a' });
    const b = await openDataset(synth.dataset, { seed: 4, half: 'b' });
    expect([...a.test, ...b.test].map((i) => i.id).sort()).toEqual(all.test.map((i) => i.id).sort());
    expect(a.test.every((i) => testHalf(i.id, 4) === 'a') && b.test.every((i) => testHalf(i.id, 4) === 'b')).toBe(true);
    expect(a.test.length).toBeGreaterThan(0);
    expect(b.test.length).toBeGreaterThan(0);
    expect(a.validation).toEqual(all.validation);
  });

  it('the CLI with the built-in scorer: saved plain and shifted maps reproduce the run through --maps and --shifted-maps', async () => {
    const plain = join(dir, 'cli-maps');
    const moved = join(dir, 'cli-maps-shifted');
    const common = ['--dataset', synth.dataset, '--shift', 'brightness=0.8,contrast=1.2', '--methods', 'thr_global_3sigma,otsu,oracle', '--json'];
    const built = await ttt('eval', ...common, '--backbone', 'mobilenetv2', '--bank-images', '2', '--save-maps', plain, '--save-shifted-maps', moved);
    expect(built.code, built.stderr).toBe(0);
    const again = await ttt('eval', ...common, '--maps', plain, '--shifted-maps', moved);
    expect(again.code, again.stderr).toBe(0);
    // The plain maps are not overwritten by the shifted ones: both tables come back the same.
    expect(JSON.parse(again.stdout)).toEqual(JSON.parse(built.stdout));
    expect(JSON.parse(built.stdout).shifted.f1Lost.thr_global_3sigma.lost).not.toBe(0);
    // --save-maps alone keeps the plain maps (the shifted ones are not written over them).
    const alone = join(dir, 'cli-maps-alone');
    const r = await ttt('eval', ...common, '--backbone', 'mobilenetv2', '--bank-images', '2', '--save-maps', alone);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['blob/000.npy', 'good/001.npy', 'mixed/002.npy', 'validation/good/000.npy']) {
      expect(Buffer.compare(await readFile(join(alone, f)), await readFile(join(plain, f))), f).toBe(0);
    }
  });

  it('the CLI prints both tables and refuses a bad spec or --shift with --maps alone', async () => {
    const ok = await ttt('eval', '--dataset', synth.dataset, '--maps', synth.maps, '--shifted-maps', synth.maps, '--shift', 'contrast=1.2', '--methods', 'thr_global_3sigma,otsu');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^overall \(6 anomalous, 3 defect-free/m);
    expect(ok.stdout).toContain('shifted test images (contrast=1.2), overall');
    expect(ok.stdout).toMatch(/^otsu\s+[0-9.]+\s+[0-9.]+\s+0\.000\s+\d+\s+\d+$/m);
    const bad = await ttt('eval', '--dataset', synth.dataset, '--maps', synth.maps, '--shift', 'contrast=9');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--shift: contrast must be in \[0, 4\], got 9/);
    const maps = await ttt('eval', '--dataset', synth.dataset, '--maps', synth.maps, '--shift', 'contrast=1.2');
    expect(maps.code).toBe(2);
    expect(maps.stderr).toMatch(/--shift with --maps: maps read from a folder cannot follow a shift of the images; give the maps of the shifted test images with --shifted-maps DIR/);
    const half = await ttt('eval', '--dataset', synth.dataset, '--maps', synth.maps, '--half', 'c');
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/--half expects a or b/);
  });
});
