// The sample and options both runtimes segment in the Deno parity test.
export const DENO_CASE = {
  sample: { width: 128, height: 96, seed: 21, defects: 3, mapStride: 2 },
  // The GPU path on both runtimes (compute.stages=auto would take the host path on a software adapter).
  options: { 'features.extractor': 'filterbank', 'classifier.epochs': 20, 'pseudoLabels.nominalCount': 400, 'compute.stages': 'gpu' },
};
