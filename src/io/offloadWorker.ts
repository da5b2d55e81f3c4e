// The worker thread of offload.ts: runs the named task of offloadTasks.ts and posts its result back
// (typed arrays in the result are transferred, not copied).

import { parentPort } from 'node:worker_threads';
import { TttError } from '../core/errors.ts';
import type { Reply } from './offload.ts';
import { TASKS, transferables } from './offloadTasks.ts';

const port = parentPort!;
port.on('message', async ({ id, task, args }: { id: number; task: keyof typeof TASKS; args: unknown[] }) => {
  let reply: Reply;
  let transfer: ArrayBuffer[] = [];
  try {
    const value = await (TASKS[task] as (...a: unknown[]) => Promise<unknown>)(...args);
    reply = { id, ok: true, value };
    transfer = transferables(value);
  } catch (e) {
    reply = e instanceof TttError ? { id, ok: false, code: e.code, message: e.message } : { id, ok: false, message: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined };
  }
  port.postMessage(reply, transfer);
});
