// The test-time stage benchmark: the GPU path, the host path (compute.stages) and the CPU reference side by
// side on the same synthetic samples, per-stage medians over repeated runs after a warm-up.

import type { Gpu } from '../../core/gpu.ts';
import { resolveOptions, type TttOptions } from '../../core/options.ts';
import { segment } from '../../core/pipeline.ts';
import { referenceSegment } from '../../core/reference/pipeline.ts';
import type { StageName } from '../../core/types.ts';
import { syntheticSample } from '../../synthetic.ts';

/** The stages of the test-time stage proper: everything after upload and feature extraction. */
export const TEST_TIME_STAGES: readonly StageName[] = ['stats', 'pseudoLabels', 'gather', 'classifier', 'predict', 'refine', 'regions'];
export const ALL_STAGES: readonly StageName[] = ['upload', 'features', ...TEST_TIME_STAGES];

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Median milliseconds of `runs` calls of `fn` after `warmup` untimed ones. */
export async function timeRuns(runs: number, fn: () => Promise<unknown> | unknown, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

export interface StageMedians {
  /** Median of the per-run sums over TEST_TIME_STAGES. */
  testTimeMs: number;
  /** Median of each stage. */
  stages: Record<string, number>;
}

export interface TttBench {
  size: number;
  runs: number;
  /** compute.stages=gpu */
  gpu: StageMedians;
  /** compute.stages=host */
  host: StageMedians;
  /** The reference pipeline (src/core/reference/). */
  cpu: StageMedians;
  /** cpu.testTimeMs / gpu.testTimeMs */
  speedup: number;
  /** cpu.testTimeMs / host.testTimeMs */
  hostSpeedup: number;
  /** Share of pixels where the GPU and CPU masks agree (last run). */
  maskAgreement: number;
  /** Share of pixels where the host and CPU masks agree (last run). */
  hostMaskAgreement: number;
  pseudoLabels: { anomalous: number; nominal: number };
}

function summarize(runs: Partial<Record<StageName, number>>[]): StageMedians {
  const stages: Record<string, number> = {};
  for (const s of ALL_STAGES) stages[s] = median(runs.map((r) => r[s] ?? 0));
  const testTimeMs = median(runs.map((r) => TEST_TIME_STAGES.reduce((a, s) => a + (r[s] ?? 0), 0)));
  return { testTimeMs, stages };
}

export async function benchTtt(
  gpu: Gpu,
  size: number,
  runs: number,
  // The filterbank on both sides: the reference pipeline has no network features, and the stage timed
  // here (statistics to regions) does not depend on where the features came from, only on their count.
  options: TttOptions = resolveOptions({ 'features.extractor': 'filterbank' }),
  onProgress?: (msg: string) => void,
): Promise<TttBench> {
  const sample = syntheticSample({ width: size, height: size, seed: 42, defects: 3 });
  const input = { image: sample.image, scoreMap: sample.scoreMap };
  const onGpu = resolveOptions({ 'compute.stages': 'gpu' }, options);
  const onHost = resolveOptions({ 'compute.stages': 'host' }, options);
  // Warm-up: pipeline compilation, buffer pool, the JIT of the host loops.
  for (let i = 0; i < 2; i++) await segment(gpu, input, onGpu);
  for (let i = 0; i < 5; i++) await segment(gpu, input, onHost);
  const gpuRuns: Partial<Record<StageName, number>>[] = [];
  const hostRuns: Partial<Record<StageName, number>>[] = [];
  const cpuRuns: Partial<Record<StageName, number>>[] = [];
  const agree = (a: Uint8Array, b: Uint8Array) => {
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    return same / a.length;
  };
  let agreement = 0;
  let hostAgreement = 0;
  let counts = { anomalous: 0, nominal: 0 };
  // Interleave the three so that machine noise hits all alike.
  for (let r = 0; r < runs; r++) {
    const g = await segment(gpu, input, onGpu);
    const h = await segment(gpu, input, onHost);
    const c = referenceSegment(input, options);
    gpuRuns.push(g.timings);
    hostRuns.push(h.timings);
    cpuRuns.push(c.timings);
    agreement = agree(g.predMask, c.predMask);
    hostAgreement = agree(h.predMask, c.predMask);
    counts = { anomalous: g.pseudoLabels?.anomalous ?? 0, nominal: g.pseudoLabels?.nominal ?? 0 };
    onProgress?.(`${size}x${size}: run ${r + 1}/${runs}`);
  }
  const gpuM = summarize(gpuRuns);
  const hostM = summarize(hostRuns);
  const cpuM = summarize(cpuRuns);
  return {
    size,
    runs,
    gpu: gpuM,
    host: hostM,
    cpu: cpuM,
    speedup: cpuM.testTimeMs / gpuM.testTimeMs,
    hostSpeedup: cpuM.testTimeMs / hostM.testTimeMs,
    maskAgreement: agreement,
    hostMaskAgreement: hostAgreement,
    pseudoLabels: counts,
  };
}

export function formatTttTable(results: readonly TttBench[]): string {
  const rows = ['| stage | ' + results.map((r) => `GPU ${r.size}² ms | host ${r.size}² ms | CPU ref. ${r.size}² ms`).join(' | ') + ' |'];
  rows.push('|---|' + results.map(() => '---:|---:|---:').join('|') + '|');
  for (const s of ALL_STAGES) {
    rows.push(`| ${s} | ` + results.map((r) => `${r.gpu.stages[s].toFixed(2)} | ${r.host.stages[s].toFixed(2)} | ${r.cpu.stages[s].toFixed(2)}`).join(' | ') + ' |');
  }
  rows.push(
    '| **test-time stage** | ' +
      results.map((r) => `**${r.gpu.testTimeMs.toFixed(2)}** | **${r.host.testTimeMs.toFixed(2)}** | **${r.cpu.testTimeMs.toFixed(2)}**`).join(' | ') +
      ' |',
  );
  rows.push('| speed-up over the CPU reference | ' + results.map((r) => `${r.speedup.toFixed(2)}x | ${r.hostSpeedup.toFixed(2)}x | `).join(' | ') + ' |');
  return rows.join('\n');
}
