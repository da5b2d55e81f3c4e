// The sample and options both runtimes segment in the Deno parity test.
export const DENO_CASE = {
  sample: { width: 128, height: 96, seed: 21, defects: 3, mapStride: 2 },
  options: { 'features.extractor': 'filterbank', 'classifier.epochs': 20, 'pseudoLabels.nominalCount': 400 },
};
