// One process at a time on an on-disk PGlite database: PGlite has no postmaster to arbitrate, and two
// processes writing one data directory corrupt it (e.g. `ttt keys` while `npm start` runs). A lock file
// beside the directory holds the owner's pid; a lock whose process is gone is taken over.

import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Another live process holds the database: a state to report in one line, not a bug. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly owner: number,
  ) {
    super(
      `the PGlite database at ${dir} is in use by process ${owner} (a running server?): PGlite allows one process at a time, so stop that process first, or let the server and this command share a PostgreSQL server through DATABASE_URL`,
    );
    this.name = 'DataDirInUseError';
  }
}

/** Takes the lock of `dir` (throws DataDirInUseError when a live process holds it); returns its release. */
export function lockDataDir(dir: string): () => void {
  const path = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      const release = () => {
        process.off('exit', release);
        try {
          if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
      process.on('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(readFileSync(path, 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new DataDirInUseError(dir, owner);
      }
      unlinkSync(path);
    }
  }
  throw new Error(`could not lock the PGlite database at ${dir} (${path})`);
}
