// The typed values that pass between the pipeline's stages, on the host and on the GPU.

import type { GpuArray } from './gpu.ts';

/** An image at the working resolution: planar float channels (1 grey or 3 RGB) in [0, 1]. */
export interface ImageTensor {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
}

/** A 2-D map of floats, row-major (an anomaly map, a threshold map, ...). */
export interface ScoreMap {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
}

/** Feature maps C x h x w (planar, row-major), at any resolution with the image's aspect ratio. */
export interface FeatureTensor {
  readonly data: Float32Array;
  readonly channels: number;
  readonly width: number;
  readonly height: number;
}

/**
 * An organized point cloud (as MVTec 3D-AD stores it): one xyz point per pixel of a width x height grid,
 * interleaved (x0 y0 z0 x1 ...), row-major, camera coordinates (z along the viewing direction). A point
 * that is (0, 0, 0) or has a NaN or infinite coordinate is invalid (no measurement).
 */
export interface PointCloud {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
}

export interface GpuScoreMap {
  readonly data: GpuArray;
  readonly width: number;
  readonly height: number;
}

/**
 * Feature maps on the GPU at the working resolution, held as chunks of whole channels (each chunk one
 * storage buffer, so that no binding exceeds the device's limit).
 */
export interface GpuFeatures {
  readonly chunks: readonly { readonly data: GpuArray; readonly channels: number }[];
  readonly channels: number;
  readonly width: number;
  readonly height: number;
  /** One name per channel, for reports. */
  readonly names: readonly string[];
  /**
   * Channel groups to weigh equally after standardization (features.groupNormalize), in channel order,
   * covering every channel, each made of whole chunks; absent: every channel weighs 1.
   */
  readonly groups?: readonly FeatureGroup[];
}

/** Consecutive channels from one feature source (features/groups.ts). */
export interface FeatureGroup {
  readonly name: string;
  readonly channels: number;
}

/** Moments and histogram-based percentiles of a score map. */
export interface ScoreMapStats {
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly std: number;
  readonly count: number;
  /** Percentile -> value (the lower edge of the histogram bin that holds the rank). */
  readonly percentiles: Readonly<Record<string, number>>;
}

export interface PseudoLabelCounts {
  readonly anomalous: number;
  readonly nominal: number;
  /** Pixels the nominal draw could choose from. */
  readonly eligible: number;
}

export interface Region {
  readonly id: number;
  readonly area: number;
  readonly bbox: { readonly x: number; readonly y: number; readonly width: number; readonly height: number };
  readonly centroid: { readonly x: number; readonly y: number };
  readonly meanScore: number;
  readonly maxScore: number;
}

export interface ClassifierReport {
  readonly loss: number;
  readonly epochs: number;
  readonly lossHistory: readonly number[];
  /** Weights per channel, then the bias. */
  readonly weights: readonly number[];
  /** The L2 strength trained with (classifier.lambda, or 1 / (svmC rows) with classifier.svmC). */
  readonly lambda: number;
}

export interface GateReport {
  readonly imageScore: number;
  readonly threshold: number;
  readonly anomalous: boolean;
}

export type StageName = 'upload' | 'features' | 'stats' | 'pseudoLabels' | 'gather' | 'classifier' | 'predict' | 'refine' | 'regions';

/** Where a stage ran: on the GPU (WGSL kernels) or on the host (plain TypeScript). */
export type StagePlacement = 'gpu' | 'host';

/** What one segmentation produced (names as anomalib: anomaly map, predicted score, mask, label). */
export interface SegmentationResult {
  readonly width: number;
  readonly height: number;
  /** 1 where defective, 0 elsewhere; width x height, row-major. */
  readonly predMask: Uint8Array;
  /** Whether the mask holds any defect. */
  readonly predLabel: boolean;
  /** The image-level anomaly score: the maximum of the anomaly map. */
  readonly predScore: number;
  readonly defectFraction: number;
  readonly anomalyMap: ScoreMapStats;
  readonly pseudoLabels: PseudoLabelCounts | null;
  readonly classifier: ClassifierReport | null;
  readonly gate: GateReport | null;
  readonly regions: readonly Region[];
  /** Why the mask is empty without a classifier (gate, no anomalous pseudo-labels), else null. */
  readonly emptyReason: string | null;
  readonly featureChannels: number;
  readonly timings: Readonly<Partial<Record<StageName, number>>>;
  /** Where each timed stage ran (compute.stages). */
  readonly placement: Readonly<Partial<Record<StageName, StagePlacement>>>;
}
