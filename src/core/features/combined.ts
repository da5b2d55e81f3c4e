// The `combined` extractor (features.extractor=combined): the maps of several sources (features.sources)
// concatenated in order, each source one channel group (features/groups.ts) when features.groupNormalize
// is on. On the host path, each source's maps come back as coarse layers: a network's at its own strides
// (its extractHost), the others at the working resolution (a full-resolution coarse layer resamples to
// itself), so the host stage never materializes a network's maps.

import type { Gpu } from '../gpu.ts';
import type { CoarseLayer } from '../coarseFeatures.ts';
import type { FeatureGroup, GpuFeatures, ImageTensor } from '../types.ts';
import type { FeatureExtractor, HostFeatures } from './extractor.ts';

export interface NamedSource {
  readonly name: string;
  readonly extractor: FeatureExtractor;
  /** A source made of several groups (a network's layers), from its channel names; absent: one group. */
  readonly groups?: (names: readonly string[]) => FeatureGroup[];
}

export function combinedExtractor(sources: readonly NamedSource[], groupNormalize: boolean): FeatureExtractor {
  const groupsOf = (parts: readonly { channels: number; names: readonly string[] }[]): FeatureGroup[] | undefined =>
    groupNormalize ? parts.flatMap((p, k) => sources[k].groups?.(p.names) ?? [{ name: sources[k].name, channels: p.channels }]) : undefined;
  return {
    name: 'combined',
    async extract(gpu: Gpu, image: ImageTensor): Promise<GpuFeatures> {
      const parts: GpuFeatures[] = [];
      try {
        for (const s of sources) parts.push(await s.extractor.extract(gpu, image));
      } catch (e) {
        for (const p of parts) for (const c of p.chunks) gpu.release(c.data);
        throw e;
      }
      return {
        chunks: parts.flatMap((p) => p.chunks),
        channels: parts.reduce((a, p) => a + p.channels, 0),
        width: image.width,
        height: image.height,
        names: parts.flatMap((p) => p.names),
        groups: groupsOf(parts),
      };
    },
    async extractHost(gpu: Gpu, image: ImageTensor): Promise<HostFeatures> {
      const n = image.width * image.height;
      const layers: CoarseLayer[] = [];
      const names: string[] = [];
      const parts: { channels: number; names: readonly string[] }[] = [];
      for (const s of sources) {
        if (s.extractor.extractHost) {
          const h = await s.extractor.extractHost(gpu, image);
          layers.push(...h.layers);
          names.push(...h.names);
          parts.push(h);
          continue;
        }
        const g = await s.extractor.extract(gpu, image);
        try {
          for (const chunk of g.chunks) {
            layers.push({ data: await gpu.readF32(chunk.data, chunk.channels * n), channels: chunk.channels, width: image.width, height: image.height });
          }
        } finally {
          for (const c of g.chunks) gpu.release(c.data);
        }
        names.push(...g.names);
        parts.push(g);
      }
      const channels = parts.reduce((a, p) => a + p.channels, 0);
      return { layers, channels, width: image.width, height: image.height, names, groups: groupsOf(parts) };
    },
  };
}
