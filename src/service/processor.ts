// What the service asks of a processor (src/processing implements it: in-process on PGlite, the durable
// PostgreSQL queue otherwise). Declared here so that the service layer depends on no layer above it.

import type { Gpu } from '../core/gpu.ts';
import type { DeviceLimits } from '../core/plan.ts';

export interface InspectionProcessor {
  /**
   * Schedules an inspection (QUEUED in the database) for processing. The durable queue has stored the
   * job when the returned promise resolves.
   */
  enqueue(id: string): void | Promise<void>;
  /** Resolves once every scheduled inspection has been processed. */
  drain(): Promise<void>;
  /**
   * Stops taking work and waits for the jobs in progress. Resolves with the number of jobs released
   * unfinished instead (the durable queue's shutdown timeout): their handlers may still run and hold
   * database connections, so the process should then exit rather than wait for them.
   */
  close(): Promise<{ released: number }>;
  /**
   * Runs `fn` with exclusive use of the device the jobs run on: the service builds the built-in scorer's
   * memory banks there, between jobs' GPU stages.
   */
  withGpu<T>(fn: (gpu: Gpu) => Promise<T>): Promise<T>;
  /** The durable queue only: resolves when the queue answers, throws why it does not (readiness). */
  ready?(): Promise<void>;
  /**
   * The limits of the device the jobs run on, for the submission's check that a run fits (core/plan.ts);
   * WebGPU's default limits where this process has no device (no adapter).
   */
  deviceLimits(): Promise<DeviceLimits>;
}
