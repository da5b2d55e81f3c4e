// The Node HTTP server around the app: how long a request may take to arrive, and where it listens.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { App } from './yoga.ts';
import type { ServiceConfig } from '../service/config.ts';

/**
 * The server for `app`. A client must send a request's headers within `headersTimeoutMs` and all of it
 * (body included) within `requestTimeoutMs`, or its connection is closed (408 when nothing was answered
 * yet): slow senders cannot hold connections. Node applies both to receiving the request only, so an
 * answer that streams for long (an SSE subscription) is not cut. Expired requests are looked for every
 * `checkMs` (Node's default, 30 s, would let a header timeout of 10 s run to 40 s).
 */
export function createHttpServer(app: App, config: Pick<ServiceConfig, 'headersTimeoutMs' | 'requestTimeoutMs'>): Server {
  const checkMs = Math.max(250, Math.min(1000, Math.floor(config.headersTimeoutMs / 4)));
  const server = createServer({ headersTimeout: config.headersTimeoutMs, requestTimeout: config.requestTimeoutMs, connectionsCheckingInterval: checkMs }, app.yoga);
  lingerAfterEarlyAnswers(server);
  return server;
}

/** How long, and for how many more bytes, a connection answered before its request was read stays open. */
export const LINGER = { ms: 2000, bytes: 4 * 1024 * 1024 };

/**
 * Lingering close (as nginx's): a connection closed after an answer sent before its request body was read
 * (a 401 or 413 refusal) first reads and drops what the client still sends, up to LINGER, and closes when
 * the client has stopped. Closing a socket with unread input at once makes the kernel send a reset, which
 * can reach the client before it has read the answer: it would see a dropped connection, not the refusal.
 */
function lingerAfterEarlyAnswers(server: Server): void {
  const current = new WeakMap<Socket, IncomingMessage>();
  server.on('request', (req: IncomingMessage) => current.set(req.socket, req));
  server.on('connection', (socket: Socket) => {
    const destroySoon = socket.destroySoon.bind(socket);
    socket.destroySoon = () => {
      const req = current.get(socket);
      if (!req || req.complete) return destroySoon();
      socket.end();
      let left = LINGER.bytes;
      const close = () => {
        clearTimeout(timer);
        socket.destroy();
      };
      const timer = setTimeout(close, LINGER.ms);
      socket.on('data', (chunk: Buffer) => {
        if ((left -= chunk.byteLength) <= 0) close();
      });
      socket.once('end', close);
    };
  });
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
