// The HTTP app: GraphQL (graphql-yoga, GraphiQL, SSE subscriptions, multipart uploads) and the inspection
// file routes on the same server, behind API keys, rate and size limits and graphql-armor's document
// limits, with one structured log line per request. `listen()` is main.ts's job.

import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError } from 'graphql';
import { createYoga, maskError as defaultMaskError, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Context } from '../builder.ts';
import { INPUT_ERROR_CODES, TttError, type ErrorCode } from '../core/errors.ts';
import type { PrismaClient } from '../db.ts';
import type { InspectionProcessor } from '../processing/processor.ts';
import { schema } from '../schema/index.ts';
import { FILE_ROLE, hasRole } from '../service/auth.ts';
import type { Faults } from '../service/faults.ts';
import { FILE_KINDS, InspectionFiles, type FileKind } from '../service/files.ts';
import { authPlugin, checkOperationRoles, disableIntrospectionPlugin, jsonError, operationRolesPlugin, principalOf, RateLimiter, subscriptionKeysPlugin } from './auth.ts';
import { defaultConfig, type GraphqlLimits, type ServiceConfig } from './config.ts';
import { createInspectionEvents, type InspectionEvents } from './events.ts';
import { jsonLogger, type Logger } from './log.ts';
import { OpenSubscriptions } from './openSubscriptions.ts';

export interface AppOptions {
  db: PrismaClient;
  processor: InspectionProcessor;
  events?: InspectionEvents;
  config?: ServiceConfig;
  logger?: Logger;
  /** Test-only failure injection (see service/faults.ts). */
  faults?: Faults;
}

export interface App {
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  events: InspectionEvents;
  config: ServiceConfig;
  subscriptions: OpenSubscriptions;
  files: InspectionFiles;
}

/** Codes whose messages are meant for the client; anything else is masked. */
const EXPECTED = new Set<ErrorCode>([...INPUT_ERROR_CODES, 'QUEUE_FULL']);

const FILE_ROUTE = new RegExp(`^/files/inspections/([0-9a-f-]{36})/(${FILE_KINDS.join('|')})\\.png$`, 'i');

function filesPlugin(files: InspectionFiles): Plugin {
  return {
    async onRequest({ url, request, endResponse }) {
      const m = FILE_ROUTE.exec(url.pathname);
      if (!m) return;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        endResponse(new Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } }));
        return;
      }
      const principal = principalOf(request);
      if (!principal || !hasRole(principal, FILE_ROLE)) {
        endResponse(new Response('forbidden\n', { status: 403, headers: { 'content-type': 'text/plain; charset=utf-8' } }));
        return;
      }
      const file = await files.get(m[1].toLowerCase(), m[2] as FileKind, principal, request.headers.get('if-none-match'));
      // Clients may keep a file and must revalidate it: its ETag changes when the inspection is processed again.
      const caching = { 'cache-control': 'no-cache' };
      if (!file.ok && file.status === 304) {
        endResponse(new Response(null, { status: 304, headers: { etag: file.etag, ...caching } }));
        return;
      }
      if (!file.ok) {
        endResponse(new Response(`${file.reason}\n`, { status: file.status, headers: { 'content-type': 'text/plain; charset=utf-8' } }));
        return;
      }
      endResponse(
        new Response(request.method === 'HEAD' ? null : (file.png as Uint8Array<ArrayBuffer>), {
          status: 200,
          headers: { 'content-type': 'image/png', 'content-length': String(file.png.byteLength), etag: file.etag, ...caching },
        }),
      );
    },
  };
}

/**
 * Answers 429 with Retry-After when the operation was refused for a full queue (the GraphQL result still
 * holds the typed QueueFullError), so that HTTP clients and proxies back off without reading the body.
 */
function admissionPlugin(refusals: WeakMap<Request, NonNullable<Context['admission']>>): Plugin {
  return {
    onResponse({ request, response, setResponse }) {
      const retryAfter = refusals.get(request)?.retryAfterSeconds;
      if (retryAfter === undefined || response.status !== 200) return;
      const headers = new Headers(response.headers);
      headers.set('retry-after', String(retryAfter));
      setResponse(new Response(response.body, { status: 429, headers }));
    },
  };
}

function tooLarge(message: string): Response {
  return jsonError(413, 'TOO_LARGE', message, { connection: 'close' });
}

/**
 * Refuses bodies whose declared length exceeds the limit before anything parses them; a body sent
 * without a length (chunked) is read up to the limit and refused as soon as it goes beyond.
 */
function bodyLimitPlugin(maxBytes: number): Plugin {
  return {
    async onRequest({ request, setRequest, endResponse, fetchAPI }) {
      const length = request.headers.get('content-length');
      if (length !== null) {
        const declared = Number(length);
        if (declared > maxBytes) endResponse(tooLarge(`the request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      if (!request.body || request.method === 'GET' || request.method === 'HEAD') return;
      const chunks: Uint8Array[] = [];
      let total = 0;
      const reader = request.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > maxBytes) {
          await reader.cancel();
          endResponse(tooLarge(`the request body exceeds the limit of ${maxBytes} bytes`));
          return;
        }
        chunks.push(value);
      }
      const body = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) body.set(c, (at += c.byteLength) - c.byteLength);
      const headers = new fetchAPI.Headers(request.headers);
      headers.set('content-length', String(total));
      setRequest(new fetchAPI.Request(request.url, { method: request.method, headers, body, signal: request.signal }));
    },
  };
}

function armorPlugin(limits: GraphqlLimits) {
  return EnvelopArmorPlugin({
    maxDepth: { n: limits.maxDepth },
    maxAliases: { n: limits.maxAliases },
    costLimit: { maxCost: limits.maxCost },
    maxTokens: { n: limits.maxTokens },
    maxDirectives: { n: limits.maxDirectives },
    blockFieldSuggestion: { enabled: true },
  });
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
        // The key's id, never the key.
        key: principalOf(request)?.keyId,
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
  const { db, processor, faults } = options;
  checkOperationRoles(schema);
  const limits = {
    keys: new RateLimiter(config.rateLimitPerMinute, config.rateLimitBurst),
    failures: new RateLimiter(config.authFailuresPerMinute, config.authFailuresPerMinute),
    trustProxy: config.trustProxy,
  };
  const subscriptions = new OpenSubscriptions(db, config.subscriptionKeyCheckMs, logger);
  const files = new InspectionFiles(db, config.maxImagePixels);
  const refusals = new WeakMap<Request, NonNullable<Context['admission']>>();
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: config.graphiql ? { title: 'ttt-inspect', subscriptionsProtocol: 'SSE', headers: JSON.stringify({ Authorization: 'Bearer ttt_...' }) } : false,
    // One operation per request (a JSON array of operations is refused).
    batching: false,
    logging: false,
    context: ({ request }) => {
      const auth = principalOf(request);
      // The auth plugin ends every request without a principal before GraphQL runs.
      if (!auth) throw new Error('no principal for the request');
      const admission = {};
      refusals.set(request, admission);
      return { db, processor, events, config, logger, auth, faults, subscriptions, admission, baseUrl: config.publicUrl ?? new URL(request.url).origin };
    },
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
    plugins: [
      requestLogPlugin(logger),
      admissionPlugin(refusals),
      bodyLimitPlugin(config.maxRequestBytes),
      authPlugin(db, limits, logger),
      filesPlugin(files),
      armorPlugin(config.graphqlLimits),
      ...(config.introspection ? [] : [disableIntrospectionPlugin()]),
      operationRolesPlugin(),
      subscriptionKeysPlugin(subscriptions),
    ],
  });
  return { yoga, events, config, subscriptions, files };
}
