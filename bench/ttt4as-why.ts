// What the ttt4as configuration (src/eval/methods.ts) does on each anomalous test image, in figures:
// pseudo-label counts and how many lie on the defect, the L2 strength lambda = 1 / (C rows), the SGD's
// model against the exact LinearSVC minimizer (src/core/reference/linearSvc.ts: objective gap, |w|, bias),
// the decision values over the image and the share of pixels called defective, and the pooled F1 of the
// SGD's mask and of the exact solution's mask. With --sklearn K, the first K images' training sets also go
// to scikit-learn's LinearSVC (Debian's /usr/bin/python3, python3-sklearn) as a cross-check of the exact
// solver; never part of npm test.
//
//   npx tsx bench/ttt4as-why.ts --dataset DIR --maps DIR [--size 256] [--limit N] [--sklearn K] [--set key=value ...]

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sgdLambda } from '../src/core/classifier.ts';
import { chooseExtractor, extractFeatures, releaseFeatures } from '../src/core/features/index.ts';
import { hostAnalyzeScoreMap, hostGather, hostPseudoLabels, hostTrain } from '../src/core/hostStage.ts';
import { addConfusion, confusion, pixelMetrics, type Confusion } from '../src/core/metrics.ts';
import { flattenOptions, parseAssignments, resolveOptions } from '../src/core/options.ts';
import { requestedPercentiles } from '../src/core/pipeline.ts';
import { LABEL_ANOMALOUS, LABEL_NOMINAL } from '../src/core/pseudoLabels.ts';
import { referencePredict } from '../src/core/reference/classifier.ts';
import { solveSquaredHinge, svmObjective } from '../src/core/reference/linearSvc.ts';
import type { FeatureTensor } from '../src/core/types.ts';
import { NOMINAL_TYPE, loadImage, loadMask, openDataset } from '../src/eval/dataset.ts';
import { TTT4AS_SVC_C, ttt4asOverrides } from '../src/eval/methods.ts';
import { toWorkingResolution } from '../src/eval/run.ts';
import { mapsFolder } from '../src/eval/scoreSource.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { registerMobileNet } from '../src/models/mobilenet.ts';
import { registerResnet50 } from '../src/models/resnet50.ts';

const { values: v } = parseArgs({
  options: {
    dataset: { type: 'string' },
    maps: { type: 'string' },
    size: { type: 'string' },
    limit: { type: 'string' },
    sklearn: { type: 'string' },
    set: { type: 'string', multiple: true },
  },
});
if (!v.dataset || !v.maps) throw new Error('--dataset and --maps are required');
const size = Number(v.size ?? 256);
const sklearnImages = Number(v.sklearn ?? 0);
registerMobileNet();
registerResnet50();
const { gpu } = await nodeGpu();
const source = mapsFolder(v.maps);
const dataset = await openDataset(v.dataset, { seed: 0, limit: v.limit === undefined ? undefined : Number(v.limit) });
const options = resolveOptions({ ...ttt4asOverrides(0), ...parseAssignments(v.set ?? []) });
// The exact solver is for the squared hinge; with another loss its columns repeat the SGD's.
const squared = options.classifier.loss === 'squared_hinge';
const extractor = chooseExtractor(options);
const changed = Object.entries(parseAssignments(v.set ?? [])).map(([k, x]) => `${k}=${x}`);
console.log(`ttt4as${changed.length ? ` with ${changed.join(', ')}` : ''}; features ${flattenOptions(options)['features.extractor']} ${options.features.layers.join('+')}`);

const quantile = (sorted: Float64Array | number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);

interface Row {
  type: string;
  anomalous: number;
  nominal: number;
  seedsOnDefect: number;
  nominalOnDefect: number;
  lambda: number;
  wSgd: number;
  wExact: number;
  bSgd: number;
  bExact: number;
  gap: number;
  epochs: number;
  d50: number;
  d99: number;
  dMax: number;
  posSgd: number;
  posExact: number;
  defectShare: number;
}
const rows: Row[] = [];
const none = (): Confusion => ({ tp: 0, fp: 0, fn: 0, tn: 0 });
const pooled: Record<string, { sgd: Confusion; exact: Confusion }> = {};
const sk: number[] = [];
const dir = mkdtempSync(join(tmpdir(), 'ttt4as-why-'));
let skipped = 0;

for (const item of dataset.test) {
  if (item.type === NOMINAL_TYPE) continue;
  const { image, original } = await loadImage(item, size);
  const truth = await loadMask(item, original, image);
  const map = await toWorkingResolution(gpu, await source.score(item, image), image);
  const n = image.width * image.height;
  const analysis = hostAnalyzeScoreMap(map, requestedPercentiles(options));
  const labels = hostPseudoLabels(map, analysis, options);
  const acc = (pooled[item.type] ??= { sgd: none(), exact: none() });
  if (labels.counts.anomalous === 0 || labels.counts.nominal === 0) {
    skipped++;
    const empty = confusion(new Uint8Array(n), truth);
    acc.sgd = addConfusion(acc.sgd, empty);
    acc.exact = addConfusion(acc.exact, empty);
    continue;
  }
  const g = await extractFeatures(gpu, image, extractor);
  const data = new Float32Array(g.channels * n);
  let offset = 0;
  for (const chunk of g.chunks) {
    data.set(await gpu.readF32(chunk.data, chunk.channels * n), offset);
    offset += chunk.channels * n;
  }
  releaseFeatures(gpu, g);
  const features: FeatureTensor = { data, channels: g.channels, width: image.width, height: image.height };
  const set = hostGather(labels, features, null);
  const report = hostTrain(set, labels.counts, options);
  const { lambda, lambdaBias } = sgdLambda(options.classifier, set.rows);
  const exact = squared ? solveSquaredHinge(set, lambda, lambdaBias, 1e-10, 50) : { weights: report.weights, objective: NaN };
  const sgdObjective = squared ? svmObjective(set, report.weights, lambda, lambdaBias) : NaN;
  const sgd = referencePredict(report.weights, features);
  const ex = referencePredict(exact.weights, features);
  acc.sgd = addConfusion(acc.sgd, confusion(sgd.mask, truth));
  acc.exact = addConfusion(acc.exact, confusion(ex.mask, truth));
  let seedsOnDefect = 0;
  let nominalOnDefect = 0;
  let defect = 0;
  for (let i = 0; i < n; i++) {
    if (truth[i]) defect++;
    if (labels.labels[i] === LABEL_ANOMALOUS && truth[i]) seedsOnDefect++;
    if (labels.labels[i] === LABEL_NOMINAL && truth[i]) nominalOnDefect++;
  }
  const C = features.channels;
  const norm = (w: readonly number[]) => Math.hypot(...w.slice(0, C));
  const sorted = Float64Array.from(sgd.decision).sort();
  rows.push({
    type: item.type,
    anomalous: labels.counts.anomalous,
    nominal: labels.counts.nominal,
    seedsOnDefect: seedsOnDefect / labels.counts.anomalous,
    nominalOnDefect: nominalOnDefect / labels.counts.nominal,
    lambda,
    wSgd: norm(report.weights),
    wExact: norm(exact.weights),
    bSgd: report.weights[C],
    bExact: exact.weights[C],
    gap: (sgdObjective - exact.objective) / exact.objective,
    epochs: report.epochs,
    d50: quantile(sorted, 0.5),
    d99: quantile(sorted, 0.99),
    dMax: sorted[sorted.length - 1],
    posSgd: sgd.mask.reduce((s, x) => s + x, 0) / n,
    posExact: ex.mask.reduce((s, x) => s + x, 0) / n,
    defectShare: defect / n,
  });
  if (squared && sk.length < sklearnImages) {
    writeFileSync(join(dir, 'x.f64'), new Uint8Array(set.x.buffer, set.x.byteOffset, set.x.byteLength));
    writeFileSync(join(dir, 'y.f64'), new Uint8Array(set.targets.buffer, set.targets.byteOffset, set.targets.byteLength));
    const py = [
      'import numpy as np, sys, json',
      'from sklearn.svm import LinearSVC',
      `x = np.fromfile("${join(dir, 'x.f64')}", dtype=np.float64).reshape(${set.rows}, ${C})`,
      `y = np.fromfile("${join(dir, 'y.f64')}", dtype=np.float64)`,
      `m = LinearSVC(C=${TTT4AS_SVC_C}, loss="squared_hinge", dual=True, tol=1e-10, max_iter=1000000).fit(x, y)`,
      'print(json.dumps(list(m.coef_[0]) + [float(m.intercept_[0])]))',
    ].join('\n');
    writeFileSync(join(dir, 'fit.py'), py);
    const w = JSON.parse(execFileSync('/usr/bin/python3', [join(dir, 'fit.py')], { encoding: 'utf8' })) as number[];
    sk.push(Math.max(...w.map((x, i) => Math.abs(x - exact.weights[i]))) / Math.max(...exact.weights.map(Math.abs)));
  }
}
rmSync(dir, { recursive: true, force: true });

const fmt = (x: number, d = 3) => (Math.abs(x) < 1e-3 && x !== 0 ? x.toExponential(1) : x.toFixed(d));
console.log(`${rows.length} anomalous images trained, ${skipped} without both pseudo-label classes\n`);
console.log('| type | images | anomalous rows | seeds on defect | nominal on defect | lambda | SGD gap to exact | w (SGD / exact) | b (SGD / exact) | decision p50 / p99 / max | px > 0 (SGD / exact) | defect px | pooled F1 SGD / exact |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
const types = [...new Set(rows.map((r) => r.type)), 'all'];
for (const t of types) {
  const rs = t === 'all' ? rows : rows.filter((r) => r.type === t);
  const m = (k: keyof Row) => median(rs.map((r) => r[k] as number));
  const c = t === 'all' ? Object.values(pooled).reduce((a, p) => ({ sgd: addConfusion(a.sgd, p.sgd), exact: addConfusion(a.exact, p.exact) }), { sgd: none(), exact: none() }) : pooled[t];
  console.log(
    `| ${t} | ${rs.length} | ${fmt(m('anomalous'), 0)} | ${fmt(m('seedsOnDefect'))} | ${fmt(m('nominalOnDefect'))} | ${fmt(m('lambda'))} | ${fmt(m('gap'))} | ${fmt(m('wSgd'))} / ${fmt(m('wExact'))} | ${fmt(m('bSgd'))} / ${fmt(m('bExact'))} | ${fmt(m('d50'))} / ${fmt(m('d99'))} / ${fmt(m('dMax'))} | ${fmt(m('posSgd'))} / ${fmt(m('posExact'))} | ${fmt(m('defectShare'))} | ${fmt(pixelMetrics(c.sgd).f1)} / ${fmt(pixelMetrics(c.exact).f1)} |`,
  );
}
console.log('\n(medians over the images; SGD gap: (objective(SGD) - objective(exact)) / objective(exact); px > 0: share of the image called defective)');
console.log(`epochs run: median ${median(rows.map((r) => r.epochs))}`);
if (sk.length) console.log(`scikit-learn LinearSVC vs the exact solver on ${sk.length} images: max |w diff| / max |w| = ${fmt(Math.max(...sk), 6)}`);
process.exit(0);
