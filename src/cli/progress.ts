// Progress of a long command on stderr: a redrawn bar with an ETA on a terminal, plain lines (at each tenth
// of a phase) when stderr is a file or a CI log.

export interface ProgressEvent {
  phase: string;
  done: number;
  total: number;
  item?: string;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export interface ProgressSink {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

/** A reporter for `{ phase, done, total }` events; call `end()` before printing anything else. */
export function progressReporter(out: ProgressSink, label: string, now: () => number = () => performance.now()) {
  let phase = '';
  let phaseStart = 0;
  let lastDraw = -Infinity;
  let lastTenth = -1;
  let drawn = false;
  const eta = (e: ProgressEvent, t: number) => (e.done > 0 ? ((t - phaseStart) / e.done) * (e.total - e.done) : NaN);
  return {
    update(e: ProgressEvent): void {
      const t = now();
      if (e.phase !== phase) {
        if (drawn && out.isTTY) out.write('\n');
        phase = e.phase;
        phaseStart = t;
        lastTenth = -1;
        drawn = false;
      }
      const finished = e.done >= e.total;
      if (out.isTTY) {
        if (!finished && t - lastDraw < 100) return;
        lastDraw = t;
        const width = 24;
        const filled = e.total > 0 ? Math.round((width * e.done) / e.total) : width;
        const pct = e.total > 0 ? ((100 * e.done) / e.total).toFixed(0) : '100';
        const tail = finished ? `in ${formatDuration(t - phaseStart)}` : `ETA ${formatDuration(eta(e, t))}`;
        let line = `${label} ${e.phase} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${e.done}/${e.total} ${pct}% ${tail}${e.item ? ` ${e.item}` : ''}`;
        // A pseudo-terminal without a size reports 0 columns.
        const cols = out.columns && out.columns > 20 ? out.columns : 120;
        if (line.length > cols - 1) line = line.slice(0, cols - 1);
        out.write(`\r\x1b[K${line}`);
        drawn = true;
        return;
      }
      const tenth = e.total > 0 ? Math.floor((10 * e.done) / e.total) : 10;
      if (tenth === lastTenth && !finished) return;
      if (finished && lastTenth === 10) return;
      lastTenth = tenth;
      const tail = finished ? `done in ${formatDuration(t - phaseStart)}` : `${formatDuration(t - phaseStart)} elapsed, ETA ${formatDuration(eta(e, t))}`;
      out.write(`${label}: ${e.phase} ${e.done}/${e.total}, ${tail}\n`);
    },
    end(): void {
      if (drawn && out.isTTY) out.write('\n');
      drawn = false;
    },
  };
}
