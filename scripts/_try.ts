import { nodeGpu } from '../src/gpu/node.ts';
import { segment } from '../src/core/pipeline.ts';
import { referenceSegment } from '../src/core/reference/pipeline.ts';
import { syntheticSample } from '../src/synthetic.ts';
import { confusion, pixelMetrics } from '../src/core/metrics.ts';
const { gpu, adapterName } = await nodeGpu();
console.log(adapterName);
for (const size of [128, 256]) {
  const s = syntheticSample({ width: size, height: size, seed: 3, defects: 3, mapStride: 1 });
  const r = await segment(gpu, s);
  const ref = referenceSegment(s);
  let agree = 0; for (let i = 0; i < r.predMask.length; i++) if (r.predMask[i] === ref.predMask[i]) agree++;
  console.log(size, 'gpu', r.pseudoLabels, r.classifier?.loss, r.classifier?.epochs, r.regions.length, pixelMetrics(confusion(r.predMask, s.groundTruth)));
  console.log(size, 'ref', ref.pseudoLabels, ref.classifier?.loss, ref.classifier?.epochs, ref.regions.length, pixelMetrics(confusion(ref.predMask, s.groundTruth)));
  console.log('agree', agree / r.predMask.length, r.timings, ref.timings);
  console.log('w gpu', r.classifier?.weights.slice(0,5), 'ref', ref.classifier?.weights.slice(0,5));
}
process.exit(0);
