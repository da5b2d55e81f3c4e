// The test-time stage against the paper's toolset on the same inputs: bench/peer/ttt_stage.py (numpy,
// scipy, scikit-learn's LinearSVC, Debian's python3 packages) and our host stage (src/core/hostStage.ts),
// side by side in one run: blocks of ours and of the peer's alternate, so that load from other work on the
// machine hits both; medians of wall and CPU time and their ratios.
//
//   npx tsx bench/peer.ts [--sizes 256,1024] [--channels 25,152] [--runs 9] [--blocks 3]

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hostTestTimeStage } from '../src/core/hostStage.ts';
import { defaultOptions } from '../src/core/options.ts';
import { requestedPercentiles } from '../src/core/pipeline.ts';
import { encodeNpy } from '../src/io/npy.ts';
import { syntheticFeatures, syntheticSample } from '../src/synthetic.ts';
import { median } from '../src/cli/benchmarks/ttt.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'peer', 'ttt_stage.py');

export interface PeerRow {
  size: number;
  channels: number;
  /** Median wall milliseconds. */
  peerMs: number;
  oursMs: number;
  ratio: number;
  /** Median CPU milliseconds (the process's, all threads). */
  peerCpuMs: number;
  oursCpuMs: number;
  cpuRatio: number;
  peer: { anomalous: number; nominal: number; defectPixels: number };
  ours: { anomalous: number; nominal: number; defectPixels: number };
}

/** Which BLAS kernel the peer's numpy runs (threadpoolctl), for the record. */
export function peerBlas(): string {
  const r = spawnSync(PYTHON, ['-c', 'import numpy, threadpoolctl, json; print(json.dumps([(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpoolctl.threadpool_info()]))'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : `unknown (${r.stderr.trim().split('\n').pop()})`;
}

export function benchPeer(size: number, channels: number, runs: number, blocks = 3): PeerRow {
  const sample = syntheticSample({ width: size, height: size, seed: 42, defects: 3 });
  const features = syntheticFeatures(sample, channels, 1);
  const options = defaultOptions();
  const percentiles = requestedPercentiles(options);
  const dir = mkdtempSync(join(tmpdir(), 'ttt-peer-'));
  try {
    writeFileSync(join(dir, 'map.npy'), encodeNpy(sample.scoreMap.data, [size, size]));
    writeFileSync(join(dir, 'features.npy'), encodeNpy(features.data, [channels, size, size]));
    const p = options.pseudoLabels;
    const params = {
      anomalousPercentile: p.anomalousPercentile,
      nominalPercentile: p.nominalPercentile,
      radius: p.radius,
      nominalCount: p.nominalCount,
      lambda: options.classifier.lambda,
      maxIter: 1000,
      seed: options.seed,
      runs: Math.ceil(runs / blocks),
    };
    writeFileSync(join(dir, 'params.json'), JSON.stringify(params));
    const run = () => hostTestTimeStage(sample.scoreMap, features, options, percentiles);
    // Warm-up until the JIT has compiled the loops (as in a service that has run a few inspections).
    for (let i = 0, t0 = performance.now(); i < 3 || performance.now() - t0 < 500; i++) run();
    const cpuNow = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    const wall: number[] = [];
    const cpu: number[] = [];
    const peerWall: number[] = [];
    const peerCpu: number[] = [];
    let last = run();
    let peer = { anomalous: 0, nominal: 0, defectPixels: 0 };
    for (let b = 0; b < blocks; b++) {
      for (let i = 0; i < params.runs; i++) {
        const c0 = cpuNow();
        const t0 = performance.now();
        last = run();
        wall.push(performance.now() - t0);
        cpu.push(cpuNow() - c0);
      }
      const py = spawnSync(PYTHON, [SCRIPT, dir], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (py.status !== 0) throw new Error(`${PYTHON} ${SCRIPT} failed (${py.status}): ${py.stderr}`);
      const out = JSON.parse(py.stdout.trim().split('\n').pop()!) as { wall: number[]; cpu: number[]; anomalous: number; nominal: number; defectPixels: number };
      peerWall.push(...out.wall);
      peerCpu.push(...out.cpu);
      peer = out;
    }
    const oursMs = median(wall);
    const oursCpuMs = median(cpu);
    const defectPixels = last.mask ? last.mask.reduce((a, v) => a + v, 0) : 0;
    return {
      size,
      channels,
      peerMs: median(peerWall),
      oursMs,
      ratio: median(peerWall) / oursMs,
      peerCpuMs: median(peerCpu),
      oursCpuMs,
      cpuRatio: median(peerCpu) / oursCpuMs,
      peer: { anomalous: peer.anomalous, nominal: peer.nominal, defectPixels: peer.defectPixels },
      ours: { anomalous: last.labels.counts.anomalous, nominal: last.labels.counts.nominal, defectPixels },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatPeerTable(rows: readonly PeerRow[]): string {
  const out = [
    '| size | channels | peer wall ms | ours wall ms | peer / ours (wall) | peer CPU ms | ours CPU ms | peer / ours (CPU) | anomalous labels peer / ours | mask pixels peer / ours |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    out.push(
      `| ${r.size}² | ${r.channels} | ${r.peerMs.toFixed(2)} | ${r.oursMs.toFixed(2)} | **${r.ratio.toFixed(1)}x** | ${r.peerCpuMs.toFixed(2)} | ${r.oursCpuMs.toFixed(2)} | **${r.cpuRatio.toFixed(1)}x** | ${r.peer.anomalous} / ${r.ours.anomalous} | ${r.peer.defectPixels} / ${r.ours.defectPixels} |`,
    );
  }
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: { sizes: { type: 'string', default: '256,1024' }, channels: { type: 'string', default: '25,152' }, runs: { type: 'string', default: '9' }, blocks: { type: 'string', default: '3' } },
  });
  const sizes = values.sizes.split(',').map(Number);
  const channels = values.channels.split(',').map(Number);
  const runs = Number(values.runs);
  const rows: PeerRow[] = [];
  const blocks = Number(values.blocks);
  for (const size of sizes) for (const c of channels) rows.push(benchPeer(size, c, runs, blocks));
  console.log(`peer: ${PYTHON}, BLAS ${peerBlas()}; ${Math.ceil(runs / blocks) * blocks} runs each side in ${blocks} alternating blocks, medians`);
  console.log(formatPeerTable(rows));
}
