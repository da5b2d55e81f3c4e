// Child processes of the project's entry points (the server, workers) for the multi-process test and the
// load bench: spawned through tsx from the repository root, their output collected.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const TSX = `${ROOT}node_modules/.bin/tsx`;

/** What a run of the `ttt` CLI printed, and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the `ttt` CLI (src/cli/main.ts through tsx) from the repository root, to its end. */
export function runCli(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(TSX, [`${ROOT}src/cli/main.ts`, ...args], { cwd: ROOT, maxBuffer: 16 << 20, ...(env && { env }) }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export interface Proc {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output: string[];
  exited: Promise<number | null>;
}

/** Runs `tsx script` (a path relative to the repository root) with `env` added to this process's. */
export function startProcess(script: string, env: Record<string, string>): Proc {
  const child = spawn(TSX, [script], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, output, exited };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Polls `fn` every `everyMs` until it returns something truthy; throws after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
