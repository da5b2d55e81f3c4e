// `ttt eval`: every binarization method side by side on an MVTec-layout dataset (src/eval/), as a table,
// one JSON object, or report files.

import { TttError } from '../core/errors.ts';
import { parseAssignments, resolveOptions } from '../core/options.ts';
import { nodeGpu } from '../gpu/node.ts';
import { ALL_METHOD_NAMES, METHOD_DESCRIPTIONS, parseMethods } from '../eval/methods.ts';
import { OVER_MARKING, type EvalSummary, type GoalCheck, type MethodSummary } from '../eval/report.ts';
import { DEFAULT_SIZE, runEval } from '../eval/run.ts';
import { MAP_EXTENSIONS, mapsFolder, patchcoreSource, savingMaps, type ScoreSource } from '../eval/scoreSource.ts';
import { decodeBank, encodeBank } from '../core/patchcore/bank.ts';
import { readInputFile, writeFileAtomic } from '../io/files.ts';
import { intArg, parse } from './args.ts';
import { backboneArg, modalityArg } from './bank.ts';
import { progressReporter } from './progress.ts';
import { parseShift } from '../eval/shift.ts';

const HELP = `usage: ttt eval --dataset DIR [--maps DIR | --bank FILE | --modality rgb|3d|both] [options]

Evaluates every binarization method on a dataset in the MVTec AD layout:
  DIR/train/good/*             defect-free images (the detector's training set)
  DIR/validation/good/*        defect-free images to calibrate on; when absent, a seeded 20% of train/good
  DIR/test/<type>/*            test images; test/good holds the defect-free ones
  DIR/ground_truth/<type>/<stem>_mask.png   defective where > 127, the size of its image
Images are PNG, JPEG or TIFF, grey or colour, of any size.
or in the MVTec 3D-AD layout (DIR is one class folder, e.g. mvtec_3d/bagel):
  DIR/{train,validation,test}/<type>/rgb/<stem>.png   the images
  DIR/{train,validation,test}/<type>/xyz/<stem>.tiff  their organized point clouds (3-sample float TIFF, or .npy)
  DIR/test/<type>/gt/<stem>.png                       the masks of the defective test images
There every TTT method also sees the 3-D features, ttt_rgb and ttt_3d are added (image features only, 3-D
features only), and pixels without a valid 3-D point are left out of every count. The built-in scorer's
bank holds image and 3-D features there (--modality both, the default), and its one map feeds every
method; --modality rgb or 3d scores with one modality; a multimodal detector's maps come in through --maps.

Score maps come from the built-in scorer (PatchCore on a pretrained network, ImageNet ResNet-50 v2 unless
--backbone says otherwise, its memory bank built from train/good, or loaded with --bank), or from a folder (--maps DIR) as a detector exports them (${MAP_EXTENSIONS.join(', ')}; any resolution with the image's aspect):
  DIR/<type>/<stem>.npy                 test images, e.g. maps/crack/003.npy, maps/good/017.npy
  DIR/validation/good/<stem>.npy        the validation images (DIR/train/good/<stem>.npy when split from train)

Calibrates on the validation maps, runs each method on every test image at the working resolution, and
reports pixel precision, recall, F1 and IoU over the anomalous test images (pooled and per image) and the
false-positive rate and share of flagged images over the defect-free ones, per type and overall.

options:
  --dataset DIR       the dataset root
  --maps DIR          read the score maps from this folder instead of the built-in scorer
  --bank FILE         the built-in scorer's memory bank (from ttt bank build or --save-bank)
  --bank-images N     build the bank from at most N train images, evenly spaced (default: all)
  --modality M        features of the bank built here: rgb, 3d or both (default: both with point clouds,
                      else rgb; a saved --bank keeps its own)
  --backbone B        network of the bank built here: resnet50 (default) or mobilenetv2, with its default layers
  --save-bank FILE    write the bank built from train/good
  --save-maps DIR     write every map scored into DIR in the --maps layout (for later --maps runs)
  --methods a,b,...   a subset of: ${ALL_METHOD_NAMES.join(', ')} (default: all
                      of the dataset; ttt_rgb and ttt_3d need the MVTec 3D-AD layout)
  --size N            working resolution: longest side N pixels (default ${DEFAULT_SIZE}; 0: each image's own size);
                      images are downscaled (lanczos3), masks nearest-neighbour, maps bilinearly
  --limit N           at most N images per test type and per nominal set, drawn by the seed
  --half a|b          keep one seeded half of the test images (after --limit; by --seed): tune on one half,
                      report the other
  --seed N            seed of the validation split, the --limit draw and every method (default 0)
  --set key=value     an option of the ttt method (repeatable); see ttt segment --help
  --out DIR           write report.json, report.md and contact sheets (contact-<type>.png) there
  --json              print one JSON object { methods, perType, images[, shifted] } instead of the tables
  --shift SPEC        also evaluate the test images after a photometric shift (the line drifted after the
                      nominal samples were taken), e.g. brightness=0.8,contrast=1.2; the detector (its bank
                      from the unshifted train images) and the calibration (the unshifted validation maps)
                      stay as they are, the shifted test images are re-scored, and both tables are reported
                      with the F1 each method lost and the images it over-marked (> 50% of an image whose
                      defects cover < 5%). Keys (each optional, clamped to [0, 1] at the end):
                        brightness=G  gain on every pixel, in (0, 4]           (default 1)
                        gradient=A    illumination gain from 1-A to 1+A across the image, [0, 1] (0)
                        angle=D       direction of the gradient in degrees, 0: left to right (0)
                        contrast=C    v -> pivot + C (v - pivot), [0, 4]        (1)
                        pivot=P       grey (0.5) or mean (the image's mean)    (grey)
                        offset=O      added after the contrast, [-1, 1]        (0)
                        gamma=Y       v -> v^Y after clamping, [0.1, 10]       (1)
                      With --maps the maps cannot follow a shift of the images: give the maps of the
                      shifted test images with --shifted-maps (the images are still shifted for ttt's
                      features); a shift of the maps themselves is not offered (it is no drift of the line).
  --shifted-maps DIR  with --maps and --shift: the maps of the shifted test images (DIR/<type>/<stem>.npy)
  --save-shifted-maps DIR  with --shift and the built-in scorer: write the shifted test images' maps there

Progress goes to stderr: a bar on a terminal, plain lines otherwise.
Exit status: 0 on success, 2 on bad input or options.`;

const quote = (a: string) => (/^[A-Za-z0-9_./:=,+-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);

export const command = {
  summary: 'evaluate every binarization method on an MVTec-layout dataset',
  async run(argv: string[]): Promise<void> {
    const v = parse(
      argv,
      {
        dataset: { type: 'string' },
        maps: { type: 'string' },
        bank: { type: 'string' },
        'bank-images': { type: 'string' },
        modality: { type: 'string' },
        backbone: { type: 'string' },
        'save-bank': { type: 'string' },
        'save-maps': { type: 'string' },
        methods: { type: 'string' },
        size: { type: 'string' },
        limit: { type: 'string' },
        half: { type: 'string' },
        seed: { type: 'string' },
        set: { type: 'string', multiple: true },
        out: { type: 'string' },
        json: { type: 'boolean' },
        shift: { type: 'string' },
        'shifted-maps': { type: 'string' },
        'save-shifted-maps': { type: 'string' },
      },
      HELP,
    );
    if (!v.dataset) throw new TttError('INVALID_OPTION', '--dataset is required (see ttt eval --help)');
    if (v.maps && (v.bank || v['bank-images'] || v['save-bank'] || v.modality || v.backbone)) {
      throw new TttError('INVALID_OPTION', '--bank, --bank-images, --save-bank, --modality and --backbone belong to the built-in scorer: leave them out with --maps');
    }
    if (v.bank && v.backbone) throw new TttError('INVALID_OPTION', '--backbone chooses the network of a bank built from train/good: a saved --bank keeps its own');
    if (v.bank && v.modality) throw new TttError('INVALID_OPTION', '--modality chooses the features of a bank built from train/good: a saved --bank keeps its own');
    const shift = v.shift === undefined ? undefined : parseShift(v.shift);
    if (!shift && (v['shifted-maps'] || v['save-shifted-maps'])) throw new TttError('INVALID_OPTION', '--shifted-maps and --save-shifted-maps belong to --shift');
    if (v['shifted-maps'] && !v.maps) throw new TttError('INVALID_OPTION', '--shifted-maps goes with --maps (the built-in scorer scores the shifted images itself)');
    if (v['save-shifted-maps'] && v.maps) throw new TttError('INVALID_OPTION', '--save-shifted-maps writes the built-in scorer\'s maps: leave it out with --maps');
    if (shift && v.maps && !v['shifted-maps']) {
      throw new TttError('INVALID_OPTION', '--shift with --maps: maps read from a folder cannot follow a shift of the images; give the maps of the shifted test images with --shifted-maps DIR');
    }
    const modality = v.modality === undefined ? undefined : modalityArg(v.modality);
    const methods = v.methods ? parseMethods(v.methods.split(',').map((s) => s.trim())) : undefined;
    const sizeArg = intArg('size', v.size, DEFAULT_SIZE, 0, 1 << 16);
    const limit = v.limit === undefined ? undefined : intArg('limit', v.limit, 0, 1, 1 << 30);
    if (v.half !== undefined && v.half !== 'a' && v.half !== 'b') throw new TttError('INVALID_OPTION', `--half expects a or b, got ${JSON.stringify(v.half)}`);
    const half = v.half as 'a' | 'b' | undefined;
    const seed = intArg('seed', v.seed, 0, 0, 0xffffffff);
    const tttOverrides = parseAssignments(v.set ?? []);
    resolveOptions(tttOverrides); // refuse a bad --set before any work

    const { gpu } = await nodeGpu();
    let source: ScoreSource;
    if (v.maps) {
      source = mapsFolder(v.maps);
    } else {
      const bank = v.bank ? decodeBank(await readInputFile(v.bank, 'memory bank'), v.bank) : undefined;
      const saveBank = v['save-bank'];
      source = patchcoreSource(gpu, {
        bank,
        modality,
        backbone: v.backbone === undefined ? undefined : backboneArg(v.backbone),
        bankImages: v['bank-images'] === undefined ? undefined : intArg('bank-images', v['bank-images'], 0, 1, 1 << 30),
        onBank: saveBank ? (b) => writeFileAtomic(saveBank, encodeBank(b)) : undefined,
      });
    }
    // The shifted maps never go into --save-maps (they would overwrite the plain test maps there).
    let shiftedSource: ScoreSource | undefined = v['shifted-maps'] ? mapsFolder(v['shifted-maps']) : shift ? source : undefined;
    if (v['save-shifted-maps']) shiftedSource = savingMaps(source, v['save-shifted-maps']);
    if (v['save-maps']) source = savingMaps(source, v['save-maps']);
    const bar = progressReporter(process.stderr, 'eval');
    let result;
    try {
      result = await runEval({
        gpu,
        dataset: v.dataset,
        source,
        methods,
        size: sizeArg === 0 ? null : sizeArg,
        limit,
        half,
        seed,
        tttOverrides,
        shift,
        shiftedSource,
        out: v.out,
        command: ['ttt', 'eval', ...argv].map(quote).join(' '),
        onProgress: (p) => bar.update(p),
      });
    } finally {
      bar.end();
    }
    if (v.json) {
      console.log(JSON.stringify(result.summary));
      return;
    }
    console.log(tables(result.summary, result.report.goals));
    for (const f of result.written) console.log(`wrote ${f}`);
  },
};

function table(title: string, rows: Record<string, MethodSummary>): string {
  const head = ['method', 'F1', 'IoU', 'P', 'R', 'img F1', 'img IoU', 'FP rate', 'flagged'];
  const num = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(3));
  const body = Object.entries(rows).map(([name, s]) => [
    name,
    num(s.pooled?.f1),
    num(s.pooled?.iou),
    num(s.pooled?.precision),
    num(s.pooled?.recall),
    num(s.perImage?.f1),
    num(s.perImage?.iou),
    s.nominal ? s.nominal.falsePositiveRate.toExponential(2) : '-',
    s.nominal ? `${(100 * s.nominal.flaggedImages).toFixed(1)}%` : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [title, line(head), ...body.map(line)].join('\n');
}

function shiftTable(sh: NonNullable<EvalSummary['shifted']>): string {
  const head = ['method', 'F1 plain', 'F1 shifted', 'F1 lost', 'over-marked plain', 'over-marked shifted'];
  const num = (x: number | null) => (x === null ? '-' : x.toFixed(3));
  const count = (list: readonly { method: string }[], m: string) => String(list.filter((o) => o.method === m).length);
  const body = Object.entries(sh.f1Lost).map(([m, l]) => [m, num(l.plain), num(l.shifted), num(l.lost), count(sh.overMarked.plain, m), count(sh.overMarked.shifted, m)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const title = `plain vs shifted (pooled F1; over-marked: images where the mask covers > ${100 * OVER_MARKING.marked}% of an image whose defects cover < ${100 * OVER_MARKING.truth}%):`;
  return [title, line(head), ...body.map(line)].join('\n');
}

function tables(s: EvalSummary, goals: readonly GoalCheck[]): string {
  const parts: string[] = [];
  for (const [type, rows] of Object.entries(s.perType)) parts.push(table(`${type}:`, rows));
  parts.push(table(`overall (${s.images.anomalous} anomalous, ${s.images.nominal} defect-free test images; F1..R pooled, img = mean per image):`, s.methods));
  if (s.shifted) {
    const sh = s.shifted;
    parts.push(table(`shifted test images (${sh.shift}), overall; detector and calibration unshifted:`, sh.methods));
    parts.push(shiftTable(sh));
  }
  if (goals.length) parts.push(['goals:', ...goals.map((g) => `  ${g.met ? 'met    ' : 'NOT met'}  ${g.goal}: ${g.detail}`)].join('\n'));
  parts.push(['methods:', ...Object.keys(s.methods).map((m) => `  ${m}: ${METHOD_DESCRIPTIONS[m as keyof typeof METHOD_DESCRIPTIONS]}`)].join('\n'));
  return parts.join('\n\n');
}
