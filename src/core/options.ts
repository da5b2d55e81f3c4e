// Every tunable of the pipeline, declared once with its default, range and meaning. The CLI's
// `--set key=value`, the GraphQL `options` argument and the README's table all come from this list.

import { TttError } from './errors.ts';
import { DEFAULT_LAYERS } from './features/mobilenet/extractor.ts';

export type Loss = 'hinge' | 'squared_hinge' | 'logistic';
export type Extractor = 'filterbank' | 'mobilenetv2' | 'resnet50' | 'combined' | 'supplied';
/** The feature sources features.extractor=combined concatenates (features.sources). */
export const FEATURE_SOURCES = ['image', 'filterbank', 'mobilenetv2', 'resnet50:stem', 'resnet50:stage1', 'resnet50:stage2', 'resnet50:stage3'] as const;
export type FeatureSourceName = (typeof FEATURE_SOURCES)[number];
/** The fine sources the refining classifier may use (refine.sources): no network, so its cost stays that of the filterbank. */
export const REFINE_SOURCES = ['image', 'filterbank'] as const;
export type RefineSourceName = (typeof REFINE_SOURCES)[number];
export type GateMode = 'off' | 'max' | 'sigma';
export type Modality = 'auto' | 'rgb' | '3d' | 'both';
export type StagePlacementOption = 'auto' | 'gpu' | 'host';

export interface TttOptions {
  seed: number;
  features: {
    extractor: Extractor;
    sources: FeatureSourceName[];
    groupNormalize: boolean;
    sigmas: number[];
    layers: string[];
    inputSize: number;
    modality: Modality;
    geometryScales: number[];
  };
  pseudoLabels: {
    anomalousPercentile: number;
    radius: number;
    nominalCount: number;
    /** Nominal pseudo-labels only at or below this percentile of the map; 100 = no restriction. */
    nominalPercentile: number;
    seedFloor: 'off' | 'sigma';
    seedFloorSigmas: number;
  };
  classifier: {
    loss: Loss;
    lambda: number;
    /** LinearSVC's C: when > 0, lambda = 1 / (svmC x training rows) for each image (classifier.lambda unused). */
    svmC: number;
    regularizeBias: boolean;
    learningRate: number;
    epochs: number;
    batchSize: number;
    balanced: boolean;
    tolerance: number;
    patience: number;
  };
  gate: { mode: GateMode; factor: number; sigmas: number };
  map: { borderNormalize: boolean; level: 'off' | 'median' | 'down' };
  mask: { scoreFloor: 'off' | 'sigma'; scoreFloorSigmas: number; scoreFloorPercentile: number; peakFraction: number; peakCompactShare: number; regionFraction: number; closeRadius: number; fillHoles: boolean };
  refine: { mode: 'off' | 'local'; sources: RefineSourceName[]; ring: number; grow: number; nominalCount: number };
  regions: { connectivity: 4 | 8; minArea: number };
  compute: { stages: StagePlacementOption };
}

type Kind =
  | { type: 'int'; min: number; max: number }
  | { type: 'number'; min: number; max: number; exclusiveMin?: boolean }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'list'; min: number; max: number; maxItems: number }
  | { type: 'names'; maxItems: number; values?: readonly string[] };

export interface OptionSpec {
  key: string;
  kind: Kind;
  default: unknown;
  doc: string;
}

export const OPTION_SPECS: readonly OptionSpec[] = [
  { key: 'seed', kind: { type: 'int', min: 0, max: 0xffffffff }, default: 0, doc: 'Seed of every random draw (nominal pseudo-labels, SGD batches).' },
  { key: 'features.extractor', kind: { type: 'enum', values: ['filterbank', 'mobilenetv2', 'resnet50', 'combined', 'supplied'] }, default: 'mobilenetv2', doc: 'Feature source: the built-in filterbank, the pretrained MobileNetV2 (features.layers; ImageNet weights unless `TTT_MOBILENET_WEIGHTS` says otherwise), the pretrained ImageNet ResNet-50 v2 (features.layers), the sources of features.sources concatenated (combined), or the feature maps supplied with the input (chosen automatically when supplied).' },
  { key: 'features.sources', kind: { type: 'names', maxItems: 7, values: FEATURE_SOURCES }, default: ['image', 'mobilenetv2'], doc: 'The sources features.extractor=combined concatenates, in order: image: the image\'s own channels (intensity, or R, G, B); filterbank: the built-in filterbank (features.sigmas); mobilenetv2: the network\'s maps (features.layers, features.inputSize); resnet50:stem, resnet50:stage1, resnet50:stage2, resnet50:stage3: one activated output of ResNet-50 v2 (strides 4, 4, 8, 16; features.inputSize), the network run once for all of them. Each source is one channel group (features.groupNormalize).' },
  { key: 'features.groupNormalize', kind: { type: 'bool' }, default: true, doc: 'With features.extractor=combined: after every channel is standardized (zero mean, unit deviation over the image), the channels of each source are multiplied by 1 / sqrt(channels of that source), so that every source has the same total variance (1) in the classifier\'s regularized linear fit, whatever its channel count (a 3-channel image group weighs as much as a 320-channel network group); false: every channel at unit variance.' },
  { key: 'features.sigmas', kind: { type: 'list', min: 0.5, max: 32, maxItems: 8 }, default: [1, 2, 4], doc: 'Gaussian scales (pixels at the working resolution) of the filterbank.' },
  { key: 'features.layers', kind: { type: 'names', maxItems: 8 }, default: [...DEFAULT_LAYERS], doc: 'Layers of the mobilenetv2 or resnet50 extractor, each averaged over 3x3 and resampled to the working resolution (MobileNetV2 block outputs: block_2_add stride 4, block_5_add stride 8, block_12_add stride 16; ResNet-50 activated outputs: stem and stage1 stride 4, stage2 stride 8, stage3 stride 16, where the MobileNetV2 default stands for stage1,stage2,stage3).' },
  { key: 'features.inputSize', kind: { type: 'int', min: 0, max: 2048 }, default: 0, doc: 'Longest side in pixels of the mobilenetv2 input (the image is resized to it, keeping its aspect ratio); 0: the working resolution.' },
  { key: 'features.modality', kind: { type: 'enum', values: ['auto', 'rgb', '3d', 'both'] }, default: 'auto', doc: 'What the classifier sees: rgb: the image features (features.extractor); 3d: the 3-D features of the point cloud (features.geometryScales); both: the two concatenated; auto: both when a point cloud is given, else rgb. Invalid points of a point cloud are masked out whatever the modality.' },
  { key: 'features.geometryScales', kind: { type: 'list', min: 1, max: 16, maxItems: 4 }, default: [2, 4], doc: 'Radii (pixels at the working resolution, rounded) of the windows of the 3-D features: per radius the normal, surface variation, spread of the plane distance and normal deviation, plus the distance to the fitted background plane (1 + 6 per radius channels).' },
  { key: 'map.borderNormalize', kind: { type: 'bool' }, default: true, doc: 'With a calibration that has a border profile (calibrations computed since it exists), normalize the map at the working resolution first: each pixel becomes (score - nominal mean) / nominal std of its distance to the map border (32 bands of 1/256 of the longest side), which removes a detector\'s border bias; the gate, floors, image score, region scores and map statistics are then in nominal standard deviations.' },
  { key: 'map.level', kind: { type: 'enum', values: ['off', 'median', 'down'] }, default: 'off', doc: 'With a calibration, the calibrated thresholds (the gate, pseudoLabels.seedFloor, mask.scoreFloor) follow the level of the image\'s own map: they move by the map\'s median minus the nominal global mean (after map.borderNormalize), so that a drift of the line that moves the whole map (lighting, exposure, finish) does not move what is marked; median: either way; down: only when the image scores lower overall; off: the calibration as it is.' },
  { key: 'pseudoLabels.anomalousPercentile', kind: { type: 'number', min: 50, max: 100 }, default: 99, doc: 'Anomalous seeds are 3x3 local maxima of the map at or above this percentile.' },
  { key: 'pseudoLabels.radius', kind: { type: 'int', min: 0, max: 16 }, default: 1, doc: 'Seeds are dilated by a square of this radius (1 = 3x3).' },
  { key: 'pseudoLabels.nominalCount', kind: { type: 'int', min: 1, max: 100000 }, default: 500, doc: 'Nominal pseudo-labels drawn uniformly without replacement among the pixels that are not anomalous.' },
  { key: 'pseudoLabels.nominalPercentile', kind: { type: 'number', min: 1, max: 100 }, default: 30, doc: 'Draw nominal pixels only at or below this percentile of the map (100: anywhere outside the anomalous set).' },
  { key: 'pseudoLabels.seedFloor', kind: { type: 'enum', values: ['off', 'sigma'] }, default: 'sigma', doc: 'With a calibration, sigma: anomalous seeds must also score at least the nominal global mean + seedFloorSigmas x std (an image without such a seed gets an empty mask); off: the percentile alone.' },
  { key: 'pseudoLabels.seedFloorSigmas', kind: { type: 'number', min: 0, max: 100 }, default: 2, doc: 'Standard deviations above the nominal mean for pseudoLabels.seedFloor=sigma.' },
  { key: 'classifier.loss', kind: { type: 'enum', values: ['hinge', 'logistic', 'squared_hinge'] }, default: 'hinge', doc: 'hinge: a linear SVM; squared_hinge: a linear SVM with the squared hinge max(0, 1 - y f)^2 (the loss of scikit-learn\'s LinearSVC, the paper\'s classifier); logistic: logistic regression.' },
  { key: 'classifier.lambda', kind: { type: 'number', min: 0, max: 100 }, default: 0.001, doc: 'L2 regularization strength of the weights (the objective is lambda/2 w.w + the mean loss); unused when classifier.svmC is set.' },
  { key: 'classifier.svmC', kind: { type: 'number', min: 0, max: 1e6 }, default: 0, doc: 'When > 0, the C of a LinearSVC (1/2 w.w + C x the sum of the losses): each image trains with lambda = 1 / (svmC x its training rows), the same minimizer; 0: classifier.lambda.' },
  { key: 'classifier.regularizeBias', kind: { type: 'bool' }, default: false, doc: 'Regularize the bias as a weight (lambda/2 b^2), as liblinear (LinearSVC) does with its intercept; false: the bias is free.' },
  { key: 'classifier.learningRate', kind: { type: 'number', min: 0, max: 100, exclusiveMin: true }, default: 0.1, doc: 'Initial SGD step; step t uses lr / (1 + lr * lambda * t).' },
  { key: 'classifier.epochs', kind: { type: 'int', min: 1, max: 10000 }, default: 50, doc: 'Epoch budget (an epoch is ceil(rows / batchSize) steps).' },
  { key: 'classifier.batchSize', kind: { type: 'int', min: 1, max: 256 }, default: 64, doc: 'Rows per SGD step, drawn with replacement.' },
  { key: 'classifier.balanced', kind: { type: 'bool' }, default: true, doc: 'Weight each class by rows / (2 * class rows).' },
  { key: 'classifier.tolerance', kind: { type: 'number', min: 0, max: 1 }, default: 0.001, doc: 'Early stop: an epoch improves when its loss falls below the best by this relative amount.' },
  { key: 'classifier.patience', kind: { type: 'int', min: 1, max: 10000 }, default: 5, doc: 'Early stop after this many epochs without improvement.' },
  { key: 'gate.mode', kind: { type: 'enum', values: ['off', 'max', 'sigma'] }, default: 'sigma', doc: 'Image-level gate (needs a calibration): max: anomalous when the image score exceeds factor x the largest nominal image score; sigma: when it exceeds mean + sigmas x std of the nominal image scores; off: always train.' },
  { key: 'gate.factor', kind: { type: 'number', min: 0, max: 100 }, default: 1, doc: 'Multiplier of the largest nominal image score for gate.mode=max.' },
  { key: 'gate.sigmas', kind: { type: 'number', min: 0, max: 100 }, default: 0, doc: 'Standard deviations above the mean nominal image score for gate.mode=sigma.' },
  { key: 'mask.scoreFloor', kind: { type: 'enum', values: ['off', 'sigma'] }, default: 'sigma', doc: 'With a calibration, sigma: a pixel the classifier calls defective stays in the mask only where its score is above the nominal global mean + scoreFloorSigmas x std; off: the classifier alone.' },
  { key: 'mask.scoreFloorSigmas', kind: { type: 'number', min: 0, max: 100 }, default: 1.5, doc: 'Standard deviations above the nominal mean for mask.scoreFloor=sigma.' },
  { key: 'mask.scoreFloorPercentile', kind: { type: 'number', min: 0, max: 100 }, default: 0, doc: 'With mask.scoreFloor=sigma, the floor is at most this percentile of the image\'s own map (0: off): where a drift of the line lowers or flattens the whole map, the floor follows the image instead of staying at the calibrated level.' },
  { key: 'mask.peakFraction', kind: { type: 'number', min: 0, max: 1 }, default: 0.6, doc: 'In each connected region of the classifier\'s mask, keep only the pixels scoring at least the mask floor + this fraction of the way to the region\'s highest score (0: off): the extent follows the region\'s own peak.' },
  { key: 'mask.peakCompactShare', kind: { type: 'number', min: 0, max: 1 }, default: 0.04, doc: 'With mask.peakFraction: only regions whose pixels at half their peak cover at most this share of the image get the peak\'s floor (a compact peak: a small defect); wider ones stay whole (0: every region).' },
  { key: 'mask.regionFraction', kind: { type: 'number', min: 0, max: 1 }, default: 0, doc: 'A connected region of the classifier\'s mask stays only where its highest score is at least this fraction of the way from the mask floor to the image\'s highest score (0: off): weak regions beside a strong defect go.' },
  { key: 'mask.closeRadius', kind: { type: 'int', min: 0, max: 16 }, default: 0, doc: 'Morphological closing of the classifier\'s mask by a square of this radius (a dilation then an erosion, window clipped at the border), before the holes are filled and the regions measured; 0: none.' },
  { key: 'mask.fillHoles', kind: { type: 'bool' }, default: true, doc: 'Fill the holes of the mask (clear pixels not connected to the image border), after the closing.' },
  { key: 'refine.mode', kind: { type: 'enum', values: ['off', 'local'] }, default: 'off', doc: 'local: a second classifier on fine features (refine.sources) refines the mask before its holes are filled: trained on the first pass\'s anomalous seeds inside the mask against a draw from the ring of refine.ring pixels around it, its decision keeps the mask\'s pixels that look like the seeds (and may add pixels within refine.grow of the mask); off: the first classifier\'s mask. Meant with mask.peakFraction=0: the peak floor, applied after it, would cut the edges it finds back (docs/results.md, "The peak floor").' },
  { key: 'refine.sources', kind: { type: 'names', maxItems: 2, values: REFINE_SOURCES }, default: ['image', 'filterbank'], doc: 'The fine feature sources of the refining classifier, at the working resolution (image: the image\'s own channels; filterbank: features.sigmas), each one group.' },
  { key: 'refine.ring', kind: { type: 'int', min: 1, max: 64 }, default: 6, doc: 'Width in pixels of the ring around the mask that the refining classifier\'s nominal rows are drawn from.' },
  { key: 'refine.grow', kind: { type: 'int', min: 0, max: 16 }, default: 0, doc: 'The refined mask may extend this many pixels beyond the first mask (0: it only removes pixels).' },
  { key: 'refine.nominalCount', kind: { type: 'int', min: 1, max: 100000 }, default: 1000, doc: 'Nominal rows of the refining classifier drawn from the ring.' },
  { key: 'regions.connectivity', kind: { type: 'enum', values: ['4', '8'] }, default: 8, doc: 'Pixel connectivity of the mask regions.' },
  { key: 'regions.minArea', kind: { type: 'int', min: 0, max: 1 << 30 }, default: 0, doc: 'Regions smaller than this many pixels are removed from the mask.' },
  { key: 'compute.stages', kind: { type: 'enum', values: ['auto', 'gpu', 'host'] }, default: 'auto', doc: 'Where the test-time stage runs (map statistics, pseudo-labels, standardization of supplied features, gathering, classifier, prediction): gpu: WGSL kernels; host: plain TypeScript on the CPU (same pseudo-labels, the classifier equal up to summation order; features from the extractor are computed on the GPU and read back); auto: host on a software adapter (lavapipe, a fallback adapter), whose kernels run on the same CPU cores, else gpu. Which stage ran where is reported with the timings.' },
];

const SPEC_BY_KEY = new Map(OPTION_SPECS.map((s) => [s.key, s]));

export function defaultOptions(): TttOptions {
  const out = {} as Record<string, unknown>;
  for (const s of OPTION_SPECS) setPath(out, s.key, structuredClone(s.default));
  return out as unknown as TttOptions;
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
  o[parts[parts.length - 1]] = value;
}

function getPath(obj: unknown, key: string): unknown {
  let o = obj as Record<string, unknown> | undefined;
  for (const p of key.split('.')) o = o?.[p] as Record<string, unknown> | undefined;
  return o;
}

function bad(key: string, msg: string): never {
  throw new TttError('INVALID_OPTION', `option ${key}: ${msg}`);
}

/** Checks and normalizes one value (strings as given on a command line are parsed). */
export function parseOptionValue(key: string, value: unknown): unknown {
  const spec = SPEC_BY_KEY.get(key);
  if (!spec) bad(key, `unknown option (known: ${OPTION_SPECS.map((s) => s.key).join(', ')})`);
  const k = spec.kind;
  const num = (v: unknown): number => {
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) bad(key, `expected a number, got ${JSON.stringify(v)}`);
    return n;
  };
  switch (k.type) {
    case 'int': {
      const n = num(value);
      if (!Number.isInteger(n)) bad(key, `expected an integer, got ${n}`);
      if (n < k.min || n > k.max) bad(key, `${n} is outside [${k.min}, ${k.max}]`);
      return n;
    }
    case 'number': {
      const n = num(value);
      if (n < k.min || n > k.max || (k.exclusiveMin && n === k.min)) bad(key, `${n} is outside ${k.exclusiveMin ? '(' : '['}${k.min}, ${k.max}]`);
      return n;
    }
    case 'bool':
      if (value === true || value === 'true' || value === '1') return true;
      if (value === false || value === 'false' || value === '0') return false;
      return bad(key, `expected true or false, got ${JSON.stringify(value)}`);
    case 'enum': {
      const s = String(value);
      if (!k.values.includes(s)) bad(key, `expected one of ${k.values.join(', ')}, got ${JSON.stringify(value)}`);
      return key === 'regions.connectivity' ? Number(s) : s;
    }
    case 'names': {
      const items = Array.isArray(value) ? value.map(String) : String(value).split(',');
      const names = items.map((v) => v.trim());
      if (names.length === 0 || names.length > k.maxItems) bad(key, `expected 1 to ${k.maxItems} names`);
      const what = k.values ? 'source' : 'layer';
      for (const n of names) {
        if (k.values && !k.values.includes(n)) bad(key, `${JSON.stringify(n)} is not one of ${k.values.join(', ')}`);
        if (!/^[A-Za-z0-9_./:-]+$/.test(n)) bad(key, `${JSON.stringify(n)} is not a ${what} name`);
      }
      if (new Set(names).size !== names.length) bad(key, `a ${what} is listed twice`);
      return names;
    }
    case 'list': {
      const items = Array.isArray(value) ? value : String(value).split(',');
      if (items.length === 0 || items.length > k.maxItems) bad(key, `expected 1 to ${k.maxItems} values`);
      return items.map((v) => {
        const n = num(v);
        if (n < k.min || n > k.max) bad(key, `${n} is outside [${k.min}, ${k.max}]`);
        return n;
      });
    }
  }
}

/** Options from defaults with overrides: a flat map of dotted keys, or a nested object. */
export function resolveOptions(overrides: Record<string, unknown> = {}, base: TttOptions = defaultOptions()): TttOptions {
  const out = structuredClone(base) as unknown as Record<string, unknown>;
  for (const [key, value] of flatten(overrides)) setPath(out, key, parseOptionValue(key, value));
  return out as unknown as TttOptions;
}

function flatten(obj: Record<string, unknown>, prefix = ''): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !SPEC_BY_KEY.has(key)) out.push(...flatten(v as Record<string, unknown>, key));
    else out.push([key, v]);
  }
  return out;
}

/** `key=value` strings (the CLI's --set) into a flat override map. */
export function parseAssignments(assignments: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new TttError('INVALID_OPTION', `--set expects key=value, got ${JSON.stringify(a)}`);
    out[a.slice(0, eq).trim()] = a.slice(eq + 1).trim();
  }
  return out;
}

/** The options as a flat map of dotted keys (for storage and reports). */
export function flattenOptions(options: TttOptions): Record<string, unknown> {
  return Object.fromEntries(OPTION_SPECS.map((s) => [s.key, getPath(options, s.key)]));
}
