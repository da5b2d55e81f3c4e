// The Node HTTP server around the app: how long a request may take to arrive, and where it listens.

import { createServer, type Server } from 'node:http';
import type { App } from './yoga.ts';
import type { ServiceConfig } from './config.ts';

/**
 * The server for `app`. A client must send a request's headers within `headersTimeoutMs` and all of it
 * (body included) within `requestTimeoutMs`, or its connection is closed (408 when nothing was answered
 * yet): slow senders cannot hold connections. Node applies both to receiving the request only, so an
 * answer that streams for long (an SSE subscription) is not cut. Expired requests are looked for every
 * `checkMs` (Node's default, 30 s, would let a header timeout of 10 s run to 40 s).
 */
export function createHttpServer(app: App, config: Pick<ServiceConfig, 'headersTimeoutMs' | 'requestTimeoutMs'>): Server {
  const checkMs = Math.max(250, Math.min(1000, Math.floor(config.headersTimeoutMs / 4)));
  return createServer({ headersTimeout: config.headersTimeoutMs, requestTimeout: config.requestTimeoutMs, connectionsCheckingInterval: checkMs }, app.yoga);
}

/** Listens on the configured port and address (every interface when HOST is unset). */
export function listen(server: Server, config: Pick<ServiceConfig, 'port' | 'host'>): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const ready = () => {
      server.off('error', reject);
      resolve();
    };
    if (config.host === null) server.listen(config.port, ready);
    else server.listen(config.port, config.host, ready);
  });
}
