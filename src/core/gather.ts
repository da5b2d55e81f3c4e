// Gathering the labelled pixels' features into a training set on the GPU: the label map is scanned so
// that rows keep pixel order, then each channel chunk is copied into the row-major matrix X.

import type { Gpu, GpuArray } from './gpu.ts';
import { SCAN_BLOCK, groupsFor, kernels } from './kernels.ts';
import type { GpuFeatures } from './types.ts';

export interface GpuTrainingSet {
  /** rows x channels, row-major. */
  x: GpuArray;
  /** +1 anomalous, -1 nominal, per row. */
  targets: GpuArray;
  /** Pixel index per row. */
  pixels: GpuArray;
  rows: number;
  channels: number;
}

/** Exclusive prefix sum of `input` (or of its non-zero flags with fromLabels) into a new array. */
export function exclusiveScan(gpu: Gpu, input: GpuArray, n: number, fromLabels: boolean): GpuArray {
  const out = gpu.alloc(n);
  const blocks = Math.ceil(n / SCAN_BLOCK);
  const sums = gpu.alloc(blocks);
  gpu.run(fromLabels ? kernels.scanLabels : kernels.scanBlocks, { n, pad0: 0, pad1: 0, pad2: 0 }, { input, out, sums }, blocks);
  if (blocks > 1) {
    const offsets = exclusiveScan(gpu, sums, blocks, false);
    gpu.run(kernels.addOffsets, { n, pad0: 0, pad1: 0, pad2: 0 }, { out, offsets }, groupsFor(n));
    gpu.release(offsets);
  }
  gpu.release(sums);
  return out;
}

export function gatherTrainingSet(gpu: Gpu, labels: GpuArray, rows: number, features: GpuFeatures): GpuTrainingSet {
  const plane = features.width * features.height;
  const C = features.channels;
  const positions = exclusiveScan(gpu, labels, plane, true);
  const pixels = gpu.alloc(rows);
  const targets = gpu.alloc(rows);
  const x = gpu.alloc(rows * C);
  const base = { channels: C, plane, pad0: 0, pad1: 0, pad2: 0 };
  gpu.run(kernels.compactRows, { ...base, n: plane, chunkChannels: 0, channelOffset: 0 }, { labels, positions, rows: pixels, targets }, groupsFor(plane));
  let offset = 0;
  for (const chunk of features.chunks) {
    gpu.run(
      kernels.gatherFeatures,
      { ...base, n: rows, chunkChannels: chunk.channels, channelOffset: offset },
      { rows: pixels, chunk: chunk.data, x },
      groupsFor(rows * chunk.channels),
    );
    offset += chunk.channels;
  }
  gpu.release(positions);
  return { x, targets, pixels, rows, channels: C };
}
