// PatchCore's scoring keeps the image's coarse means on the device; the host path's extraction of the same
// image (the test-time stage of the same inspection) takes them instead of running the network again, and
// only while the image holds the same values. Observed through the GPU's per-kernel profile (which kernels ran).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/core/gpu.ts';
import { networkFeatureMaps, networkFeatureMapsHost } from '../../src/core/features/mobilenet/extractor.ts';
import { buildGraph } from '../../src/core/features/mobilenet/graph.ts';
import type { ImageTensor } from '../../src/core/types.ts';
import { testGpu } from '../helpers/gpu.ts';
import { tinyKerasModel } from '../helpers/kerasModel.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
  expect(gpu.enableProfiling()).toBe(true);
});

const image = (): ImageTensor => {
  const data = new Float32Array(40 * 30).map((_, i) => 0.5 + 0.4 * Math.sin(i * 0.37));
  return { data, width: 40, height: 30, channels: 1 };
};

/** Whether a pointwise product of the network (any tile) is among the kernels that ran. */
const ranNetwork = (kernels: string[]): boolean => kernels.some((k) => k.startsWith('conv.pointwise'));

async function kernelsRun(): Promise<string[]> {
  await gpu.sync();
  return [...(await gpu.takeProfile()).keys()].sort();
}

describe('coarse means kept from the scoring of the same image', () => {
  const graph = buildGraph(tinyKerasModel(5), ['add1', 'c5']);
  const grid = { width: 5, height: 4 };

  it('are taken once by the host extraction of that image: no network, the same values', async () => {
    const img = image();
    const fresh = await networkFeatureMapsHost(gpu, graph, img, img, img);
    await kernelsRun();
    const f = networkFeatureMaps(gpu, graph, img, img, grid, true);
    for (const c of f.chunks) gpu.release(c.data);
    expect(ranNetwork(await kernelsRun()), 'the network ran').toBe(true);
    const reused = await networkFeatureMapsHost(gpu, graph, img, img, img);
    const after = await kernelsRun();
    expect(after.filter((k) => k.startsWith('conv.'))).toEqual([]);
    expect(reused.layers.map((l) => Array.from(l.data))).toEqual(fresh.layers.map((l) => Array.from(l.data)));
    // Taken: a second extraction runs the network again.
    await networkFeatureMapsHost(gpu, graph, img, img, img);
    expect(ranNetwork(await kernelsRun()), 'the network ran').toBe(true);
  });

  it('are not used for another image, another input size, or the same image with changed values', async () => {
    const img = image();
    const other = image();
    const cases: [ImageTensor, { width: number; height: number }, () => void][] = [
      [other, img, () => {}],
      [img, { width: 20, height: 15 }, () => {}],
      [img, img, () => (img.data[7] += 0.25)],
    ];
    for (const [target, input, change] of cases) {
      const f = networkFeatureMaps(gpu, graph, img, img, grid, true);
      for (const c of f.chunks) gpu.release(c.data);
      change();
      await kernelsRun();
      const got = await networkFeatureMapsHost(gpu, graph, target, input, target);
      expect(ranNetwork(await kernelsRun()), 'the network ran').toBe(true);
      const want = await networkFeatureMapsHost(gpu, graph, target, input, target);
      expect(got.layers.map((l) => Array.from(l.data))).toEqual(want.layers.map((l) => Array.from(l.data)));
    }
  });
});
