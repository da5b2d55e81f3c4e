// The compute runtime the pipeline stages share: kernel specs, a pipeline cache, a buffer pool, and one
// command encoder that records dispatches until something must be read back. Standard WebGPU only.

import { TttError } from './errors.ts';

/**
 * A uniform field: name and WGSL scalar type. A spec lists only the real fields, in the order of the WGSL
 * struct (test/core/kernel-specs.test.ts holds each spec to its shader's struct); `uniformLayout` packs them.
 */
export type ParamField = readonly [name: string, type: 'u32' | 'i32' | 'f32'];

/**
 * Where a spec's uniform fields go: every field is a 4-byte scalar, so field k sits at byte 4k (WGSL's
 * uniform layout of a struct of scalars: alignment 4, no gaps) and the struct's size is 4 x fields. The
 * buffer is that size rounded up to 16 bytes (at least 16), so no spec or call site writes padding fields.
 */
export function uniformLayout(params: readonly ParamField[]): { offsets: number[]; bytes: number } {
  return { offsets: params.map((_, k) => 4 * k), bytes: Math.max(16, Math.ceil((params.length * 4) / 16) * 16) };
}

/**
 * One compute kernel, declared once. The cache key is built from `name` and `constants` only (never shapes);
 * shapes and per-call values travel as uniforms (`params`), bound at binding 0 when present, followed by
 * the storage buffers named in `bindings` at 1, 2, ...
 */
export interface KernelSpec {
  readonly name: string;
  /** Files under shaders/ (without .wgsl), concatenated in order: shared helpers first. */
  readonly shaders: readonly string[];
  readonly entryPoint: string;
  /** Invocations per workgroup along x; the WGSL reads it as `override WG: u32`. */
  readonly workgroupSize: number;
  /** The uniform struct's fields, in order, without padding (`Gpu.run` pads the buffer; see `uniformLayout`). */
  readonly params?: readonly ParamField[];
  /** Storage buffers at bindings 1, 2, ...; null marks a binding this entry point does not use. */
  readonly bindings: readonly (string | null)[];
  /** Further compile-time `override` constants. */
  readonly constants?: Readonly<Record<string, number>>;
}

export type ShaderSources = Readonly<Record<string, string>>;

/** A storage buffer with its element count (4-byte elements). */
export interface GpuArray {
  readonly buffer: GPUBuffer;
  readonly length: number;
}

const STORAGE = 0x80; // GPUBufferUsage.STORAGE
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const MAP_READ = 0x01;
const UNIFORM = 0x40;
const INDIRECT = 0x100;

/** The limits the core asks of a device: the adapter's large-buffer limits, 256-invocation workgroups. */
export function requiredLimits(adapter: GPUAdapter): Record<string, number> {
  const l = adapter.limits;
  return {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxStorageBuffersPerShaderStage: Math.min(l.maxStorageBuffersPerShaderStage, 10),
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: Math.min(l.maxComputeInvocationsPerWorkgroup, 256),
    maxComputeWorkgroupSizeX: Math.min(l.maxComputeWorkgroupSizeX, 256),
  };
}

/** Whether adapter info describes a software adapter (fallback adapter, CPU rasterizer such as llvmpipe). */
export function isSoftwareAdapter(info: { isFallbackAdapter?: boolean; architecture?: string; device?: string; description?: string }): boolean {
  return info.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader|softpipe|warp/i.test(`${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`) || info.architecture === 'software';
}

export class Gpu {
  readonly device: GPUDevice;
  private readonly shaders: ShaderSources;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pool = new Map<string, GPUBuffer[]>();
  private readonly pending: GPUBuffer[] = [];
  private encoder: GPUCommandEncoder | null = null;
  private readonly maxGroups: number;
  private lostReason: string | null = null;
  private gpuError: string | null = null;
  private profiler: { set: GPUQuerySet; names: string[]; capacity: number } | null = null;
  /** Whether a job's error scopes are pushed (see `beginJob`). */
  private scoped = false;

  /**
   * Whether the adapter is a software one (a fallback adapter such as lavapipe): its kernels run on the
   * host's CPU cores, so compute.stages=auto runs the test-time stage on the host.
   */
  readonly software: boolean;

  constructor(device: GPUDevice, shaders: ShaderSources, adapter: { software?: boolean } = {}) {
    this.device = device;
    this.shaders = shaders;
    this.software = adapter.software ?? false;
    this.maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
    device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
    // A validation or out-of-memory error invalidates the work it was part of; remember it so that the
    // next read-back fails instead of returning stale or zero data.
    device.addEventListener('uncapturederror', (ev) => {
      this.gpuError ??= (ev as GPUUncapturedErrorEvent).error.message;
    });
  }

  /**
   * Records GPU timestamps around every dispatch (needs the device's timestamp-query feature), for
   * `takeProfile`. Costs a little; for benchmarks only.
   */
  enableProfiling(capacity = 2048): boolean {
    if (!this.device.features.has('timestamp-query')) return false;
    this.profiler ??= { set: this.device.createQuerySet({ type: 'timestamp', count: capacity * 2 }), names: [], capacity };
    return true;
  }

  /** GPU milliseconds per kernel name since the last call (dispatches beyond the capacity are not timed). */
  async takeProfile(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const p = this.profiler;
    if (!p || p.names.length === 0) return out;
    const count = p.names.length * 2;
    const resolved = this.device.createBuffer({ size: count * 8, usage: 0x200 /* QUERY_RESOLVE */ | COPY_SRC });
    const staging = this.device.createBuffer({ size: count * 8, usage: MAP_READ | COPY_DST });
    const enc = this.enc();
    enc.resolveQuerySet(p.set, 0, count, resolved, 0);
    enc.copyBufferToBuffer(resolved, 0, staging, 0, count * 8);
    this.flush();
    await staging.mapAsync(1);
    const t = new BigInt64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    resolved.destroy();
    p.names.forEach((name, i) => out.set(name, (out.get(name) ?? 0) + Number(t[2 * i + 1] - t[2 * i]) / 1e6));
    p.names = [];
    return out;
  }

  get lost(): string | null {
    return this.lostReason;
  }

  /** Largest storage binding, in 4-byte elements. */
  get maxElements(): number {
    return Math.floor(this.device.limits.maxStorageBufferBindingSize / 4);
  }

  private pipeline(spec: KernelSpec): GPUComputePipeline {
    const key = `${spec.name}|${JSON.stringify(spec.constants ?? {})}|${spec.workgroupSize}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const srcKey = spec.shaders.join('+');
    let module = this.modules.get(srcKey);
    if (!module) {
      const code = spec.shaders
        .map((s) => {
          const src = this.shaders[s];
          if (src === undefined) throw new TttError('INTERNAL', `shader "${s}.wgsl" was not loaded`);
          return src;
        })
        .join('\n');
      module = this.device.createShaderModule({ label: srcKey, code });
      this.modules.set(srcKey, module);
    }
    p = this.device.createComputePipeline({
      label: spec.name,
      layout: 'auto',
      compute: { module, entryPoint: spec.entryPoint, constants: { WG: spec.workgroupSize, ...spec.constants } },
    });
    this.pipelines.set(key, p);
    return p;
  }

  /** A storage buffer of `length` 4-byte elements from the pool (contents undefined unless `zero`). */
  alloc(length: number, zero = false, usage = STORAGE | COPY_SRC | COPY_DST): GpuArray {
    const bytes = Math.max(16, Math.ceil((length * 4) / 256) * 256);
    if (bytes > this.device.limits.maxStorageBufferBindingSize) {
      throw new TttError(
        'TOO_LARGE',
        `a buffer of ${length} elements exceeds this device's storage binding limit (${this.maxElements} elements)`,
      );
    }
    const free = this.pool.get(poolKey(bytes, usage));
    const buffer = free?.pop() ?? this.device.createBuffer({ size: bytes, usage, label: `pool${bytes}` });
    if (zero) this.fill(buffer, 0, bytes);
    return { buffer, length };
  }

  /** A storage buffer that can also hold indirect dispatch arguments (the first three u32). */
  allocIndirect(length: number): GpuArray {
    return this.alloc(length, false, STORAGE | INDIRECT | COPY_SRC | COPY_DST);
  }

  /** Returns buffers to the pool. They may still be in use by recorded work; the pool only hands them out again in order. */
  release(...arrays: (GpuArray | null | undefined)[]): void {
    for (const a of arrays) {
      if (!a) continue;
      const key = poolKey(a.buffer.size, a.buffer.usage);
      const list = this.pool.get(key) ?? [];
      list.push(a.buffer);
      this.pool.set(key, list);
    }
  }

  /**
   * Destroys buffers instead of pooling them (large long-lived ones, such as a loaded memory bank, whose
   * size the pool is unlikely to be asked for again). Recorded work is submitted first; work already
   * submitted that uses them still completes (the device frees the memory after it).
   */
  free(...arrays: (GpuArray | null | undefined)[]): void {
    this.flush();
    for (const a of arrays) a?.buffer.destroy();
  }

  private fill(buffer: GPUBuffer, offset: number, bytes: number): void {
    this.enc().clearBuffer(buffer, offset, bytes);
  }

  /** Uploads typed data into a fresh pooled buffer. */
  upload(data: Float32Array | Uint32Array | Int32Array): GpuArray {
    const a = this.alloc(data.length);
    this.flush(); // keep queue order: earlier recorded work must not see this write
    this.device.queue.writeBuffer(a.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return a;
  }

  write(a: GpuArray, data: Float32Array | Uint32Array, elementOffset = 0): void {
    this.flush();
    this.device.queue.writeBuffer(a.buffer, elementOffset * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  zero(a: GpuArray): void {
    this.fill(a.buffer, 0, a.buffer.size);
  }

  copy(src: GpuArray, dst: GpuArray, elements = src.length, srcOffset = 0, dstOffset = 0): void {
    this.enc().copyBufferToBuffer(src.buffer, srcOffset * 4, dst.buffer, dstOffset * 4, elements * 4);
  }

  private enc(): GPUCommandEncoder {
    if (this.lostReason) throw new TttError('DEVICE_LOST', `the GPU device was lost (${this.lostReason})`);
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  /**
   * Records one dispatch. `groups` is the workgroup count along x (folded into y when it exceeds the
   * per-dimension limit; kernels recover the linear index from `num_workgroups`), or an explicit [x, y, z].
   */
  run(
    spec: KernelSpec,
    params: Readonly<Record<string, number>>,
    buffers: Readonly<Record<string, GpuArray>>,
    groups: number | readonly [number, number, number] | { indirect: GpuArray },
  ): void {
    const pipeline = this.pipeline(spec);
    const entries: GPUBindGroupEntry[] = [];
    if (spec.params && spec.params.length > 0) {
      const { offsets, bytes } = uniformLayout(spec.params);
      const raw = new ArrayBuffer(bytes);
      const u = new Uint32Array(raw);
      const i = new Int32Array(raw);
      const f = new Float32Array(raw);
      spec.params.forEach(([name, type], k) => {
        const v = params[name];
        if (v === undefined || Number.isNaN(v)) throw new TttError('INTERNAL', `${spec.name}: parameter ${name} is ${v}`);
        const at = offsets[k] / 4;
        if (type === 'u32') u[at] = v >>> 0;
        else if (type === 'i32') i[at] = v | 0;
        else f[at] = v;
      });
      const ub = this.device.createBuffer({ size: raw.byteLength, usage: UNIFORM | COPY_DST, label: `${spec.name}.params` });
      this.device.queue.writeBuffer(ub, 0, raw);
      this.pending.push(ub);
      entries.push({ binding: 0, resource: { buffer: ub } });
    }
    spec.bindings.forEach((name, k) => {
      if (name === null) return;
      const b = buffers[name];
      if (!b) throw new TttError('INTERNAL', `${spec.name}: buffer ${name} is missing`);
      entries.push({ binding: k + 1, resource: { buffer: b.buffer } });
    });
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: spec.name });
    const p = this.profiler;
    let timestampWrites: GPUComputePassTimestampWrites | undefined;
    if (p && p.names.length < p.capacity) {
      const k = p.names.push(spec.name) - 1;
      timestampWrites = { querySet: p.set, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 };
    }
    const pass = this.enc().beginComputePass({ label: spec.name, timestampWrites });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    if (typeof groups === 'number') {
      const [x, y] = this.fold(groups);
      if (x > 0) pass.dispatchWorkgroups(x, y);
    } else if ('indirect' in groups) {
      pass.dispatchWorkgroupsIndirect(groups.indirect.buffer, 0);
    } else {
      pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    }
    pass.end();
  }

  /** Splits a workgroup count into x and y within the per-dimension limit. */
  fold(groups: number): [number, number] {
    if (groups <= this.maxGroups) return [groups, 1];
    const y = Math.ceil(groups / this.maxGroups);
    return [Math.ceil(groups / y), y];
  }

  /** Submits what has been recorded. */
  flush(): void {
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
    }
  }

  /** Waits until the GPU has finished all submitted work (used for stage timings). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.dropPending();
    this.checkErrors();
    await this.checkScope();
  }

  /**
   * Opens a job: validation and out-of-memory errors of the work recorded from now on are captured in
   * error scopes that belong to this job (checked at every read-back and at `endJob`), so that an error
   * can never be reported to the next job. Jobs on one Gpu must not overlap.
   */
  beginJob(): void {
    if (this.scoped) throw new TttError('INTERNAL', 'a GPU job is already open on this device');
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    this.scoped = true;
  }

  /** Pops the job's error scopes; with `reopen`, pushes fresh ones. Returns the first error's message. */
  private async popScopes(reopen: boolean): Promise<string | null> {
    if (!this.scoped) return null;
    this.scoped = false;
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    if (reopen) {
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      this.scoped = true;
    }
    return (validation ?? oom)?.message ?? null;
  }

  /** Closes a job that completed: its work is submitted and finished; a GPU error of it is thrown here. */
  async endJob(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.dropPending();
    const error = await this.popScopes(false);
    if (error) throw gpuFailure(error);
    this.checkErrors();
  }

  /**
   * Leaves the device as clean as after a successful job, after a job failed at any point: the work it
   * recorded but did not submit is discarded (never submitted to the next job), what it submitted has
   * finished, its uniform buffers are freed, and its error scopes are popped (their errors belong to the
   * failed job and are dropped with it).
   */
  async abortJob(): Promise<void> {
    this.encoder = null;
    if (this.profiler) this.profiler.names = [];
    if (!this.lostReason) await this.device.queue.onSubmittedWorkDone().catch(() => undefined);
    this.dropPending();
    await this.popScopes(false).catch(() => null);
    this.gpuError = null;
  }

  private async checkScope(): Promise<void> {
    const error = await this.popScopes(true);
    if (error) throw gpuFailure(error);
  }

  private checkErrors(): void {
    if (this.lostReason) throw new TttError('DEVICE_LOST', `the GPU device was lost (${this.lostReason})`);
    if (this.gpuError) {
      const msg = this.gpuError;
      this.gpuError = null;
      throw gpuFailure(msg);
    }
  }

  private dropPending(): void {
    for (const b of this.pending.splice(0)) b.destroy();
  }

  /** Reads `length` elements starting at `offset` back to the host. */
  async read(a: GpuArray, length = a.length, offset = 0): Promise<ArrayBuffer> {
    const bytes = Math.ceil((length * 4) / 4) * 4;
    const staging = this.device.createBuffer({ size: Math.max(4, bytes), usage: MAP_READ | COPY_DST, label: 'readback' });
    if (bytes > 0) this.enc().copyBufferToBuffer(a.buffer, offset * 4, staging, 0, bytes);
    this.flush();
    await staging.mapAsync(1 /* GPUMapMode.READ */);
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    this.dropPending();
    this.checkErrors();
    await this.checkScope();
    return out;
  }

  async readF32(a: GpuArray, length = a.length, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(a, length, offset));
  }

  async readU32(a: GpuArray, length = a.length, offset = 0): Promise<Uint32Array> {
    return new Uint32Array(await this.read(a, length, offset));
  }

  /** Frees every pooled buffer and cached pipeline (the device itself belongs to the host). */
  destroy(): void {
    this.flush();
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.dropPending();
    this.pipelines.clear();
    this.modules.clear();
  }
}

const gpuFailure = (message: string): TttError => new TttError('INTERNAL', `a GPU command failed: ${message.split('\n')[0]}`);

const poolKey = (bytes: number, usage: number): string => `${bytes}:${usage}`;

export const ceilDiv = (a: number, b: number): number => Math.floor((a + b - 1) / b);
