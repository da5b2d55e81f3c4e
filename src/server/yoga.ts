// The HTTP app: GraphQL (graphql-yoga, GraphiQL, SSE subscriptions, multipart uploads) and the inspection
// file routes on the same server, with one structured log line per request. `listen()` is main.ts's job.

import { GraphQLError } from 'graphql';
import { createYoga, maskError as defaultMaskError, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Context } from '../builder.ts';
import { TttError } from '../core/errors.ts';
import type { PrismaClient } from '../db.ts';
import type { InspectionProcessor } from '../processing/processor.ts';
import { schema } from '../schema/index.ts';
import { FILE_KINDS, renderFile, type FileKind } from '../service/files.ts';
import { defaultConfig, type ServiceConfig } from './config.ts';
import { createInspectionEvents, type InspectionEvents } from './events.ts';
import { jsonLogger, type Logger } from './log.ts';

export interface AppOptions {
  db: PrismaClient;
  processor: InspectionProcessor;
  events?: InspectionEvents;
  config?: ServiceConfig;
  logger?: Logger;
}

export interface App {
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  events: InspectionEvents;
  config: ServiceConfig;
}

/** Codes whose messages are meant for the client; anything else is masked. */
const EXPECTED = new Set(['NOT_FOUND', 'INVALID_INPUT', 'INVALID_OPTION', 'UNSUPPORTED_FORMAT', 'SIZE_MISMATCH', 'NON_FINITE', 'CONSTANT_MAP', 'TOO_LARGE', 'QUEUE_FULL']);

const FILE_ROUTE = new RegExp(`^/files/inspections/([0-9a-f-]{36})/(${FILE_KINDS.join('|')})\\.png$`, 'i');

function filesPlugin(db: PrismaClient): Plugin {
  return {
    async onRequest({ url, request, endResponse }) {
      const m = FILE_ROUTE.exec(url.pathname);
      if (!m) return;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        endResponse(new Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } }));
        return;
      }
      const file = await renderFile(db, m[1].toLowerCase(), m[2] as FileKind);
      if (!file.ok) {
        endResponse(new Response(`${file.reason}\n`, { status: file.status, headers: { 'content-type': 'text/plain; charset=utf-8' } }));
        return;
      }
      endResponse(
        new Response(request.method === 'HEAD' ? null : (file.png as Uint8Array<ArrayBuffer>), {
          status: 200,
          headers: { 'content-type': 'image/png', 'content-length': String(file.png.byteLength), 'cache-control': 'no-cache' },
        }),
      );
    },
  };
}

/** Refuses bodies whose declared length exceeds the limit before anything parses them. */
function bodyLimitPlugin(maxBytes: number): Plugin {
  return {
    onRequest({ request, endResponse }) {
      const declared = Number(request.headers.get('content-length') ?? 0);
      if (declared > maxBytes) {
        const message = `the request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`;
        endResponse(
          new Response(JSON.stringify({ errors: [{ message, extensions: { code: 'TOO_LARGE' } }] }), {
            status: 413,
            headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close' },
          }),
        );
      }
    },
  };
}

function requestLogPlugin(logger: Logger): Plugin {
  const started = new WeakMap<Request, { t: number; operation?: string }>();
  return {
    onRequest({ request }) {
      started.set(request, { t: performance.now() });
    },
    onParams({ params, request }) {
      const s = started.get(request);
      if (s) s.operation = params.operationName ?? /^\s*(query|mutation|subscription)\b[^{(]*/.exec(params.query ?? '')?.[0].trim();
    },
    onResponse({ request, response }) {
      const s = started.get(request);
      const url = new URL(request.url);
      logger.log('info', 'request', {
        method: request.method,
        path: url.pathname,
        status: response.status,
        operation: s?.operation,
        ms: s ? Math.round((performance.now() - s.t) * 1000) / 1000 : undefined,
      });
    },
  };
}

export function createApp(options: AppOptions): App {
  const config = options.config ?? defaultConfig();
  const logger = options.logger ?? jsonLogger();
  const events = options.events ?? createInspectionEvents();
  const { db, processor } = options;
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: { title: 'ttt-inspect', subscriptionsProtocol: 'SSE' },
    logging: false,
    context: ({ request }) => ({
      db,
      processor,
      events,
      config,
      logger,
      baseUrl: config.publicUrl ?? new URL(request.url).origin,
    }),
    maskedErrors: {
      maskError(error, message, isDev) {
        const original = error instanceof GraphQLError ? error.originalError : error;
        if (original instanceof TttError && EXPECTED.has(original.code)) {
          const at = error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {};
          return new GraphQLError(original.message, { ...at, extensions: { code: original.code } });
        }
        // The client's own mistakes (syntax, validation, variable values) are reported as they are.
        if (error instanceof GraphQLError && (original === undefined || original instanceof GraphQLError)) return error;
        logger.log('error', 'unexpected error', { error: original ?? error });
        return defaultMaskError(error, message, isDev);
      },
    },
    plugins: [requestLogPlugin(logger), bodyLimitPlugin(config.maxRequestBytes), filesPlugin(db)],
  });
  return { yoga, events, config };
}
