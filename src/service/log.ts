// Structured logs: one JSON object per line on stdout (errors on stderr), one line per request and per
// inspection, so that a log shipper can index them without parsing prose.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function errorFields(e: unknown): unknown {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return e;
}

export function jsonLogger(minLevel: LogLevel = (process.env.LOG_LEVEL as LogLevel) || 'info'): Logger {
  const min = RANK[minLevel] ?? RANK.info;
  return {
    log(level, msg, fields = {}) {
      if (RANK[level] < min) return;
      const entry: Record<string, unknown> = { time: new Date().toISOString(), level, msg };
      for (const [k, v] of Object.entries(fields)) entry[k] = k === 'error' ? errorFields(v) : v;
      (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(`${JSON.stringify(entry)}\n`);
    },
  };
}

/** Keeps entries in memory (tests read them). */
export function memoryLogger(): Logger & { entries: { level: LogLevel; msg: string; fields: Record<string, unknown> }[] } {
  const entries: { level: LogLevel; msg: string; fields: Record<string, unknown> }[] = [];
  return { entries, log: (level, msg, fields = {}) => void entries.push({ level, msg, fields }) };
}
