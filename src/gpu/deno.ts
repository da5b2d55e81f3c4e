// The Deno host: creates the device through Deno's built-in WebGPU (`deno run --unstable-webgpu`) and
// reads the WGSL sources from shaders/. Type-checked by Deno, not by the project's tsc.

import { Gpu, isSoftwareAdapter, requiredLimits, type ShaderSources } from '../core/gpu.ts';
import { TttError } from '../core/errors.ts';

declare const Deno: {
  readDir(path: URL): AsyncIterable<{ name: string; isFile: boolean }>;
  readTextFile(path: URL): Promise<string>;
};

const SHADER_DIR = new URL('../../shaders/', import.meta.url);

export async function loadShaders(dir: URL = SHADER_DIR): Promise<ShaderSources> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith('.wgsl')) out[e.name.slice(0, -5)] = await Deno.readTextFile(new URL(e.name, dir));
  }
  return out;
}

export async function denoGpu(): Promise<{ gpu: Gpu; adapterName: string }> {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) throw new TttError('NO_ADAPTER', 'no WebGPU adapter (run deno with --unstable-webgpu on a machine with a Vulkan driver)');
  const device = await adapter.requestDevice({
    requiredLimits: requiredLimits(adapter),
  });
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const software = isSoftwareAdapter({
    architecture: info?.architecture,
    device: info?.device,
    description: info?.description,
    isFallbackAdapter: (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter,
  });
  return { gpu: new Gpu(device, await loadShaders(), { software }), adapterName: `${info?.vendor ?? ''} ${info?.description ?? ''}`.trim() };
}
