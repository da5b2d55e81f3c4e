// Pipeline options as the API carries them: a list of {key, value} strings, validated against the core's
// option table and stored as a map of dotted keys to normalized values.

import { TttError } from '../core/errors.ts';
import { parseOptionValue } from '../core/options.ts';

export interface OptionPair {
  key: string;
  value: string;
}

export type OptionOverrides = Record<string, unknown>;

export function parseOptionPairs(pairs: readonly OptionPair[] | null | undefined): OptionOverrides {
  const out: OptionOverrides = {};
  for (const { key, value } of pairs ?? []) {
    if (key in out) throw new TttError('INVALID_OPTION', `option ${key} is given twice`);
    out[key] = parseOptionValue(key, value);
  }
  return out;
}

export function optionPairs(stored: unknown): OptionPair[] {
  if (stored === null || typeof stored !== 'object') return [];
  return Object.entries(stored as OptionOverrides)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => ({ key, value: Array.isArray(value) ? value.join(',') : String(value) }));
}
