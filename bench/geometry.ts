// Speed of the 3-D features of an organized point cloud, WGSL against the plain-TS reference, side by side:
//   - "ttt": the classifier's 3-D features at the point cloud's own resolution (geometryFeatures: plane fit,
//     normals, variation, spreads at features.geometryScales, standardized over the valid points);
//   - "patches": the built-in scorer's 3-D patch features (the raw channels, windows sized for a 256-pixel
//     working size, pooled to its stride-8 patch grid).
// GPU times run to completion (one value read back; the features stay on the device, as in the pipeline).
//
//   npx tsx bench/geometry.ts [--sizes 256,800] [--runs 10] [--ref-runs 3] [--json]

import { parseArgs } from 'node:util';
import { geometryFeatures, preparePointCloud } from '../src/core/features/geometry.ts';
import { releaseFeatures } from '../src/core/features/index.ts';
import { geometryPatchFeatures } from '../src/core/patchcore/geometry.ts';
import { PATCHCORE_DEFAULTS, patchGrid, workingShape } from '../src/core/patchcore/patchcore.ts';
import { referenceGeometryFeatures, referenceGeometryRaw } from '../src/core/reference/geometry.ts';
import { referencePoolBoxes } from '../src/core/reference/patchcore.ts';
import { uploadValidity } from '../src/core/validity.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { synthetic3dSample } from '../src/synthetic3d.ts';
import { timeRuns } from '../src/cli/benchmarks/ttt.ts';

const { values: v } = parseArgs({ options: { sizes: { type: 'string' }, runs: { type: 'string' }, 'ref-runs': { type: 'string' }, json: { type: 'boolean' } } });
const sizes = (v.sizes ?? '256,800').split(',').map(Number);
const runs = Number(v.runs ?? 10);
const refRuns = Number(v['ref-runs'] ?? 3);
const scales = [2, 4]; // features.geometryScales default
const { gpu, adapterName } = await nodeGpu();


const rows: { size: number; ttt: { gpuMs: number; cpuMs: number }; patches: { gpuMs: number; cpuMs: number; grid: string } }[] = [];
for (const size of sizes) {
  const s = synthetic3dSample({ width: size, height: size, seed: 1, defects: 2 });
  const pc = preparePointCloud(s.pointCloud);
  const working = { width: size, height: size };
  const tttGpu = await timeRuns(runs, async () => {
    const valid = uploadValidity(gpu, pc.valid);
    const f = await geometryFeatures(gpu, pc, working, scales, valid);
    await gpu.readF32(f.chunks[0].data, 1);
    releaseFeatures(gpu, f);
    gpu.release(valid.data);
  });
  const tttCpu = await timeRuns(refRuns, () => referenceGeometryFeatures(pc, working, scales), 0);
  const patchWorking = workingShape(s.image, PATCHCORE_DEFAULTS.size);
  const grid = patchGrid(patchWorking, PATCHCORE_DEFAULTS.stride);
  const stride = Math.ceil((grid.width * grid.height) / 4) * 4;
  const patchGpu = await timeRuns(runs, async () => {
    const g = await geometryPatchFeatures(gpu, s.pointCloud, patchWorking, grid, scales);
    await gpu.readF32(g.data, 1);
    gpu.release(g.data);
  });
  const patchCpu = await timeRuns(
    refRuns,
    () => {
      const p = preparePointCloud(s.pointCloud);
      const raw = referenceGeometryRaw(p, scales, patchWorking);
      return referencePoolBoxes(raw.data, raw.channels, p, p.valid, grid, stride);
    },
    0,
  );
  rows.push({ size, ttt: { gpuMs: tttGpu, cpuMs: tttCpu }, patches: { gpuMs: patchGpu, cpuMs: patchCpu, grid: `${grid.width}x${grid.height}` } });
}
if (v.json) {
  console.log(JSON.stringify({ adapter: adapterName, runs, refRuns, scales, rows }));
} else {
  console.log(`adapter: ${adapterName}; medians of ${runs} GPU runs (after 2 warm-up) and ${refRuns} reference runs; scales ${scales.join(', ')}`);
  console.log('point cloud   ttt features: WGSL ms   reference ms   speed-up   | scorer patches: WGSL ms   reference ms   speed-up');
  for (const r of rows) {
    const f = (x: number) => x.toFixed(1);
    console.log(
      `${`${r.size}x${r.size}`.padEnd(13)} ${f(r.ttt.gpuMs).padStart(22)} ${f(r.ttt.cpuMs).padStart(14)} ${(r.ttt.cpuMs / r.ttt.gpuMs).toFixed(1).padStart(9)}x   | ${f(r.patches.gpuMs).padStart(23)} ${f(r.patches.cpuMs).padStart(14)} ${(r.patches.cpuMs / r.patches.gpuMs).toFixed(1).padStart(9)}x  (grid ${r.patches.grid})`,
    );
  }
}
process.exit(0);
