// `ttt bench`: per-stage medians of the GPU pipeline and the CPU reference, side by side in one run.

import { benchFeatures } from './benchmarks/mobilenet.ts';
import { benchResnet } from './benchmarks/resnet.ts';
import { benchScore } from './benchmarks/score.ts';
import { benchTtt, formatTttTable, type TttBench } from './benchmarks/ttt.ts';
import { nodeGpu } from '../gpu/node.ts';
import { TttError } from '../core/errors.ts';
import { parse, intArg } from './args.ts';

const HELP = `usage: ttt bench [--size N ...] [--runs N] [--skip features,score,resnet50] [--json]

Times the test-time stage (statistics, pseudo-labels, gathering, classifier, prediction, regions) of the
GPU path (compute.stages=gpu), the host path (compute.stages=host) and the CPU reference on the same
synthetic N x N samples, interleaved, and prints
per-stage medians (default sizes 256 and 1024, 20 runs each). Then the MobileNetV2 forward pass (WGSL
against TensorFlow.js on the CPU) at the first size, the built-in scorer on a 256x256 image against a
bank of the default size (10,000 patches of ResNet-50 stage2 + stage3, 1536 channels): our path (network,
patch features, projected search, score map) against TensorFlow.js on the CPU doing the same forward and an
exact search (at most 10 runs each), and the ResNet-50 v2 forward to stage 3 at the first size (WGSL, at
most 10 runs, against TensorFlow.js on the CPU from the same weights, 3 runs).

  --size N   image size (repeatable; the first one is reported in the JSON's ttt and features keys)
  --runs N   timed runs per size after two warm-up runs (default 20)
  --skip L   leave out "features", "score" and/or "resnet50"
  --json     one JSON object: { ttt: { gpuMs, hostMs, cpuMs }, stages: { <size>: { gpu, host, cpu } },
             features: { gpuMs, tfjsMs }, score: { gpuMs, tfjsMs, gpuExactMs }, resnet50: { gpuMs, tfjsMs }, ... }`;

export const command = {
  summary: 'benchmark the GPU and host paths against the CPU reference',
  async run(argv: string[]): Promise<void> {
    const v = parse(argv, { size: { type: 'string', multiple: true }, runs: { type: 'string' }, skip: { type: 'string' }, json: { type: 'boolean' } }, HELP);
    const skip = new Set((v.skip ?? '').split(',').filter(Boolean));
    for (const s of skip) if (s !== 'features' && s !== 'score' && s !== 'resnet50') throw new TttError('INVALID_OPTION', `--skip takes features, score and/or resnet50, got ${JSON.stringify(s)}`);
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
    const otherRuns = Math.min(runs, 10);
    const features = skip.has('features') ? null : (await benchFeatures([sizes[0]], otherRuns))[0];
    const score = skip.has('score') ? null : await benchScore(undefined, 256, otherRuns);
    const resnet = skip.has('resnet50') ? null : (await benchResnet([sizes[0]], otherRuns))[0];
    if (v.json) {
      const first = results[0];
      console.log(
        JSON.stringify({
          adapter: adapterName,
          runs,
          ttt: { gpuMs: first.gpu.testTimeMs, hostMs: first.host.testTimeMs, cpuMs: first.cpu.testTimeMs, size: first.size },
          ...(features && { features: { gpuMs: features.gpuMs, tfjsMs: features.tfjsMs, ...(features.tfjsUnavailable && { tfjsUnavailable: features.tfjsUnavailable }), extractorMs: features.extractMs, size: features.size } }),
          ...(score && {
            score: {
              gpuMs: score.gpuMs, tfjsMs: score.tfjsMs, ...(score.tfjsUnavailable && { tfjsUnavailable: score.tfjsUnavailable }), gpuExactMs: score.gpuExactMs,
              search: score.search, backbone: score.backbone, bankSize: score.bankSize, size: score.size, channels: score.channels,
            },
          }),
          ...(resnet && {
            resnet50: {
              gpuMs: resnet.gpuMs, tfjsMs: resnet.tfjsMs, ...(resnet.tfjsUnavailable && { tfjsUnavailable: resnet.tfjsUnavailable }),
              extractorMs: resnet.extractMs, size: resnet.size, tfjsRuns: resnet.tfjsRuns,
            },
          }),
          stages: Object.fromEntries(results.map((r) => [String(r.size), { gpu: r.gpu.stages, host: r.host.stages, cpu: r.cpu.stages }])),
          sizes: results.map((r) => ({
            size: r.size,
            gpuMs: r.gpu.testTimeMs,
            hostMs: r.host.testTimeMs,
            cpuMs: r.cpu.testTimeMs,
            speedup: r.speedup,
            hostSpeedup: r.hostSpeedup,
            maskAgreement: r.maskAgreement,
            hostMaskAgreement: r.hostMaskAgreement,
            pseudoLabels: r.pseudoLabels,
          })),
        }),
      );
    } else {
      console.log(`adapter: ${adapterName}; ${runs} runs per size, medians in ms\n`);
      console.log(formatTttTable(results));
      if (features) {
        const tfjs = features.tfjsMs === null ? `no TensorFlow.js baseline: ${features.tfjsUnavailable}` : `TensorFlow.js CPU ${features.tfjsMs.toFixed(1)} ms (${(features.tfjsMs / features.gpuMs).toFixed(1)}x)`;
        console.log(`\nMobileNetV2 forward at ${features.size}x${features.size}: WGSL ${features.gpuMs.toFixed(1)} ms, ${tfjs}; whole extractor ${features.extractMs.toFixed(1)} ms`);
      }
      if (resnet) {
        const tfjs = resnet.tfjsMs === null ? `no TensorFlow.js baseline: ${resnet.tfjsUnavailable}` : `TensorFlow.js CPU ${resnet.tfjsMs.toFixed(1)} ms (${(resnet.tfjsMs / resnet.gpuMs).toFixed(1)}x)`;
        console.log(`ResNet-50 v2 forward to stage 3 at ${resnet.size}x${resnet.size}: WGSL ${resnet.gpuMs.toFixed(1)} ms, ${tfjs}; whole extractor ${resnet.extractMs.toFixed(1)} ms`);
      }
      if (score) {
        const tfjs = score.tfjsMs === null ? `no TensorFlow.js baseline: ${score.tfjsUnavailable}` : `TensorFlow.js CPU (exact search) ${score.tfjsMs.toFixed(1)} ms (${(score.tfjsMs / score.gpuMs).toFixed(1)}x)`;
        console.log(`PatchCore (${score.backbone}): ${score.size}x${score.size} image against ${score.bankSize} bank patches (${score.channels} channels): ${score.gpuMs.toFixed(1)} ms (${score.search} search), ${score.gpuExactMs.toFixed(1)} ms exact; ${tfjs}`);
      }
    }
  },
};
