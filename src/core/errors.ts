// Expected failures carry a stable code, so the CLI and the GraphQL API can name the problem to the user.

export type ErrorCode =
  | 'INVALID_INPUT'
  | 'UNSUPPORTED_FORMAT'
  | 'SIZE_MISMATCH'
  | 'NON_FINITE'
  | 'CONSTANT_MAP'
  | 'TOO_LARGE'
  | 'NOT_FOUND'
  | 'INVALID_OPTION'
  | 'QUEUE_FULL'
  | 'DEVICE_LOST'
  | 'TIMEOUT'
  | 'NO_ADAPTER'
  | 'INTERNAL';

/** Failures of the inputs themselves: the same inputs fail the same way every time. */
export const INPUT_ERROR_CODES: readonly ErrorCode[] = ['INVALID_INPUT', 'UNSUPPORTED_FORMAT', 'SIZE_MISMATCH', 'NON_FINITE', 'CONSTANT_MAP', 'TOO_LARGE', 'INVALID_OPTION', 'NOT_FOUND'];

export class TttError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'TttError';
    this.code = code;
  }
}

/** Prefixes the message of an expected error with the input it concerns (a file name, a field). */
export function withSubject<T>(subject: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TttError) throw new TttError(e.code, `${subject}: ${e.message}`);
    throw e;
  }
}

export async function withSubjectAsync<T>(subject: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof TttError) throw new TttError(e.code, `${subject}: ${e.message}`);
    throw e;
  }
}
