// Runs one segmentation of a synthetic sample through the core under Deno and prints the result as JSON
// (the mask as a string of 0/1), for test/core/deno.test.ts to compare with the Node run.
import { denoGpu } from '../../src/gpu/deno.ts';
import { segment } from '../../src/core/pipeline.ts';
import { resolveOptions } from '../../src/core/options.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { DENO_CASE } from './case.ts';

const { gpu, adapterName } = await denoGpu();
const sample = syntheticSample(DENO_CASE.sample);
const r = await segment(gpu, { image: sample.image, scoreMap: sample.scoreMap }, resolveOptions(DENO_CASE.options));
console.log(
  JSON.stringify({
    adapterName,
    pseudoLabels: r.pseudoLabels,
    epochs: r.classifier?.epochs,
    weights: r.classifier?.weights,
    mask: Array.from(r.predMask).join(''),
  }),
);
