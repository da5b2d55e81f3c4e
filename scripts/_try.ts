import { nodeGpu } from '../src/gpu/node.ts';
import { segment } from '../src/core/pipeline.ts';
import { referenceSegment } from '../src/core/reference/pipeline.ts';
import { syntheticSample } from '../src/synthetic.ts';
const { gpu } = await nodeGpu();
for (const size of [256, 1024]) {
  const s = syntheticSample({ width: size, height: size, seed: 3, defects: 3, mapStride: 1 });
  for (let k = 0; k < 4; k++) {
    const r = await segment(gpu, s);
    console.log(size, 'gpu', JSON.stringify(Object.fromEntries(Object.entries(r.timings).map(([a,b])=>[a,+b!.toFixed(1)]))), r.pseudoLabels, r.classifier?.epochs);
  }
  const ref = referenceSegment(s);
  console.log(size, 'ref', JSON.stringify(Object.fromEntries(Object.entries(ref.timings).map(([a,b])=>[a,+b!.toFixed(1)]))));
}
process.exit(0);
