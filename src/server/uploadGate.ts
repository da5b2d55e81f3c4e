// Admission of uploads at the edge: at most MAX_CONCURRENT_UPLOADS (the CPU cores, 2 to 8) multipart
// GraphQL requests (submissions, nominal samples) are read and processed at once per process; beyond,
// HTTP 429 BUSY with a jittered Retry-After, from the headers alone, before any of the body is read. Each admitted upload reads its
// body, decodes its files and writes them in one transaction: a burst of stations all at once would hold
// the event loop, the decoding thread and the database pool's connections together, and every request
// (the dashboard's too) would wait behind all of them. Bounded, an admitted submission waits behind a
// few, a refused one is answered at once, and the dashboard keeps connections.

import type { Plugin } from 'graphql-yoga';
import { retryAfterWithJitter } from '../service/inspections.ts';
import { jsonError } from './auth.ts';

/** The mean Retry-After of a refused upload, in seconds (1 to 3 s with jitter). */
export const UPLOAD_RETRY_AFTER_SECONDS = 2;

export function isUpload(request: Request, graphqlEndpoint: string): boolean {
  if (request.method !== 'POST') return false;
  const path = new URL(request.url).pathname;
  if (path !== graphqlEndpoint && path !== `${graphqlEndpoint}/`) return false;
  return /^multipart\/form-data\b/i.test(request.headers.get('content-type') ?? '');
}

/** Counts the uploads in flight (`active`: diagnostics and tests). */
export class UploadGate {
  private inFlight = 0;
  constructor(readonly max: number) {}

  get active(): number {
    return this.inFlight;
  }

  /** A release function when admitted (call it once, when the answer is sent), or null: refuse. */
  enter(): (() => void) | null {
    if (this.inFlight >= this.max) return null;
    this.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
    };
  }
}

/**
 * Runs after authentication and the body-size check (an unauthenticated or oversized upload is refused
 * for that, and takes no slot); the slot is held until the answer is ready.
 */
export function uploadGatePlugin(gate: UploadGate, graphqlEndpoint: string): Plugin {
  const held = new WeakMap<Request, () => void>();
  return {
    onRequest({ request, endResponse }) {
      if (!isUpload(request, graphqlEndpoint)) return;
      const release = gate.enter();
      if (!release) {
        const seconds = retryAfterWithJitter(UPLOAD_RETRY_AFTER_SECONDS);
        endResponse(
          jsonError(429, 'BUSY', `the server is processing ${gate.max} uploads (MAX_CONCURRENT_UPLOADS); nothing was read or stored: retry in ${seconds} s`, {
            'retry-after': String(seconds),
            // The body is not read: the connection is closed after the answer (lingering close, http.ts).
            connection: 'close',
          }),
        );
        return;
      }
      held.set(request, release);
      // A client that goes away mid-body also frees its slot.
      request.signal?.addEventListener?.('abort', release, { once: true });
    },
    onResponse({ request }) {
      held.get(request)?.();
    },
  };
}
