// Reading inputs with a size limit and clear errors, and writing outputs atomically (temp file in the same
// directory, then rename), so a failure never leaves a half-written file behind.

import { randomBytes } from 'node:crypto';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TttError } from '../core/errors.ts';

export const DEFAULT_MAX_INPUT_BYTES = 200 * 1024 * 1024;

/**
 * The one file `<base><ext>` of `extensions` that exists (a score map, a point cloud): NOT_FOUND naming the
 * paths looked for when none does, INVALID_INPUT when several do (which one was meant is not guessed).
 */
export async function findOneFile(base: string, extensions: readonly string[], what: string, owner: string): Promise<string> {
  const found: string[] = [];
  for (const ext of extensions) if ((await stat(base + ext).catch(() => null))?.isFile()) found.push(base + ext);
  if (found.length === 0) {
    throw new TttError('NOT_FOUND', `${base}${extensions[0]}: the ${what} of ${owner} does not exist (looked for ${extensions.map((e) => base + e).join(', ')})`);
  }
  if (found.length > 1) throw new TttError('INVALID_INPUT', `${found[0]}: ${owner} has more than one ${what} (${found.join(', ')}); keep one`);
  return found[0];
}

function fsError(path: string, action: string, e: unknown): TttError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new TttError('NOT_FOUND', `${path}: ${action}: no such file or directory`);
  if (code === 'EACCES' || code === 'EPERM') return new TttError('INVALID_INPUT', `${path}: ${action}: permission denied`);
  if (code === 'EISDIR') return new TttError('INVALID_INPUT', `${path}: ${action}: is a directory`);
  if (code === 'ENOTDIR') return new TttError('NOT_FOUND', `${path}: ${action}: a parent of the path is not a directory`);
  if (code === 'ENOSPC') return new TttError('INVALID_INPUT', `${path}: ${action}: no space left on the device`);
  return new TttError('INVALID_INPUT', `${path}: ${action}: ${(e as Error).message}`);
}

/**
 * The bytes of an input file. `what` says what the file is for ("image", "score map") in messages;
 * files over `maxBytes` are refused before they are read.
 */
export async function readInputFile(path: string, what: string, maxBytes = DEFAULT_MAX_INPUT_BYTES): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw fsError(path, `cannot open the ${what}`, e);
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw new TttError('INVALID_INPUT', `${path}: the ${what} is a directory, not a file`);
    if (stat.size > maxBytes) {
      throw new TttError('TOO_LARGE', `${path}: the ${what} is ${stat.size} bytes, more than the limit of ${maxBytes}`);
    }
    if (!stat.isFile()) throw new TttError('INVALID_INPUT', `${path}: the ${what} is not a regular file`);
    // One spare byte tells a file that grew since stat() from one that did not.
    const buf = new Uint8Array(stat.size + 1);
    let total = 0;
    while (total < buf.length) {
      const { bytesRead } = await handle.read(buf, total, buf.length - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    if (total !== stat.size) throw new TttError('INVALID_INPUT', `${path}: the ${what} changed while it was being read`);
    return buf.subarray(0, total);
  } catch (e) {
    if (e instanceof TttError) throw e;
    throw fsError(path, `cannot read the ${what}`, e);
  } finally {
    await handle.close();
  }
}

/** Fails early (before any work) when an output path cannot be written: a missing directory, a directory. */
export async function checkOutputPath(path: string): Promise<void> {
  const dir = dirname(path);
  let d;
  try {
    d = await stat(dir);
  } catch {
    throw new TttError('NOT_FOUND', `${path}: the output directory ${dir} does not exist`);
  }
  if (!d.isDirectory()) throw new TttError('INVALID_INPUT', `${path}: ${dir} is not a directory`);
  const existing = await stat(path).catch(() => null);
  if (existing?.isDirectory()) throw new TttError('INVALID_INPUT', `${path}: the output is a directory`);
}

/** Writes each file to a temp sibling, syncs it, and only then renames them all into place. */
export async function writeFilesAtomic(files: readonly { path: string; bytes: Uint8Array }[]): Promise<void> {
  const staged: { tmp: string; path: string }[] = [];
  try {
    for (const { path, bytes } of files) {
      const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
      let handle;
      try {
        handle = await open(tmp, 'wx');
      } catch (e) {
        throw fsError(path, 'cannot write the output', e);
      }
      staged.push({ tmp, path });
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } catch (e) {
        throw fsError(path, 'cannot write the output', e);
      } finally {
        await handle.close();
      }
    }
    for (const { tmp, path } of staged) {
      try {
        await rename(tmp, path);
      } catch (e) {
        throw fsError(path, 'cannot move the output into place', e);
      }
    }
  } catch (e) {
    await Promise.all(staged.map(({ tmp }) => unlink(tmp).catch(() => undefined)));
    throw e;
  }
}

export function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  return writeFilesAtomic([{ path, bytes }]);
}
