// The per-image linear classifier on the GPU: mini-batch SGD in one workgroup (shaders/classifier.wgsl),
// then the decision w.x + b at every pixel and the mask decision > 0.

import type { Gpu, GpuArray } from './gpu.ts';
import { MAX_BATCH, groupsFor, kernels } from './kernels.ts';
import type { TttOptions } from './options.ts';
import { sgdSeed } from './rng.ts';
import type { ClassifierReport, GpuFeatures } from './types.ts';
import type { GpuTrainingSet } from './gather.ts';
import { maskedSpec, noValidity, type GpuValidity } from './validity.ts';

/** Class weights: balanced gives each class half of the total weight. */
export function classWeights(positives: number, negatives: number, balanced: boolean): { wPos: number; wNeg: number } {
  if (!balanced || positives === 0 || negatives === 0) return { wPos: 1, wNeg: 1 };
  const n = positives + negatives;
  return { wPos: n / (2 * positives), wNeg: n / (2 * negatives) };
}

/** The uniforms of trainSgd, shared with the reference so both run the same schedule. */
export function sgdSchedule(rows: number, options: TttOptions) {
  const batch = Math.min(options.classifier.batchSize, MAX_BATCH);
  return { batch, stepsPerEpoch: Math.max(1, Math.ceil(rows / batch)), seed: sgdSeed(options.seed) };
}

export async function trainClassifier(
  gpu: Gpu,
  set: GpuTrainingSet,
  counts: { anomalous: number; nominal: number },
  options: TttOptions,
): Promise<{ model: GpuArray; report: ClassifierReport }> {
  const o = options.classifier;
  const { batch, stepsPerEpoch, seed } = sgdSchedule(set.rows, options);
  const { wPos, wNeg } = classWeights(counts.anomalous, counts.nominal, o.balanced);
  const model = gpu.alloc(set.channels + 1);
  const info = gpu.alloc(2 + o.epochs);
  gpu.run(
    kernels.trainSgd,
    {
      rows: set.rows,
      channels: set.channels,
      epochs: o.epochs,
      batch,
      loss: o.loss === 'hinge' ? 0 : 1,
      seed,
      patience: o.patience,
      stepsPerEpoch,
      lr: o.learningRate,
      lambda: o.lambda,
      wPos,
      wNeg,
      tol: o.tolerance,
    },
    { x: set.x, targets: set.targets, model, info },
    [1, 1, 1],
  );
  const all = await gpu.readF32(info);
  const epochs = all[1];
  const history = Array.from(all.subarray(2, 2 + epochs));
  const weights = Array.from(await gpu.readF32(model));
  gpu.release(info);
  return { model, report: { loss: all[0], epochs, lossHistory: history, weights } };
}

/**
 * The packed mask (4 pixels per u32, one byte each) of decision > 0 and score > scoreFloor, and valid
 * with a validity mask; `decision` is scratch between chunks.
 */
export function predict(
  gpu: Gpu,
  model: GpuArray,
  features: GpuFeatures,
  scores: GpuArray,
  scoreFloor = -Infinity,
  validity?: GpuValidity | null,
): { decision: GpuArray; mask: GpuArray } {
  const pixels = features.width * features.height;
  const decision = gpu.alloc(features.chunks.length > 1 ? pixels : 1);
  const mask = gpu.alloc(Math.ceil(pixels / 4));
  const v = validity ?? noValidity(gpu);
  const kernel = maskedSpec(pixels % 4 === 0 ? kernels.predictVec4 : kernels.predict, v);
  let offset = 0;
  features.chunks.forEach((chunk, i) => {
    gpu.run(
      kernel,
      {
        pixels,
        channels: features.channels,
        chunkChannels: chunk.channels,
        channelOffset: offset,
        first: i === 0 ? 1 : 0,
        last: i === features.chunks.length - 1 ? 1 : 0,
        scoreFloor,
      },
      { model, chunk: chunk.data, decision, mask, scores, valid: v.data },
      groupsFor(Math.ceil(pixels / 4)),
    );
    offset += chunk.channels;
  });
  return { decision, mask };
}

/**
 * The epochs' bookkeeping shared by referenceTrain and the host path's hostTrain (the shader's rule): an
 * epoch's loss is the class-weighted mean loss plus the L2 term; it improves when it falls below the best by
 * the relative tolerance; training stops after `patience` epochs without improvement.
 */
export class EpochLog {
  readonly history: number[] = [];
  private best = 3.4e38; // as the shader: the first epoch always improves
  private wait = 0;
  private last = 0;

  constructor(private readonly o: Pick<TttOptions['classifier'], 'lambda' | 'tolerance' | 'patience'>) {}

  /** Ends an epoch; true when training stops. */
  end(lossSum: number, weightSum: number, w: Float64Array): boolean {
    let reg = 0;
    for (let c = 0; c < w.length; c++) reg += w[c] * w[c];
    this.last = lossSum / weightSum + 0.5 * this.o.lambda * reg;
    this.history.push(this.last);
    if (this.last < this.best - this.o.tolerance * Math.abs(this.best)) {
      this.best = this.last;
      this.wait = 0;
    } else {
      this.wait++;
    }
    return this.wait >= this.o.patience;
  }

  report(w: Float64Array, bias: number): ClassifierReport {
    return { loss: this.last, epochs: this.history.length, lossHistory: this.history, weights: [...w, bias] };
  }
}
