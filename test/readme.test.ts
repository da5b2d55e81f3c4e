// The README stays true: its options table is the one the code declares, and the commands it gives exist.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { optionsMarkdown } from '../src/core/optionsTable.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

it('lists every option with its default', () => {
  const block = readme.split('<!-- options:start -->')[1]?.split('<!-- options:end -->')[0]?.trim();
  expect(block).toBe(optionsMarkdown());
});

it('gives npm test as the test command, which .ci/run runs', () => {
  expect(readme).toMatch(/^npm test\b/m);
  expect(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')).toMatch(/^npm test$/m);
});
