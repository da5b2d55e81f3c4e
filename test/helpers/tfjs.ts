// The requested layers' outputs computed by TensorFlow.js (CPU backend), by name.
import type { LayersModelArtifacts } from '../../src/core/features/mobilenet/weights.ts';
import type { FeatureTensor } from '../../src/core/types.ts';
import { tfjsModel } from '../../src/cli/benchmarks/tfjs.ts';

export async function tfjsOutputs(
  artifacts: LayersModelArtifacts,
  outputs: readonly string[],
  input: Float32Array,
  height: number,
  width: number,
): Promise<Map<string, FeatureTensor>> {
  const model = await tfjsModel(artifacts, outputs, height, width);
  const ys = await model.run(input);
  model.dispose();
  return new Map(outputs.map((o, k) => [o, ys[k]]));
}
