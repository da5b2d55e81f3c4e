// The core is runtime-agnostic: the same segmentation under Deno (wgpu) must give the Node (Dawn) mask.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { resolveOptions } from '../../src/core/options.ts';
import { segment } from '../../src/core/pipeline.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { DENO_CASE } from '../deno/case.ts';
import { maxAbsDiff, testGpu } from '../helpers/gpu.ts';

const run = promisify(execFile);

it('segments identically under Deno and Node', async () => {
  const { stdout } = await run(
    'node_modules/.bin/deno',
    ['run', '--unstable-webgpu', '--allow-read', '--no-check', '--no-config', 'test/deno/segment.ts'],
    { maxBuffer: 64 << 20, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } },
  );
  const deno = JSON.parse(stdout.trim().split('\n').pop()!);
  const sample = syntheticSample(DENO_CASE.sample);
  const node = await segment(await testGpu(), { image: sample.image, scoreMap: sample.scoreMap }, resolveOptions(DENO_CASE.options));
  expect(deno.pseudoLabels).toEqual(node.pseudoLabels);
  expect(deno.epochs).toBe(node.classifier!.epochs);
  expect(maxAbsDiff(deno.weights, node.classifier!.weights)).toBeLessThan(1e-4);
  expect(node.predMask.some((v) => v === 1)).toBe(true);
  expect(deno.mask).toBe(Array.from(node.predMask).join(''));
});
