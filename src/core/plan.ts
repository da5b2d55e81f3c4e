// Whether a segmentation can run on a device, decided from sizes and options alone before any GPU work:
// the largest storage buffer and the widest fixed dispatch of every stage, as the stages allocate them,
// against the device's limits. The service checks it at submission, `segment` again before it starts.

import { TttError } from './errors.ts';
import { GEOMETRY_SCALE_CHANNELS } from './features/geometry.ts';
import { MAX_NETWORK_SIDE, planeStride } from './features/mobilenet/forward.ts';
import { networkInputSize } from './features/mobilenet/extractor.ts';
import { tensorShapes, type NetworkGraph } from './features/mobilenet/graph.ts';
import { mobileNetGraph } from './features/mobilenet/registry.ts';
import { resnetLayersFor } from './features/resnet/extractor.ts';
import { resnet50Graph } from './features/resnet/registry.ts';
import { MAX_CHANNELS } from './kernels.ts';
import type { Modality, TttOptions } from './options.ts';

/** The device limits a run depends on (a GPUSupportedLimits satisfies it). */
export interface DeviceLimits {
  readonly maxStorageBufferBindingSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
}

/** WebGPU's default limits: what any adapter offers (a device of this project asks for its adapter's). */
export const WEBGPU_DEFAULT_LIMITS: DeviceLimits = { maxStorageBufferBindingSize: 134_217_728, maxComputeWorkgroupsPerDimension: 65_535 };

interface Size {
  readonly width: number;
  readonly height: number;
}

export interface RunShape {
  /** The image (the working resolution) and its channels. */
  readonly image: Size & { readonly channels: number };
  /** The uploaded score map's size; absent when the built-in scorer computes it at the image's size. */
  readonly scoreMap?: Size | null;
  /** Supplied feature maps (they replace the extractor). */
  readonly features?: (Size & { readonly channels: number }) | null;
  /** The point cloud's size, when one is given. */
  readonly pointCloud?: Size | null;
}

/** What the features stage will run: decided by the caller (chooseExtractor, resolveModality). */
export interface RunFeatures {
  readonly modality: Exclude<Modality, 'auto'>;
  /** The image feature source when modality is not 3d. */
  readonly extractor: 'filterbank' | 'mobilenetv2' | 'resnet50' | 'supplied';
  /** The compiled network of features.layers, for mobilenetv2 and resnet50. */
  readonly network?: NetworkGraph;
  /** The caller's own extractor replaces the options' choice: its buffers are not counted. */
  readonly custom?: boolean;
}

/** Pixels of the image along y that one fixed 2-D image dispatch covers per workgroup row (imageGroups). */
const ROWS_PER_GROUP = 4;
const COLUMNS_PER_GROUP = 64;

/**
 * Throws TOO_LARGE (a size over a limit, naming both) or INVALID_OPTION (an option whose cost is over a
 * limit, naming the option) when the run cannot fit the device; returns the largest buffer in 4-byte
 * elements otherwise. Buffers are counted as the stages allocate them (a chunked stage by its largest chunk).
 */
/**
 * The checks that depend on the image's size alone (its side against the dispatch grid, its working map in
 * one buffer): what a submission can check from the image's header, before anything is decoded.
 */
export function checkImageSize(limits: DeviceLimits, width: number, height: number): void {
  checkRunnable(limits, { image: { width, height, channels: 1 } }, null, null);
}

export function checkRunnable(limits: DeviceLimits, shape: RunShape, options: TttOptions, features: RunFeatures): number;
export function checkRunnable(limits: DeviceLimits, shape: RunShape, options: null, features: null): number;
export function checkRunnable(limits: DeviceLimits, shape: RunShape, options: TttOptions | null, features: RunFeatures | null): number {
  const maxElements = Math.floor(limits.maxStorageBufferBindingSize / 4);
  const maxGroups = limits.maxComputeWorkgroupsPerDimension;
  const binding = `this device's largest storage buffer (maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize} bytes = ${maxElements} floats)`;
  const { width, height, channels } = shape.image;
  const n = width * height;
  let largest = 0;
  const buffer = (elements: number, what: () => string, option?: string) => {
    largest = Math.max(largest, elements);
    if (elements <= maxElements) return;
    if (option) throw new TttError('INVALID_OPTION', `option ${option}: ${what()} needs ${elements} floats in one buffer, more than ${binding}`);
    throw new TttError('TOO_LARGE', `${what()} needs ${elements} floats in one buffer, more than ${binding}`);
  };
  const side = (what: string, w: number, h: number) => {
    if (Math.ceil(h / ROWS_PER_GROUP) > maxGroups || Math.ceil(w / COLUMNS_PER_GROUP) > maxGroups) {
      throw new TttError(
        'TOO_LARGE',
        `${what} is ${w}x${h}: the image kernels take at most ${ROWS_PER_GROUP * maxGroups} rows and ${COLUMNS_PER_GROUP * maxGroups} columns (maxComputeWorkgroupsPerDimension ${maxGroups})`,
      );
    }
  };

  side('the image', width, height);
  buffer(n, () => `the image of ${width}x${height} pixels (its score map at the working resolution)`);
  if (!options || !features) return largest;
  if (shape.scoreMap) buffer(shape.scoreMap.width * shape.scoreMap.height, () => `the score map of ${shape.scoreMap!.width}x${shape.scoreMap!.height}`);

  let featureChannels = 0;
  if (features.modality !== '3d' && !features.custom) {
    if (features.extractor === 'supplied') {
      const f = shape.features;
      if (!f) throw new TttError('INVALID_INPUT', 'features.extractor=supplied but no feature maps were given');
      buffer(Math.max(f.width * f.height, n), () => `one channel of the feature maps (${f.width}x${f.height}, resampled to ${width}x${height})`);
      featureChannels += f.channels;
    } else if (features.extractor === 'filterbank') {
      const sigmas = options.features.sigmas.length;
      const colour = channels === 3;
      const perScale = colour ? 11 : 8;
      const all = channels + perScale * sigmas;
      // One buffer for every channel when it fits, else one per scale: a scale's channels must fit.
      buffer(perScale * n, () => `the filterbank on ${width}x${height} pixels (${perScale} channels per scale)`);
      featureChannels += all;
    } else {
      const network = features.network;
      if (!network) throw new TttError('INTERNAL', `the ${features.extractor} plan needs the compiled network`);
      buffer(channels * n, () => `the image of ${width}x${height}x${channels} for the network`);
      const input = networkInputSize(shape.image, options.features.inputSize);
      const inputOption = options.features.inputSize > 0 ? 'features.inputSize' : undefined;
      if (Math.max(input.width, input.height) > MAX_NETWORK_SIDE) {
        throw new TttError(
          'TOO_LARGE',
          `the network input would be ${input.width}x${input.height} (the image's size, features.inputSize=0): at most ${MAX_NETWORK_SIDE} pixels per side; set features.inputSize to at most ${MAX_NETWORK_SIDE}`,
        );
      }
      // An input too small for the network is the run's own error, if and when it reaches the features
      // (an image without pseudo-labels never does); no buffer of such an input is near a limit.
      let shapes: ReturnType<typeof tensorShapes> | null = null;
      try {
        shapes = tensorShapes(network, input);
      } catch (e) {
        if (!(e instanceof TttError && e.code === 'INVALID_INPUT')) throw e;
      }
      if (shapes) {
        const at = shapes;
        network.channels.forEach((c, t) => {
          buffer(c * planeStride(at[t]), () => `a network input of ${input.width}x${input.height}: layer output ${t} (${c} x ${at[t].width}x${at[t].height})`, inputOption);
        });
        network.ops.forEach((op) => {
          if (op.kind !== 'conv' || (op.kh === 1 && op.kw === 1 && op.sh === 1 && op.sw === 1)) return;
          buffer(op.kh * op.kw * op.cin * planeStride(at[op.output]), () => `a network input of ${input.width}x${input.height}: the windows of layer ${op.name}`, inputOption);
        });
      }
      for (const [layer, t] of network.outputs) {
        if (shapes) buffer(Math.max(shapes[t].width * shapes[t].height, n), () => `one channel of layer ${layer} at ${width}x${height}`);
        featureChannels += network.channels[t];
      }
    }
  }
  if (features.modality !== 'rgb') {
    const pc = shape.pointCloud;
    if (!pc) throw new TttError('INVALID_INPUT', `features.modality=${features.modality} needs a point cloud, and none was given`);
    const geometry = 1 + GEOMETRY_SCALE_CHANNELS.length * options.features.geometryScales.length;
    side('the point cloud', pc.width, pc.height);
    buffer(3 * pc.width * pc.height, () => `the point cloud of ${pc.width}x${pc.height} points`);
    buffer(geometry * Math.max(pc.width * pc.height, n), () => `the ${geometry} 3-D feature channels of ${Math.max(pc.width * pc.height, n)} pixels`, 'features.geometryScales');
    featureChannels += geometry;
  }
  if (featureChannels > MAX_CHANNELS) {
    throw new TttError('TOO_LARGE', `${featureChannels} feature channels exceed the classifier's limit of ${MAX_CHANNELS}`);
  }
  // The training matrix holds at least every nominal pseudo-label's features (plus the anomalous ones, known only when run).
  buffer((options.pseudoLabels.nominalCount + 1) * featureChannels, () => `${options.pseudoLabels.nominalCount} nominal pseudo-labels of ${featureChannels} features`, 'pseudoLabels.nominalCount');
  return largest;
}

/**
 * checkRunnable for the options and inputs as `segment` resolves them (supplied features win; modality
 * auto is both with a point cloud); `custom`: the caller brings its own extractor, whose buffers are its own.
 */
export async function planRun(limits: DeviceLimits, shape: RunShape, options: TttOptions, custom = false): Promise<number> {
  const m = options.features.modality;
  if (m !== 'auto' && m !== 'rgb' && !shape.pointCloud) throw new TttError('INVALID_INPUT', `features.modality=${m} needs a point cloud, and none was given`);
  const modality = m === 'auto' ? (shape.pointCloud ? 'both' : 'rgb') : m;
  const extractor = shape.features ? 'supplied' : options.features.extractor;
  if (custom) return checkRunnable(limits, shape, options, { modality, extractor, custom: true });
  const network =
    modality === '3d' ? undefined
    : extractor === 'mobilenetv2' ? await mobileNetGraph(options.features.layers)
    : extractor === 'resnet50' ? await resnet50Graph(resnetLayersFor(options.features.layers))
    : undefined;
  return checkRunnable(limits, shape, options, { modality, extractor, network });
}

/** A plain copy of the limits a plan reads (a device's GPUSupportedLimits are live getters). */
export function deviceLimits(device: { limits: DeviceLimits }): DeviceLimits {
  const { maxStorageBufferBindingSize, maxComputeWorkgroupsPerDimension } = device.limits;
  return { maxStorageBufferBindingSize, maxComputeWorkgroupsPerDimension };
}
