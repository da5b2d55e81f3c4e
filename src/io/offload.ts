// Runs CPU-heavy decoding and encoding (the JavaScript pixel loops around sharp: float conversion, heat-map
// colouring, overlay compositing, validation) in worker threads, so that the server's event loop keeps
// answering other requests while a large file is decoded or rendered. Tasks are the functions of
// offloadTasks.ts, called by name; errors come back as TttErrors with their code.

import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TttError, type ErrorCode } from '../core/errors.ts';
import type { TASKS } from './offloadTasks.ts';

export type TaskName = keyof typeof TASKS;
type Task<K extends TaskName> = (typeof TASKS)[K];

/** A worker's answer to one call. */
export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; code?: ErrorCode; message: string; stack?: string };

interface Pending {
  slot: Slot;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

// The workers run the TypeScript sources as the main thread does: through tsx's loader.
// (The ESM build of its API: the package's `require` condition, which createRequire resolves, is CommonJS.)
const TSX_API = new URL('dist/esm/api/index.mjs', pathToFileURL(createRequire(import.meta.url).resolve('tsx/package.json'))).href;

/** One thread per core but one (the event loop keeps one), at least one. */
export const OFFLOAD_THREADS = Math.max(1, availableParallelism() - 1);

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Calls completed per task, to show where work ran (tests, diagnostics). */
  readonly calls = new Map<TaskName, number>();

  constructor(private readonly size = OFFLOAD_THREADS) {}

  /** Runs `task(...args)` on the least busy worker; `transfer` lists buffers handed over, not copied. */
  run<K extends TaskName>(task: K, args: Parameters<Task<K>>, transfer: ArrayBuffer[] = []): Promise<Awaited<ReturnType<Task<K>>>> {
    const slot = this.pick();
    const id = this.nextId++;
    // A worker with calls in flight keeps the process alive; an idle one does not.
    if (slot.busy++ === 0) slot.worker.ref();
    return new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { slot, resolve, reject });
      slot.worker.postMessage({ id, task, args }, transfer);
    }).finally(() => {
      if (--slot.busy === 0) slot.worker.unref();
      this.calls.set(task, (this.calls.get(task) ?? 0) + 1);
    }) as Promise<Awaited<ReturnType<Task<K>>>>;
  }

  /** Ends the workers; calls in flight fail. */
  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private pick(): Slot {
    const idle = this.slots.find((s) => s.busy === 0);
    if (idle) return idle;
    if (this.slots.length < this.size) return this.spawn();
    return this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  private spawn(): Slot {
    // Registers tsx's loader in the new thread, then imports the worker module through it.
    const entry = new URL('./offloadWorker.ts', import.meta.url).href;
    const worker = new Worker(`import(${JSON.stringify(TSX_API)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}))`, { eval: true });
    const slot: Slot = { worker, busy: 0 };
    worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else if (r.code) p.reject(new TttError(r.code, r.message));
      else p.reject(Object.assign(new Error(r.message), { stack: r.stack }));
    });
    // A worker that dies (out of memory, a native crash) fails the calls it held; the next call starts another.
    const fail = (e: unknown) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      for (const [id, p] of this.pending) {
        if (p.slot === slot) {
          this.pending.delete(id);
          p.reject(new TttError('INTERNAL', `a decoding worker thread stopped: ${e instanceof Error ? e.message : String(e)}`));
        }
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    // Idle: unref'd (after the listeners: adding a 'message' one refs the worker again).
    worker.unref();
    this.slots.push(slot);
    return slot;
  }
}

let shared: WorkerPool | undefined;

/** The process's pool, started on first use. */
export function offload(): WorkerPool {
  return (shared ??= new WorkerPool());
}
