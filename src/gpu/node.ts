// The Node host: the only module that imports `webgpu` (Dawn). It creates one device per process and hands
// the core a Gpu with the WGSL sources read from shaders/.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, globals } from 'webgpu';
import { Gpu, isSoftwareAdapter, requiredLimits, type ShaderSources } from '../core/gpu.ts';
import { TttError } from '../core/errors.ts';

Object.assign(globalThis, globals);

const SHADER_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../shaders');

// Dawn's GPU object must stay referenced for as long as any device lives: if it is garbage-collected the
// process crashes. Module scope keeps it for the life of the process.
const navigators: GPU[] = [];

export function loadShaders(dir = SHADER_DIR): ShaderSources {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir)) if (f.endsWith('.wgsl')) out[f.slice(0, -5)] = readFileSync(join(dir, f), 'utf8');
  return out;
}

export interface NodeDevice {
  gpu: Gpu;
  adapterName: string;
}

async function requestAdapter(): Promise<{ adapter: GPUAdapter; backend: string }> {
  const attempts: [string[], GPURequestAdapterOptions][] = [
    [[], {}],
    [['backend=opengles'], { featureLevel: 'compatibility' }],
  ];
  if (process.env.TTT_WEBGPU_BACKEND === 'opengles') attempts.reverse();
  for (const [flags, opts] of attempts) {
    if (flags.includes('backend=opengles')) process.env.EGL_PLATFORM ??= 'surfaceless';
    const nav = create(flags);
    const adapter = await nav.requestAdapter(opts);
    if (adapter) {
      navigators.push(nav);
      return { adapter, backend: flags.length ? 'opengles' : 'default' };
    }
  }
  throw new TttError(
    'NO_ADAPTER',
    'no WebGPU adapter found: run `npm run setup` to install a software Vulkan driver (lavapipe), or check the GPU driver',
  );
}

let shared: Promise<NodeDevice> | null = null;

/** Creates a fresh device (one per process is the norm; see `nodeGpu`). */
export async function createNodeGpu(): Promise<NodeDevice> {
  const { adapter, backend } = await requestAdapter();
  const device = await adapter.requestDevice({
    label: 'ttt-inspect',
    requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
    requiredLimits: requiredLimits(adapter),
  });
  const info = adapter.info;
  const adapterName = `${info.vendor || 'unknown'} ${info.description || info.architecture || ''} (${backend})`.trim();
  return { gpu: new Gpu(device, loadShaders(), { software: isSoftwareAdapter(info) }), adapterName };
}

/** The process's shared device, created on first use. */
export function nodeGpu(): Promise<NodeDevice> {
  shared ??= createNodeGpu().catch((e) => {
    shared = null;
    throw e;
  });
  return shared;
}
