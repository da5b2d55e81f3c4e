// The options that buy GPU (or CPU) time, and which way each one costs more: a product's option limits
// bound what a submission may ask of them. The inspection's time limit bounds the rest.

import { TttError } from './errors.ts';
import { flattenOptions, parseOptionValue, type TttOptions } from './options.ts';

type Direction =
  /** A larger number costs more. */
  | 'higher'
  /** A smaller number costs more (tolerance: a smaller one trains longer). */
  | 'lower'
  /** A longer list costs more (more scales, more layers). */
  | 'longer'
  /** features.inputSize: a larger side costs more, and 0 (the image's own size) most. */
  | 'inputSize';

/** Cost options, with the way they cost more. */
export const COST_OPTIONS: ReadonlyMap<string, Direction> = new Map<string, Direction>([
  ['classifier.epochs', 'higher'],
  ['classifier.patience', 'higher'],
  ['classifier.tolerance', 'lower'],
  ['classifier.batchSize', 'higher'],
  ['pseudoLabels.nominalCount', 'higher'],
  ['pseudoLabels.radius', 'higher'],
  ['features.inputSize', 'inputSize'],
  ['features.sigmas', 'longer'],
  ['features.layers', 'longer'],
  ['features.sources', 'longer'],
  ['features.geometryScales', 'longer'],
  ['mask.closeRadius', 'higher'],
  ['refine.sources', 'longer'],
  ['refine.nominalCount', 'higher'],
  ['refine.ring', 'higher'],
]);

/** A value on a scale where larger costs more. */
function costOf(direction: Direction, value: unknown): number {
  switch (direction) {
    case 'higher':
      return value as number;
    case 'lower':
      return -(value as number);
    case 'longer':
      return (value as unknown[]).length;
    case 'inputSize':
      return (value as number) === 0 ? Infinity : (value as number);
  }
}

const show = (v: unknown) => (Array.isArray(v) ? `${v.length} (${v.join(', ')})` : String(v));

/** Validates option limits (cost options only, values as the option takes them); returns them normalized. */
export function parseOptionLimits(limits: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(limits)) {
    if (!COST_OPTIONS.has(key)) {
      throw new TttError('INVALID_OPTION', `option ${key} has no limit: limits apply to the options that cost processing time (${[...COST_OPTIONS.keys()].join(', ')})`);
    }
    out[key] = parseOptionValue(key, value);
  }
  return out;
}

/**
 * Refuses `requested` (the options an inspection would run with) where a cost option asks more than its
 * limit: the product's limit for it, else the product's own value (`product`, its options on the defaults).
 */
export function checkOptionLimits(requested: TttOptions, product: TttOptions, limits: Readonly<Record<string, unknown>>): void {
  const want = flattenOptions(requested);
  const own = flattenOptions(product);
  for (const [key, direction] of COST_OPTIONS) {
    const explicit = key in limits;
    const cap = explicit ? limits[key] : own[key];
    if (costOf(direction, want[key]) > costOf(direction, cap)) {
      const bound = direction === 'lower' ? 'at least' : direction === 'longer' ? 'at most this many values:' : 'at most';
      const source = explicit ? "the product's limit" : "the product's own value (an ADMIN may raise it with setProductOptionLimits)";
      throw new TttError('INVALID_OPTION', `option ${key}: ${show(want[key])} asks for more processing than this product allows: ${bound} ${show(cap)}, ${source}`);
    }
  }
}
