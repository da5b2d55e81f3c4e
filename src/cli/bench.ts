// `ttt bench`: per-stage medians of the GPU pipeline and the CPU reference, side by side in one run.

import { benchTtt, formatTttTable, type TttBench } from '../../bench/ttt.ts';
import { nodeGpu } from '../gpu/node.ts';
import { TttError } from '../core/errors.ts';
import { parse, intArg } from './args.ts';

const HELP = `usage: ttt bench [--size N ...] [--runs N] [--json]

Times the test-time stage (statistics, pseudo-labels, gathering, classifier, prediction, regions) of the
GPU pipeline and of the CPU reference on the same synthetic N x N samples, interleaved, and prints
per-stage medians (default sizes 256 and 1024, 20 runs each).

  --size N   image size (repeatable; the first one is reported in the JSON's ttt key)
  --runs N   timed runs per size after two warm-up runs (default 20)
  --json     one JSON object: { ttt: { gpuMs, cpuMs }, stages: { <size>: { gpu, cpu } }, ... }`;

export const command = {
  summary: 'benchmark the GPU pipeline against the CPU reference',
  async run(argv: string[]): Promise<void> {
    const v = parse(argv, { size: { type: 'string', multiple: true }, runs: { type: 'string' }, json: { type: 'boolean' } }, HELP);
    const sizes = (v.size ?? ['256', '1024']).map((s) => intArg('size', s, 256, 8, 8192));
    const runs = intArg('runs', v.runs, 20, 1, 10000);
    const { gpu, adapterName } = await nodeGpu();
    const progress = (msg: string) => {
      if (process.stderr.isTTY) process.stderr.write(`\r${msg}   `);
    };
    const results: TttBench[] = [];
    for (const size of sizes) results.push(await benchTtt(gpu, size, runs, undefined, progress));
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    if (results.length === 0) throw new TttError('INVALID_OPTION', 'no sizes given');
    if (v.json) {
      const first = results[0];
      console.log(
        JSON.stringify({
          adapter: adapterName,
          runs,
          ttt: { gpuMs: first.gpu.testTimeMs, cpuMs: first.cpu.testTimeMs, size: first.size },
          stages: Object.fromEntries(results.map((r) => [String(r.size), { gpu: r.gpu.stages, cpu: r.cpu.stages }])),
          sizes: results.map((r) => ({
            size: r.size,
            gpuMs: r.gpu.testTimeMs,
            cpuMs: r.cpu.testTimeMs,
            speedup: r.speedup,
            maskAgreement: r.maskAgreement,
            pseudoLabels: r.pseudoLabels,
          })),
        }),
      );
    } else {
      console.log(`adapter: ${adapterName}; ${runs} runs per size, medians in ms\n`);
      console.log(formatTttTable(results));
    }
  },
};
