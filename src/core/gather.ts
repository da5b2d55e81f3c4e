// Gathering the labelled pixels' features into a training set on the GPU (shaders/gather.wgsl): rows keep
// pixel order, then each channel chunk is copied into the row-major matrix X.

import type { Gpu, GpuArray } from './gpu.ts';
import { COMPACT_BLOCK, groupsFor, kernels } from './kernels.ts';
import type { GpuPseudoLabels } from './pseudoLabels.ts';
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

/**
 * Rows in pixel order from the label map and its per-block counts (consumed: they become the blocks'
 * row offsets), then the features of those rows.
 */
export function gatherTrainingSet(gpu: Gpu, labels: GpuPseudoLabels, rows: number, features: GpuFeatures): GpuTrainingSet {
  const plane = features.width * features.height;
  const C = features.channels;
  const blocks = Math.ceil(plane / COMPACT_BLOCK);
  const pixels = gpu.alloc(rows);
  const targets = gpu.alloc(rows);
  const x = gpu.alloc(rows * C);
  const base = { n: plane, channels: C, chunkChannels: 0, channelOffset: 0, plane, blocks, rows };
  const offsets = labels.blockCounts;
  const blockList = gpu.alloc(blocks);
  const dispatchArgs = gpu.allocIndirect(3);
  gpu.write(dispatchArgs, new Uint32Array([0, 1, 1]));
  gpu.run(kernels.scanCounts, base, { offsets, blockList, dispatchArgs }, [1, 1, 1]);
  gpu.run(kernels.compactBlocks, base, { labels: labels.labels, offsets, rows: pixels, targets, blockList }, { indirect: dispatchArgs });
  gpu.release(blockList, dispatchArgs);
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
  return { x, targets, pixels, rows, channels: C };
}
