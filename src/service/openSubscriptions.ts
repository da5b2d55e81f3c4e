// A subscription outlives the request that authenticated it: this module keeps the key of every open
// subscription of the process and ends the stream (a final UNAUTHENTICATED error, then `complete`) once
// that key is revoked or its role or products change. A revocation made through this process ends its
// streams at once; one made anywhere else (`ttt keys revoke`, another server process, SQL) is seen by a
// check of every open subscription's key, in one statement, every `subscriptionKeyCheckMs`.

import { GraphQLError, type ExecutionResult } from 'graphql';
import type { PrismaClient } from '../db.ts';
import type { Principal } from './auth.ts';
import type { Logger } from './log.ts';

interface Watcher {
  principal: Principal;
  stop(reason: string): void;
}

function sameScope(a: readonly string[] | null, b: readonly string[] | null): boolean {
  if (a === null || b === null) return a === b;
  const sorted = [...b].sort();
  return a.length === b.length && [...a].sort().every((id, k) => id === sorted[k]);
}

export class OpenSubscriptions {
  private readonly byKey = new Map<string, Set<Watcher>>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly db: PrismaClient,
    /** Longest time a stream outlives its key when the key is revoked elsewhere (plus one statement). */
    readonly checkMs: number,
    private readonly logger: Logger,
  ) {}

  /** Open subscriptions of the process (tests and logs). */
  get size(): number {
    let n = 0;
    for (const set of this.byKey.values()) n += set.size;
    return n;
  }

  /**
   * Wraps a subscription's results: they pass through until the principal's key is no longer what it was,
   * then one last result carries the UNAUTHENTICATED error and the stream ends (the source is closed).
   */
  guard(principal: Principal, source: AsyncIterable<ExecutionResult>): AsyncIterableIterator<ExecutionResult> {
    const it = source[Symbol.asyncIterator]();
    let final: ExecutionResult | null = null;
    let finished = false;
    let wake: (() => void) | null = null;
    const stopped = new Promise<void>((resolve) => (wake = resolve));
    const watcher: Watcher = {
      principal,
      stop: (reason) => {
        if (finished || final) return;
        final = { errors: [new GraphQLError(reason, { extensions: { code: 'UNAUTHENTICATED' } })] };
        wake!();
      },
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      this.remove(watcher);
      // Not awaited: an async generator's return() waits for its pending next(), which may never come.
      void Promise.resolve(it.return?.()).catch(() => undefined);
    };
    this.add(watcher);
    const done = (): IteratorResult<ExecutionResult> => ({ done: true, value: undefined });
    const ending = (): IteratorResult<ExecutionResult> => {
      const value = final!;
      finish();
      return { done: false, value };
    };
    const self: AsyncIterableIterator<ExecutionResult> = {
      async next() {
        if (finished) return done();
        if (final) return ending();
        const pending = it.next();
        // Left behind when the stream stops first; its failure then concerns no one.
        pending.catch(() => undefined);
        let r: IteratorResult<ExecutionResult> | null;
        try {
          r = await Promise.race([pending, stopped.then(() => null)]);
        } catch (error) {
          finish();
          throw error;
        }
        // A revocation wins over an event that arrives with it.
        if (r === null || final) return finished ? done() : ending();
        if (r.done) finish();
        return r;
      },
      async return() {
        finish();
        return done();
      },
      async throw(error: unknown) {
        finish();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return self;
      },
    };
    return self;
  }

  /** Ends at once every open subscription of the key (revoked through this process). */
  revoked(keyId: string): void {
    for (const w of [...(this.byKey.get(keyId) ?? [])]) w.stop('the API key of this subscription was revoked');
  }

  /** Checks the keys of every open subscription in one statement; ends the streams of keys no longer as they were. */
  check(): Promise<void> {
    this.checking ??= this.checkNow().finally(() => (this.checking = null));
    return this.checking;
  }

  private async checkNow(): Promise<void> {
    const ids = [...this.byKey.keys()];
    if (ids.length === 0) return;
    let rows;
    try {
      rows = await this.db.apiKey.findMany({
        where: { id: { in: ids }, revokedAt: null },
        select: { id: true, role: true, allProducts: true, products: { select: { productId: true } } },
      });
    } catch (error) {
      // The streams stay open: new requests fail while the database is unreachable, and the next check retries.
      this.logger.log('warn', 'subscription key check failed', { error });
      return;
    }
    const live = new Map(rows.map((r) => [r.id, { role: r.role, productIds: r.allProducts ? null : r.products.map((p) => p.productId) }]));
    for (const id of ids) {
      const now = live.get(id);
      for (const w of [...(this.byKey.get(id) ?? [])]) {
        if (!now) w.stop('the API key of this subscription was revoked');
        else if (now.role !== w.principal.role || !sameScope(now.productIds, w.principal.productIds)) {
          w.stop('the role or products of this subscription\'s API key changed: subscribe again');
        }
      }
    }
  }

  private add(w: Watcher): void {
    const set = this.byKey.get(w.principal.keyId) ?? new Set();
    set.add(w);
    this.byKey.set(w.principal.keyId, set);
    if (!this.timer) {
      this.timer = setInterval(() => void this.check(), this.checkMs);
      this.timer.unref?.();
    }
  }

  private remove(w: Watcher): void {
    const set = this.byKey.get(w.principal.keyId);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.byKey.delete(w.principal.keyId);
    if (this.byKey.size === 0) this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
