// What `ttt eval` reports: pooled and per-image pixel metrics of every method over the anomalous test
// images, false positives over the defect-free ones, per defect type and overall; the issue's goal checks;
// report.md; and contact sheets (image | score map | masks | ground truth) as PNG.

import sharp, { type OverlayOptions } from 'sharp';
import { addConfusion, meanMetrics, pixelMetrics, type Confusion, type PixelMetrics } from '../core/metrics.ts';
import type { ImageTensor, ScoreMap } from '../core/types.ts';
import { encodeImagePng, encodeMaskPng, encodeScoreMapPng } from '../io/image.ts';
import type { MethodName } from './methods.ts';

export interface NominalMetrics {
  /** Flagged pixels / pixels of the defect-free test images. */
  falsePositiveRate: number;
  /** Share of defect-free test images whose mask is not empty. */
  flaggedImages: number;
}

export interface MethodSummary {
  /** All pixels of the anomalous images counted together; null when there are none. */
  pooled: PixelMetrics | null;
  /** Mean over the anomalous images of each image's metrics; null when there are none. */
  perImage: PixelMetrics | null;
  /** Over the defect-free test images; null when there are none. */
  nominal: NominalMetrics | null;
}

/** The `--json` object. */
export interface EvalSummary {
  methods: Record<string, MethodSummary>;
  perType: Record<string, Record<string, MethodSummary>>;
  images: { anomalous: number; nominal: number };
  /** With `--shift`: the same test images shifted, and what the shift cost each method. */
  shifted?: ShiftComparison;
}

/** An image a method marked mostly although its ground truth covers a small share of it. */
export interface OverMarked {
  id: string;
  type: string;
  method: string;
  /** Share of the image's (valid) pixels in the mask. */
  marked: number;
  /** Share of the image's (valid) pixels in the ground truth (0 for a defect-free image). */
  defectShare: number;
}

/** The per-image check: flag an image when a method marks more than `marked` of it while its defects cover less than `truth`. */
export const OVER_MARKING = { marked: 0.5, truth: 0.05 } as const;

export interface ShiftComparison {
  /** The shift (canonical `--shift` spec). */
  shift: string;
  /** The summary of the shifted test images (same shape as the plain one). */
  methods: Record<string, MethodSummary>;
  perType: Record<string, Record<string, MethodSummary>>;
  images: { anomalous: number; nominal: number };
  /** Per method: pooled F1 plain, shifted, and lost (plain - shifted); null without anomalous images. */
  f1Lost: Record<string, { plain: number | null; shifted: number | null; lost: number | null }>;
  /** Images over-marked (OVER_MARKING), plain and shifted, every method. */
  overMarked: { plain: OverMarked[]; shifted: OverMarked[] };
}

/** Every (image, method) where the mask covers more than OVER_MARKING.marked of an image whose defects cover less than OVER_MARKING.truth. */
export function overMarkedImages(results: readonly ImageResult[]): OverMarked[] {
  const out: OverMarked[] = [];
  for (const r of results) {
    for (const [method, c] of Object.entries(r.methods)) {
      if (!c) continue;
      const pixels = c.tp + c.fp + c.fn + c.tn;
      if (pixels === 0) continue;
      const marked = (c.tp + c.fp) / pixels;
      const defectShare = (c.tp + c.fn) / pixels;
      if (marked > OVER_MARKING.marked && defectShare < OVER_MARKING.truth) out.push({ id: r.id, type: r.type, method, marked, defectShare });
    }
  }
  return out;
}

/** The shifted pass beside the plain one: F1 lost per method and over-marked images in both. */
export function compareShift(shift: string, plain: EvalSummary, shifted: EvalSummary, plainResults: readonly ImageResult[], shiftedResults: readonly ImageResult[]): ShiftComparison {
  const f1Lost: ShiftComparison['f1Lost'] = {};
  for (const m of Object.keys(plain.methods)) {
    const a = plain.methods[m]?.pooled?.f1 ?? null;
    const b = shifted.methods[m]?.pooled?.f1 ?? null;
    f1Lost[m] = { plain: a, shifted: b, lost: a !== null && b !== null ? a - b : null };
  }
  return {
    shift,
    methods: shifted.methods,
    perType: shifted.perType,
    images: shifted.images,
    f1Lost,
    overMarked: { plain: overMarkedImages(plainResults), shifted: overMarkedImages(shiftedResults) },
  };
}

/** The shift's goals: ttt loses less pooled F1 than every thr_*, and over-marks no image, plain or shifted. */
export function shiftGoals(s: ShiftComparison): GoalCheck[] {
  const out: GoalCheck[] = [];
  const lost = (m: string) => s.f1Lost[m]?.lost ?? null;
  const ttt = lost('ttt');
  const thr = Object.keys(s.f1Lost).filter((k) => k.startsWith('thr_') && lost(k) !== null);
  if (ttt !== null && thr.length) {
    const least = thr.reduce((a, b) => (lost(b)! < lost(a)! ? b : a));
    out.push({
      goal: `under the shift (${s.shift}) ttt loses less pooled F1 than every thr_* (least: ${least})`,
      met: ttt < lost(least)!,
      value: lost(least)! - ttt,
      target: 0,
      detail: `ttt loses ${f3(ttt)}, ${thr.map((k) => `${k} ${f3(lost(k)!)}`).join(', ')}`,
    });
  }
  if (s.f1Lost.ttt) {
    const count = (list: readonly OverMarked[]) => list.filter((o) => o.method === 'ttt').length;
    const plain = count(s.overMarked.plain);
    const shifted = count(s.overMarked.shifted);
    out.push({
      goal: `ttt marks > ${pct(OVER_MARKING.marked)} of no image whose defects cover < ${pct(OVER_MARKING.truth)}, plain or shifted`,
      met: plain + shifted === 0,
      value: plain + shifted,
      target: 0,
      detail: `${plain} image(s) plain, ${shifted} shifted`,
    });
  }
  return out;
}

/** One test image's confusion counts per method. */
export interface ImageResult {
  id: string;
  type: string;
  /** In a defect type's folder (the MVTec protocol), even when its ground truth happens to be empty. */
  anomalous: boolean;
  width: number;
  height: number;
  defectPixels: number;
  methods: Partial<Record<MethodName, Confusion & { emptyReason?: string }>>;
}

function summarize(results: readonly ImageResult[], method: MethodName): MethodSummary {
  const anomalous = results.filter((r) => r.anomalous);
  const nominal = results.filter((r) => !r.anomalous);
  const zero: Confusion = { tp: 0, fp: 0, fn: 0, tn: 0 };
  const of = (r: ImageResult): Confusion => {
    const c = r.methods[method];
    if (!c) throw new Error(`no result of ${method} for ${r.id}`);
    return c;
  };
  let pooled: PixelMetrics | null = null;
  let perImage: PixelMetrics | null = null;
  if (anomalous.length) {
    pooled = pixelMetrics(anomalous.map(of).reduce(addConfusion, zero));
    perImage = meanMetrics(anomalous.map((r) => pixelMetrics(of(r))));
  }
  let nominalMetrics: NominalMetrics | null = null;
  if (nominal.length) {
    let flaggedPixels = 0;
    let pixels = 0;
    let flagged = 0;
    for (const r of nominal) {
      const c = of(r);
      flaggedPixels += c.fp + c.tp;
      pixels += c.tp + c.fp + c.fn + c.tn;
      if (c.fp + c.tp > 0) flagged++;
    }
    nominalMetrics = { falsePositiveRate: flaggedPixels / pixels, flaggedImages: flagged / nominal.length };
  }
  return { pooled, perImage, nominal: nominalMetrics };
}

export function summarizeResults(results: readonly ImageResult[], methods: readonly MethodName[], types: readonly string[]): EvalSummary {
  const perType: EvalSummary['perType'] = {};
  for (const type of types) {
    const of = results.filter((r) => r.type === type);
    if (of.length) perType[type] = Object.fromEntries(methods.map((m) => [m, summarize(of, m)]));
  }
  return {
    methods: Object.fromEntries(methods.map((m) => [m, summarize(results, m)])),
    perType,
    images: { anomalous: results.filter((r) => r.anomalous).length, nominal: results.filter((r) => !r.anomalous).length },
  };
}

export interface GoalCheck {
  goal: string;
  met: boolean;
  /** The measured quantity (a ratio or a difference, as `detail` says); null when it is not finite. */
  value: number | null;
  target: number;
  detail: string;
}

const f3 = (x: number) => x.toFixed(3);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The issue's goals, for the methods this run has. */
export function goalChecks(summary: EvalSummary): GoalCheck[] {
  const m = summary.methods;
  const f1 = (name: string) => m[name]?.pooled?.f1;
  const out: GoalCheck[] = [];
  const ttt = f1('ttt');
  const thr = Object.keys(m)
    .filter((k) => k.startsWith('thr_') && f1(k) !== undefined)
    .sort((a, b) => f1(b)! - f1(a)!);
  if (ttt !== undefined && thr.length) {
    const best = f1(thr[0])!;
    const ratio = best > 0 ? ttt / best : ttt > 0 ? Infinity : 0;
    out.push({
      goal: `ttt pooled F1 >= 2 x the best thr_* (${thr[0]})`,
      met: ratio >= 2,
      value: Number.isFinite(ratio) ? ratio : null,
      target: 2,
      detail: `${f3(ttt)} / ${f3(best)} = ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'inf'}x${ratio >= 2 ? '' : `; short by ${f3(2 * best - ttt)} F1`}`,
    });
  }
  for (const other of ['ttt4as', 'oracle']) {
    const o = f1(other);
    if (ttt === undefined || o === undefined) continue;
    out.push({
      goal: `ttt pooled F1 >= ${other}`,
      met: ttt >= o,
      value: ttt - o,
      target: 0,
      detail: `${f3(ttt)} vs ${f3(o)} (${ttt >= o ? '+' : ''}${f3(ttt - o)})`,
    });
  }
  const flagged = (name: string) => m[name]?.nominal?.flaggedImages;
  const ft = flagged('ttt');
  const f3s = flagged('thr_global_3sigma');
  if (ft !== undefined && f3s !== undefined) {
    out.push({
      goal: 'ttt flags no more defect-free images than thr_global_3sigma',
      met: ft <= f3s,
      value: ft - f3s,
      target: 0,
      detail: `${(100 * ft).toFixed(1)}% vs ${(100 * f3s).toFixed(1)}% of defect-free images flagged`,
    });
  }
  return out;
}

// ---- report.md ----


function methodTable(rows: Record<string, MethodSummary>, bestThr: string | null): string {
  const lines = [
    '| method | pooled P | pooled R | pooled F1 | pooled IoU | per-image P | per-image R | per-image F1 | per-image IoU | nominal FP rate | flagged images |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const cell = (x: number | undefined, fmt: (v: number) => string = f3) => (x === undefined ? '–' : fmt(x));
  for (const [name, s] of Object.entries(rows)) {
    const p = s.pooled ?? undefined;
    const q = s.perImage ?? undefined;
    const n = s.nominal ?? undefined;
    lines.push(
      `| ${name === bestThr ? `**${name}**` : name} | ${cell(p?.precision)} | ${cell(p?.recall)} | ${cell(p?.f1)} | ${cell(p?.iou)} | ${cell(q?.precision)} | ${cell(q?.recall)} | ${cell(q?.f1)} | ${cell(q?.iou)} | ${cell(n?.falsePositiveRate, (v) => v.toExponential(2))} | ${cell(n?.flaggedImages, pct)} |`,
    );
  }
  return lines.join('\n');
}

export interface MarkdownInput {
  summary: EvalSummary;
  goals: readonly GoalCheck[];
  command: string;
  dataset: string;
  scoreSource: string;
  seed: number;
  size: number | null;
  limit: number | null;
  validation: { source: string; images: number };
  oracle: { threshold: number; f1: number } | null;
  descriptions: Readonly<Record<string, string>>;
  sheets: readonly string[];
  sheetColumns: readonly string[];
  timings: { totalMs: number; perImageMs: Record<string, number> };
  notes: readonly string[];
}

export function markdownReport(r: MarkdownInput): string {
  const bestThr =
    Object.keys(r.summary.methods)
      .filter((k) => k.startsWith('thr_') && r.summary.methods[k].pooled)
      .sort((a, b) => r.summary.methods[b].pooled!.f1 - r.summary.methods[a].pooled!.f1)[0] ?? null;
  const out = [
    '# ttt eval',
    '',
    `Command: \`${r.command}\``,
    '',
    `- dataset: ${r.dataset}`,
    `- score maps: ${r.scoreSource}`,
    `- working size: ${r.size ? `longest side ${r.size} px` : 'native'}; seed ${r.seed}${r.limit ? `; at most ${r.limit} images per set` : ''}`,
    `- calibration: ${r.validation.images} defect-free images (${r.validation.source})`,
    `- test images: ${r.summary.images.anomalous} anomalous, ${r.summary.images.nominal} defect-free`,
  ];
  if (r.oracle) out.push(`- oracle threshold: ${r.oracle.threshold.toPrecision(6)} (pooled F1 ${f3(r.oracle.f1)})`);
  out.push('', 'Pooled: all pixels of the anomalous test images together; per image: the mean of each image\'s metric.');
  out.push('Nominal FP rate: flagged pixels / pixels of the defect-free test images; flagged images: the share of them with a non-empty mask.');
  if (bestThr) out.push(`The best thr_* method by pooled F1 is in bold.`);
  if (r.goals.length) {
    out.push('', '## Goals', '', '| goal | met | measured |', '|---|---|---|');
    for (const g of r.goals) out.push(`| ${g.goal} | ${g.met ? 'yes' : '**no**'} | ${g.detail} |`);
  }
  out.push('', '## Overall', '', methodTable(r.summary.methods, bestThr));
  if (r.summary.shifted) out.push('', ...shiftSection(r.summary.methods, r.summary.shifted));
  for (const [type, rows] of Object.entries(r.summary.perType)) {
    const n = Object.values(rows)[0];
    out.push('', `## ${type}${n?.pooled ? '' : ' (defect-free)'}`, '', methodTable(rows, null));
  }
  out.push('', '## Methods', '');
  for (const name of Object.keys(r.summary.methods)) out.push(`- \`${name}\`: ${r.descriptions[name] ?? ''}`);
  out.push('', '## Time', '', `Total ${(r.timings.totalMs / 1000).toFixed(1)} s. Mean per test image:`, '');
  out.push('| step | ms / image |', '|---|---:|');
  for (const [k, v] of Object.entries(r.timings.perImageMs)) out.push(`| ${k} | ${v.toFixed(1)} |`);
  if (r.notes.length) out.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  if (r.sheets.length) {
    out.push('', '## Contact sheets', '', `Columns: ${r.sheetColumns.join(' | ')} (masks white on black).`, '');
    for (const s of r.sheets) out.push(`![${s}](${s})`);
  }
  return out.join('\n') + '\n';
}

// ---- contact sheets ----

export interface SheetRow {
  image: ImageTensor;
  map: ScoreMap;
  /** One per mask column; null draws an empty (black) cell, e.g. the ground truth of a defect-free image. */
  masks: readonly (Uint8Array | null)[];
}

const GAP = 4;
const BACKGROUND = { r: 48, g: 48, b: 48 };

/**
 * One PNG: a row per image, columns image | score map heat | each mask. The heat maps of a sheet share
 * one colour scale (the sheet's lowest and highest score), so rows compare.
 */
export async function contactSheet(rows: readonly SheetRow[]): Promise<Uint8Array> {
  if (rows.length === 0) throw new Error('contactSheet: no rows');
  const columns = 2 + rows[0].masks.length;
  const cellW = Math.max(...rows.map((r) => r.image.width));
  const height = rows.reduce((a, r) => a + r.image.height, 0) + GAP * (rows.length + 1);
  const width = columns * cellW + GAP * (columns + 1);
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of rows) {
    for (const v of r.map.data) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const range = { min: lo, max: Math.max(hi, lo) };
  const layers: OverlayOptions[] = [];
  let y = GAP;
  for (const r of rows) {
    const { width: w, height: h } = r.image;
    const cells: Uint8Array[] = [await encodeImagePng(r.image), await encodeScoreMapPng(r.map, range)];
    for (const m of r.masks) cells.push(await encodeMaskPng(m ?? new Uint8Array(w * h), w, h));
    cells.forEach((png, c) => layers.push({ input: Buffer.from(png), left: GAP + c * (cellW + GAP), top: y }));
    y += h + GAP;
  }
  const png = await sharp({ create: { width, height, channels: 3, background: BACKGROUND } })
    .composite(layers)
    .png()
    .toBuffer();
  return new Uint8Array(png);
}

/** The size of the over-marked list shown in report.md (report.json has every one). */
const OVER_MARKED_SHOWN = 20;

/** report.md's section for the shifted test images: F1 side by side and lost, the shifted table, over-marked images. */
export function shiftSection(plain: Record<string, MethodSummary>, s: ShiftComparison): string[] {
  const n = (x: number | null) => (x === null ? '–' : f3(x));
  const count = (list: readonly OverMarked[], m: string) => list.filter((o) => o.method === m).length;
  const out = [
    `## Shifted test images (${s.shift})`,
    '',
    'The same test images after a photometric shift (`--shift`), re-scored by the same detector; the calibration is the unshifted one.',
    `Over-marked: images where the method marks more than ${pct(OVER_MARKING.marked)} of the image while its ground truth covers less than ${pct(OVER_MARKING.truth)} (defect-free images included).`,
    '',
    '| method | pooled F1 plain | pooled F1 shifted | F1 lost | per-image F1 plain | per-image F1 shifted | flagged plain | flagged shifted | over-marked plain | over-marked shifted |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [m, l] of Object.entries(s.f1Lost)) {
    const p = plain[m];
    const q = s.methods[m];
    out.push(
      `| ${m} | ${n(l.plain)} | ${n(l.shifted)} | ${n(l.lost)} | ${n(p?.perImage?.f1 ?? null)} | ${n(q?.perImage?.f1 ?? null)} | ${p?.nominal ? pct(p.nominal.flaggedImages) : '–'} | ${q?.nominal ? pct(q.nominal.flaggedImages) : '–'} | ${count(s.overMarked.plain, m)} | ${count(s.overMarked.shifted, m)} |`,
    );
  }
  out.push('', '### Shifted: overall', '', methodTable(s.methods, null));
  for (const [type, rows] of Object.entries(s.perType)) {
    const first = Object.values(rows)[0];
    out.push('', `### Shifted: ${type}${first?.pooled ? '' : ' (defect-free)'}`, '', methodTable(rows, null));
  }
  const shown = s.overMarked.shifted.slice(0, OVER_MARKED_SHOWN);
  if (shown.length) {
    out.push('', `### Over-marked shifted images (${shown.length} of ${s.overMarked.shifted.length})`, '', '| image | method | marked | defect share |', '|---|---|---:|---:|');
    for (const o of shown) out.push(`| ${o.id} | ${o.method} | ${pct(o.marked)} | ${pct(o.defectShare)} |`);
  }
  return out;
}
