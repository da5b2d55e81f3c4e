// `ttt eval` as a function: open an MVTec-layout dataset, score it, calibrate on the validation maps, run
// every method on every test image at the working resolution, and summarize (report.ts). The CLI wraps
// this; tests call it in-process.

import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { oracleThreshold } from '../core/baselines.ts';
import { calibrate, type Calibration } from '../core/calibration.ts';
import { TttError, withSubject, withSubjectAsync } from '../core/errors.ts';
import { resampleBilinear } from '../core/features/resample.ts';
import type { Gpu } from '../core/gpu.ts';
import { confusion } from '../core/metrics.ts';
import { flattenOptions, resolveOptions } from '../core/options.ts';
import type { ImageTensor, PointCloud, ScoreMap } from '../core/types.ts';
import { validateScoreMap } from '../core/validate.ts';
import { writeFilesAtomic } from '../io/files.ts';
import { NOMINAL_TYPE, loadImage, loadMask, loadPointCloud, openDataset, type DatasetImage } from './dataset.ts';
import {
  ALL_METHOD_NAMES,
  METHOD_DESCRIPTIONS,
  METHOD_NAMES,
  MODALITY_METHODS,
  applyThreshold,
  runMethod,
  ttt4asOptions,
  type MethodName,
  type MethodOutcome,
} from './methods.ts';
import { pointValidity, resampleValidity } from '../core/validity.ts';
import {
  compareShift,
  contactSheet,
  goalChecks,
  markdownReport,
  shiftGoals,
  summarizeResults,
  type EvalSummary,
  type GoalCheck,
  type ImageResult,
  type SheetRow,
  type ShiftComparison,
} from './report.ts';
import type { ScoreSource } from './scoreSource.ts';
import { applyShift, formatShift, type PhotometricShift } from './shift.ts';

/** Default working size: the longest side in pixels (the resolution PatchCore-style detectors score at). */
export const DEFAULT_SIZE = 256;
/** Images per test type on the contact sheets. */
export const SHEET_ROWS = 4;
/** The masks on the contact sheets, after the image and its score map. */
export const SHEET_MASKS = ['thr_global_3sigma', 'ttt'] as const;

export type EvalPhase = 'prepare' | 'bank images' | 'coreset' | 'validation' | 'test' | 'report';

export interface EvalProgress {
  phase: EvalPhase;
  done: number;
  total: number;
  /** The image just finished, when there is one. */
  item?: string;
}

export interface EvalOptions {
  gpu: Gpu;
  dataset: string;
  source: ScoreSource;
  /** Default: every method of the dataset (with point clouds, ttt_rgb and ttt_3d too). */
  methods?: readonly MethodName[];
  /** Longest side of the working resolution; null: each image's own size. */
  size: number | null;
  limit?: number;
  /** One seeded half of the test images (openDataset's `half`). */
  half?: 'a' | 'b';
  seed: number;
  /** Overrides of the `ttt` method's options (dotted keys, as `--set`). */
  tttOverrides?: Record<string, unknown>;
  /** Folder for report.json, report.md and contact sheets (created if missing). */
  out?: string;
  /** The command line, for the reports. */
  command?: string;
  onProgress?: (p: EvalProgress) => void;
  /**
   * A photometric shift of the test images only: each test image is evaluated as it is and shifted (the
   * detector's bank and the calibration stay as built from the unshifted train and validation images),
   * and both are reported.
   */
  shift?: PhotometricShift;
  /**
   * Where the maps of the shifted test images come from; by default `source`, which must then score the
   * image it is given (a folder of maps cannot: runEval refuses it). A `savingMaps` source would write
   * the shifted test maps over the plain ones: give the unwrapped source here.
   */
  shiftedSource?: ScoreSource;
}

interface MethodDiagnostics {
  /** Anomalous / defect-free images whose mask came out empty. */
  emptyMasks: { anomalous: number; nominal: number };
  /** Images left empty without looking: constant maps, the image-level gate, no pseudo-labels. */
  emptyReasons: Record<string, number>;
  /** Test-time training: mean pseudo-label counts and epochs over the images that trained a classifier. */
  trained?: { images: number; anomalousRows: number; nominalRows: number; epochs: number };
  ms: number;
}

export interface EvalReport extends EvalSummary {
  run: {
    command: string;
    dataset: string;
    scoreSource: string;
    seed: number;
    size: number | null;
    limit: number | null;
    half: 'a' | 'b' | null;
    methods: MethodName[];
    options: Partial<Record<'ttt' | 'ttt4as' | 'ttt_rgb' | 'ttt_3d', Record<string, unknown>>>;
    layout: 'mvtec' | 'mvtec3d';
    available: Record<string, number>;
    train: number;
    validation: { source: string; images: number };
    calibration: Omit<Calibration, 'pixelMean' | 'pixelStd'>;
    oracle: { threshold: number; f1: number } | null;
    startedAt: string;
    timings: { totalMs: number; phasesMs: Record<string, number>; perImageMs: Record<string, number> };
  };
  goals: GoalCheck[];
  diagnostics: Partial<Record<MethodName, MethodDiagnostics>>;
  notes: string[];
  imageResults: ImageResult[];
  /** With a shift: the shifted pass beside the plain one (its summary is also `shifted`). */
  shift: ShiftReport | null;
}

/** The shifted pass of a run: the comparison with the plain pass, plus its own oracle, diagnostics and images. */
export interface ShiftReport extends ShiftComparison {
  oracle: { threshold: number; f1: number } | null;
  diagnostics: Partial<Record<MethodName, MethodDiagnostics>>;
  imageResults: ImageResult[];
}

export interface EvalResult {
  /** The `--json` object. */
  summary: EvalSummary;
  report: EvalReport;
  /** Files written under `out`. */
  written: string[];
}

/** The map at the working resolution, resampled bilinearly on the GPU (pipeline.ts does the same). */
export async function toWorkingResolution(gpu: Gpu, map: ScoreMap, size: { width: number; height: number }): Promise<ScoreMap> {
  const { width, height } = size;
  if (map.width === width && map.height === height) return map;
  const src = gpu.upload(map.data);
  const dst = resampleBilinear(gpu, src, 1, map, size);
  try {
    return { data: await gpu.readF32(dst, width * height), width, height };
  } finally {
    gpu.release(src, dst);
  }
}

export async function runEval(opts: EvalOptions): Promise<EvalResult> {
  const { gpu, source, seed } = opts;
  const maxSide = opts.size ?? undefined;
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const phasesMs: Record<string, number> = {};
  const progress = opts.onProgress ?? (() => undefined);
  if (opts.out) {
    const existing = await stat(opts.out).catch(() => null);
    if (existing && !existing.isDirectory()) throw new TttError('INVALID_INPUT', `${opts.out}: the output exists and is not a directory`);
  }
  if (opts.shift && !opts.shiftedSource && source.mapsOnly) {
    throw new TttError(
      'INVALID_OPTION',
      `a shift of the images cannot change maps read from a folder (${source.name}): give the maps of the shifted test images (--shifted-maps DIR, e.g. written by a built-in-scorer run with --shift and --save-shifted-maps)`,
    );
  }
  const tttOptions = resolveOptions({ ...(opts.tttOverrides ?? {}), seed });
  const paperOptions = ttt4asOptions(seed);

  let t = performance.now();
  const dataset = await openDataset(opts.dataset, { seed, limit: opts.limit, half: opts.half });
  const withClouds = dataset.layout === 'mvtec3d';
  const methods = opts.methods ?? (withClouds ? ALL_METHOD_NAMES : METHOD_NAMES);
  const needClouds = methods.filter((m) => MODALITY_METHODS.includes(m));
  if (needClouds.length && !withClouds) {
    throw new TttError('INVALID_OPTION', `${needClouds.join(', ')} need point clouds: a dataset in the MVTec 3D-AD layout (<split>/<type>/{rgb,xyz,gt}/)`);
  }
  const modalityOptions = (modality: 'rgb' | '3d') => resolveOptions({ ...(opts.tttOverrides ?? {}), seed, 'features.modality': modality });
  /** Validity of the working-resolution pixels: holes of the point cloud are out of every count. */
  const validityOf = (cloud: PointCloud | null, image: ImageTensor) => (cloud ? resampleValidity(pointValidity(cloud), cloud, image) : null);
  const load = async (item: DatasetImage) => loadImage(item, maxSide);
  if (source.prepare) {
    await source.prepare(dataset, {
      loadImage: async (item) => (await load(item)).image,
      progress: (done, total, phase = 'prepare') => progress({ phase, done, total }),
    });
  }
  phasesMs.prepare = performance.now() - t;

  // The map of an image at its working resolution, checked against the image with the map named in errors.
  const workingMap = async (from: ScoreSource, item: DatasetImage, image: ImageTensor, cloud: PointCloud | null): Promise<ScoreMap> => {
    const map = await from.score(item, image, cloud);
    withSubject(from.locate?.(item) ?? `the score map of ${item.id}`, () => validateMapShape(map, image));
    return toWorkingResolution(gpu, map, image);
  };

  t = performance.now();
  const validationMaps: ScoreMap[] = [];
  const validationValid: (Uint8Array | null)[] = [];
  progress({ phase: 'validation', done: 0, total: dataset.validation.length });
  for (const [k, item] of dataset.validation.entries()) {
    const { image } = await load(item);
    const cloud = await loadPointCloud(item);
    validationMaps.push(await workingMap(source, item, image, cloud));
    validationValid.push(validityOf(cloud, image));
    progress({ phase: 'validation', done: k + 1, total: dataset.validation.length, item: item.id });
  }
  const calibration = calibrate(validationMaps, validationValid);
  validationMaps.length = 0;
  phasesMs.validation = performance.now() - t;

  const perImage = methods.filter((m): m is Exclude<MethodName, 'oracle'> => m !== 'oracle');
  const pixelCalibrations = new Map<string, Calibration>();
  const ctx = {
    gpu,
    calibration,
    ttt: tttOptions,
    ttt4as: paperOptions,
    ...(withClouds ? { tttRgb: modalityOptions('rgb'), ttt3d: modalityOptions('3d') } : {}),
  };
  const plain = newPass(methods);
  const shifted = opts.shift ? newPass(methods) : null;
  const shiftedSource = opts.shiftedSource ?? source;
  let loadMs = 0;
  let scoreMs = 0;

  /** Every method on one image of one pass (plain or shifted), its results recorded in the pass. */
  const evaluateImage = async (pass: Pass, item: DatasetImage, image: ImageTensor, map: ScoreMap, truth: Uint8Array | null, valid: Uint8Array | null, cloud: PointCloud | null) => {
    const anomalous = item.type !== NOMINAL_TYPE;
    const result: ImageResult = {
      id: item.id,
      type: item.type,
      anomalous,
      width: image.width,
      height: image.height,
      defectPixels: truth ? truth.reduce((a, v, i) => a + (valid && !valid[i] ? 0 : v), 0) : 0,
      methods: {},
    };
    const sheet = pass.sheetRows.get(item.type) ?? [];
    const onSheet = sheet.length < SHEET_ROWS;
    const masks = new Map<string, Uint8Array>();
    for (const m of perImage) {
      const lap = performance.now();
      const outcome = await withSubjectAsync(`${item.id} (${m}${pass === shifted ? ', shifted' : ''})`, () => runMethod(m, ctx, image, map, pixelCalibrations, cloud));
      pass.diagnostics[m]!.ms += performance.now() - lap;
      if (outcome.stretchedCalibration) pass.stretched++;
      recordOutcome(pass, m, result, outcome, truth, valid);
      if (onSheet) masks.set(m, outcome.mask);
    }
    pass.results.push(result);
    if (methods.includes('oracle')) pass.kept.push({ map, truth, valid });
    if (onSheet) pass.sheetRows.set(item.type, [...sheet, { item, image, map, truth, masks }]);
  };

  t = performance.now();
  progress({ phase: 'test', done: 0, total: dataset.test.length });
  for (const [k, item] of dataset.test.entries()) {
    let lap = performance.now();
    const { image, original } = await load(item);
    const anomalous = item.type !== NOMINAL_TYPE;
    const truth = anomalous ? await loadMask(item, original, image) : null;
    const cloud = await loadPointCloud(item);
    const valid = validityOf(cloud, image);
    loadMs += performance.now() - lap;
    lap = performance.now();
    const map = await workingMap(source, item, image, cloud);
    scoreMs += performance.now() - lap;
    await evaluateImage(plain, item, image, map, truth, valid, cloud);
    if (shifted && opts.shift) {
      // The same test image after the line drifted: re-scored by the same detector, the calibration kept.
      const moved = applyShift(image, opts.shift);
      lap = performance.now();
      const movedMap = await workingMap(shiftedSource, item, moved, cloud);
      scoreMs += performance.now() - lap;
      await evaluateImage(shifted, item, moved, movedMap, truth, valid, cloud);
    }
    progress({ phase: 'test', done: k + 1, total: dataset.test.length, item: item.id });
  }

  const plainOracle = methods.includes('oracle') ? await oracleOf(gpu, plain) : null;
  const shiftedOracle = shifted && methods.includes('oracle') ? await oracleOf(gpu, shifted) : null;
  phasesMs.test = performance.now() - t;
  const { results, diagnostics, stretched } = plain;
  const oracle = plainOracle;

  const summary = summarizeResults(results, methods, dataset.types);
  finishDiagnostics(plain);
  let shiftReport: ShiftReport | null = null;
  if (shifted && opts.shift) {
    finishDiagnostics(shifted);
    const shiftedSummary = summarizeResults(shifted.results, methods, dataset.types);
    const comparison = compareShift(formatShift(opts.shift), summary, shiftedSummary, plain.results, shifted.results);
    summary.shifted = comparison;
    shiftReport = { ...comparison, oracle: shiftedOracle, diagnostics: shifted.diagnostics, imageResults: shifted.results };
  }
  const goals = [...goalChecks(summary), ...(summary.shifted ? shiftGoals(summary.shifted) : [])];
  const notes: string[] = [];
  if (withClouds) {
    notes.push('MVTec 3D-AD layout: pixels without a valid 3-D point (NaN or (0, 0, 0), and pixels whose resampling touches one) are left out of every count and of the calibration; ttt sees image and 3-D features, ttt_rgb the image features only, ttt_3d the 3-D features only.');
  }
  if (stretched) {
    notes.push(
      `thr_pixel_3sigma: ${stretched} test images have another aspect ratio than the calibration's per-pixel statistics (${calibration.width}x${calibration.height}), which were stretched to them: per-pixel thresholds assume aligned images.`,
    );
  }
  const emptyTruth = results.filter((r) => r.anomalous && r.defectPixels === 0);
  if (emptyTruth.length) {
    notes.push(`${emptyTruth.length} anomalous test image(s) have an empty ground truth and count as anomalous (their folder): ${emptyTruth.slice(0, 10).map((r) => r.id).join(', ')}${emptyTruth.length > 10 ? ', ...' : ''}.`);
  }
  for (const m of methods) {
    const constant = diagnostics[m]!.emptyReasons['constant map'];
    if (constant) notes.push(`${m}: ${constant} test image(s) have a constant score map and got an empty mask.`);
  }

  const testCount = Math.max(1, dataset.test.length);
  const perImageMs: Record<string, number> = { 'load image + mask': loadMs / testCount, 'score map': scoreMs / testCount };
  for (const m of methods) perImageMs[m] = diagnostics[m]!.ms / testCount;
  if (shifted) for (const m of methods) perImageMs[`${m} (shifted)`] = shifted.diagnostics[m]!.ms / testCount;
  const command = opts.command ?? `ttt eval --dataset ${opts.dataset}`;
  const { pixelMean: _m, pixelStd: _s, ...calibrationStats } = calibration;
  const report: EvalReport = {
    ...summary,
    run: {
      command,
      dataset: opts.dataset,
      scoreSource: source.name,
      seed,
      size: opts.size,
      limit: opts.limit ?? null,
      half: opts.half ?? null,
      methods: [...methods],
      layout: dataset.layout,
      options: {
        ...(methods.includes('ttt') ? { ttt: flattenOptions(tttOptions) } : {}),
        ...(methods.includes('ttt4as') ? { ttt4as: flattenOptions(paperOptions) } : {}),
        ...(ctx.tttRgb && methods.includes('ttt_rgb') ? { ttt_rgb: flattenOptions(ctx.tttRgb) } : {}),
        ...(ctx.ttt3d && methods.includes('ttt_3d') ? { ttt_3d: flattenOptions(ctx.ttt3d) } : {}),
      },
      available: { ...dataset.available },
      train: dataset.train.length,
      validation: { source: dataset.validationSource, images: dataset.validation.length },
      calibration: { ...calibrationStats, imageScores: { ...calibration.imageScores } },
      oracle,
      startedAt,
      timings: { totalMs: 0, phasesMs, perImageMs },
    },
    goals,
    diagnostics,
    notes,
    imageResults: results,
    shift: shiftReport,
  };

  const written: string[] = [];
  if (opts.out) {
    t = performance.now();
    const columns = ['image', 'score map', ...SHEET_MASKS.filter((m) => methods.includes(m)), 'ground truth'];
    const files: { path: string; bytes: Uint8Array }[] = [];
    const sheets: string[] = [];
    let done = 0;
    const passes: [Pass, string][] = [[plain, 'contact-'], ...(shifted ? [[shifted, 'contact-shifted-'] as [Pass, string]] : [])];
    const total = passes.reduce((a, [p]) => a + p.sheetRows.size, 0);
    progress({ phase: 'report', done, total });
    for (const [pass, prefix] of passes) {
      for (const [type, rows] of pass.sheetRows) {
        const sheet: SheetRow[] = rows.map((r) => ({
          image: r.image,
          map: r.map,
          masks: [...SHEET_MASKS.filter((m) => methods.includes(m)).map((m) => r.masks.get(m)!), r.truth],
        }));
        const name = `${prefix}${safeName(type)}.png`;
        files.push({ path: join(opts.out, name), bytes: await contactSheet(sheet) });
        sheets.push(name);
        progress({ phase: 'report', done: ++done, total });
      }
    }
    phasesMs.report = performance.now() - t;
    report.run.timings.totalMs = performance.now() - started;
    const md = markdownReport({
      summary,
      goals,
      command,
      dataset: opts.dataset,
      scoreSource: source.name,
      seed,
      size: opts.size,
      limit: opts.limit ?? null,
      validation: report.run.validation,
      oracle,
      descriptions: METHOD_DESCRIPTIONS,
      sheets,
      sheetColumns: columns,
      timings: report.run.timings,
      notes,
    });
    files.push({ path: join(opts.out, 'report.md'), bytes: new TextEncoder().encode(md) });
    files.push({ path: join(opts.out, 'report.json'), bytes: new TextEncoder().encode(JSON.stringify(report, null, 2) + '\n') });
    try {
      await mkdir(opts.out, { recursive: true });
    } catch (e) {
      throw new TttError('INVALID_INPUT', `${opts.out}: cannot create the output directory: ${(e as Error).message}`);
    }
    await writeFilesAtomic(files);
    written.push(...files.map((f) => f.path));
  }
  report.run.timings.totalMs = performance.now() - started;
  return { summary, report, written };
}

interface Pass {
  results: ImageResult[];
  diagnostics: Partial<Record<MethodName, MethodDiagnostics>>;
  trained: Partial<Record<MethodName, { images: number; anomalous: number; nominal: number; epochs: number }>>;
  /** The maps and truths the oracle's threshold is chosen on, after the test loop. */
  kept: { map: ScoreMap; truth: Uint8Array | null; valid: Uint8Array | null }[];
  sheetRows: Map<string, { item: DatasetImage; image: ImageTensor; map: ScoreMap; truth: Uint8Array | null; masks: Map<string, Uint8Array> }[]>;
  /** Test images whose per-pixel calibration was stretched to another aspect ratio. */
  stretched: number;
}

function newPass(methods: readonly MethodName[]): Pass {
  const diagnostics: Pass['diagnostics'] = {};
  for (const m of methods) diagnostics[m] = { emptyMasks: { anomalous: 0, nominal: 0 }, emptyReasons: {}, ms: 0 };
  return { results: [], diagnostics, trained: {}, kept: [], sheetRows: new Map(), stretched: 0 };
}

function recordOutcome(pass: Pass, m: MethodName, r: ImageResult, outcome: MethodOutcome, truth: Uint8Array | null, valid: Uint8Array | null): void {
  const c = confusion(outcome.mask, truth ?? new Uint8Array(outcome.mask.length), valid ?? undefined);
  r.methods[m] = outcome.emptyReason ? { ...c, emptyReason: outcome.emptyReason } : c;
  const d = pass.diagnostics[m]!;
  if (c.tp + c.fp === 0) d.emptyMasks[r.anomalous ? 'anomalous' : 'nominal']++;
  if (outcome.emptyReason) d.emptyReasons[outcome.emptyReason] = (d.emptyReasons[outcome.emptyReason] ?? 0) + 1;
  if (outcome.pseudoLabels && outcome.epochs !== undefined) {
    const s = (pass.trained[m] ??= { images: 0, anomalous: 0, nominal: 0, epochs: 0 });
    s.images++;
    s.anomalous += outcome.pseudoLabels.anomalous;
    s.nominal += outcome.pseudoLabels.nominal;
    s.epochs += outcome.epochs;
  }
}

/** The oracle of a pass: the one threshold maximizing pooled F1 over its maps, applied to each of them. */
async function oracleOf(gpu: Gpu, pass: Pass): Promise<{ threshold: number; f1: number } | null> {
  const lap = performance.now();
  let oracle: { threshold: number; f1: number } | null = null;
  const truthOf = pass.kept.filter((x): x is { map: ScoreMap; truth: Uint8Array; valid: Uint8Array | null } => x.truth !== null);
  if (truthOf.length) {
    // Over the valid pixels only (holes of a point cloud are in no count).
    const validOnly = (a: Float32Array | Uint8Array, valid: Uint8Array | null) => (valid ? a.filter((_, i) => valid[i] !== 0) : a);
    oracle = oracleThreshold(truthOf.map((x) => ({ scores: validOnly(x.map.data, x.valid) as Float32Array, truth: validOnly(x.truth, x.valid) as Uint8Array })));
    for (const [k, x] of pass.kept.entries()) {
      const mask = await applyThreshold(gpu, x.map, oracle.threshold);
      recordOutcome(pass, 'oracle', pass.results[k], { mask, emptyReason: null }, x.truth, x.valid);
      const row = pass.sheetRows.get(pass.results[k].type)?.find((r) => r.item.id === pass.results[k].id);
      row?.masks.set('oracle', mask);
    }
  } else {
    // No anomalous image: no threshold to choose; the oracle flags nothing.
    for (const [k, x] of pass.kept.entries()) recordOutcome(pass, 'oracle', pass.results[k], { mask: new Uint8Array(x.map.data.length), emptyReason: null }, null, x.valid);
  }
  pass.kept.length = 0;
  pass.diagnostics.oracle!.ms = performance.now() - lap;
  return oracle;
}

/** Mean pseudo-label counts and epochs of each test-time-training method into its diagnostics. */
function finishDiagnostics(pass: Pass): void {
  for (const [m, s] of Object.entries(pass.trained)) {
    pass.diagnostics[m as MethodName]!.trained = {
      images: s.images,
      anomalousRows: s.anomalous / s.images,
      nominalRows: s.nominal / s.images,
      epochs: s.epochs / s.images,
    };
  }
}

/** A type name as a file name: anything but letters, digits, '-' and '_' becomes '_'. */
function safeName(type: string): string {
  return type.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** The map must be finite and have the image's aspect ratio; a constant map is allowed (methods handle it). */
function validateMapShape(map: ScoreMap, image: ImageTensor): void {
  try {
    validateScoreMap(map, image);
  } catch (e) {
    if (e instanceof TttError && e.code === 'CONSTANT_MAP') return;
    throw e;
  }
}
