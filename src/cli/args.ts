// Shared argument handling of the subcommands (node:util parseArgs with a usage error type).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TttError } from '../core/errors.ts';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, help: string) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true });
  } catch (e) {
    throw new TttError('INVALID_OPTION', `${(e as Error).message}\n\n${help}`);
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(help);
    process.exit(0);
  }
  return parsed.values;
}

export function intArg(name: string, value: string | undefined, fallback: number, min = 1, max = 1 << 20): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new TttError('INVALID_OPTION', `--${name} expects an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  return n;
}
