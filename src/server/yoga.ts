// The HTTP app: GraphQL (graphql-yoga, GraphiQL, SSE subscriptions, multipart uploads) and the inspection
// file routes on the same server, behind API keys (checked before the body is read), rate and size
// limits, graphql-armor's document limits and our cost limit, CORS for the configured origins only, with
// one structured log line per request. The HTTP server and `listen()` are http.ts's and main.ts's job.

import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { createYoga, maskError as defaultMaskError, isAsyncIterable, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Context } from '../builder.ts';
import { INPUT_ERROR_CODES, TttError, type ErrorCode } from '../core/errors.ts';
import type { PrismaClient } from '../db.ts';
import { nodeGpu } from '../gpu/node.ts';
import type { InspectionProcessor } from '../processing/processor.ts';
import { schema } from '../schema/index.ts';
import { DEFAULT_PAGE_SIZE } from '../schema/inspection.ts';
import { FILE_ROLE, hasRole } from '../service/auth.ts';
import type { Faults } from '../service/faults.ts';
import { FILE_KINDS, InspectionFiles, type FileKind } from '../service/files.ts';
import { createReadinessCheck } from '../service/health.ts';
import { authPlugin, checkOperationRoles, disableIntrospectionPlugin, jsonError, operationRolesPlugin, principalOf, RateLimiter, subscriptionKeysPlugin } from './auth.ts';
import { defaultConfig, type GraphqlLimits, type ServiceConfig } from '../service/config.ts';
import { costLimitPlugin } from './cost.ts';
import { dashboardPlugin } from './dashboard.ts';
import { createInspectionEvents, type InspectionEvents } from '../service/events.ts';
import { graphiqlAssetsPlugin, renderGraphiQL } from './graphiql.ts';
import { jsonLogger, type Logger } from '../service/log.ts';
import { OpenSubscriptions } from '../service/openSubscriptions.ts';
import { healthPlugin, METRICS_PATH, metricsPlugin, requestMetricsPlugin } from './operations.ts';
import { THUMBNAIL_ROUTE, thumbnailsPlugin } from './thumbnails.ts';
import { UploadGate, uploadGatePlugin } from './uploadGate.ts';

export interface AppOptions {
  db: PrismaClient;
  processor: InspectionProcessor;
  events?: InspectionEvents;
  config?: ServiceConfig;
  logger?: Logger;
  /** Test-only failure injection (see service/faults.ts). */
  faults?: Faults;
  /** Readiness's GPU check: resolves once a WebGPU adapter was obtained; by default the process's shared device. */
  gpuReady?: () => Promise<unknown>;
}

export interface App {
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  events: InspectionEvents;
  config: ServiceConfig;
  subscriptions: OpenSubscriptions;
  files: InspectionFiles;
  /** The uploads in flight (MAX_CONCURRENT_UPLOADS). */
  uploads: UploadGate;
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
 * Paths that do not exist answer 404 before authentication (a key changes nothing about them). The
 * health check, CORS preflights and GraphiQL's page and assets are answered before this.
 */
function unknownPathsPlugin(graphqlEndpoint: string): Plugin {
  return {
    onRequest({ url, endResponse }) {
      const path = url.pathname;
      if (path === graphqlEndpoint || path === `${graphqlEndpoint}/` || path === METRICS_PATH || FILE_ROUTE.test(path) || THUMBNAIL_ROUTE.test(path)) return;
      endResponse(jsonError(404, 'NOT_FOUND', `no such path; the API is at ${graphqlEndpoint}`));
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

/**
 * CORS: only the configured origins (CORS_ORIGINS) get Access-Control-Allow-Origin (with credentials);
 * any other origin gets no CORS header, so browsers keep its pages from reading the answers. Same-origin
 * pages (GraphiQL) need none.
 */
function corsFor(origins: readonly string[]) {
  const allowed = new Set(origins);
  return (request: Request) => {
    const origin = request.headers.get('origin');
    if (origin === null || !allowed.has(origin)) return false as const;
    return { origin, credentials: true, methods: ['GET', 'POST', 'OPTIONS'], allowedHeaders: ['authorization', 'content-type', 'accept'], maxAge: 600 };
  };
}

function tooLarge(message: string): Response {
  return jsonError(413, 'TOO_LARGE', message, { connection: 'close' });
}

/**
 * Refuses bodies whose declared length exceeds the limit before anything parses them; a body sent
 * without a length (chunked) is counted while the parser reads it, and the parse fails with 413 as soon
 * as it goes beyond the limit: the body is never held whole for counting. Runs after authentication, so
 * a request without a valid key is refused before any of its body is read.
 */
function bodyLimitPlugin(maxBytes: number): Plugin {
  const overLimit = () =>
    new GraphQLError(`the request body exceeds the limit of ${maxBytes} bytes`, { extensions: { code: 'TOO_LARGE', http: { status: 413, headers: { connection: 'close' } } } });
  return {
    onRequest({ request, endResponse }) {
      const length = request.headers.get('content-length');
      if (length === null) return;
      if (!/^\d+$/.test(length)) {
        endResponse(jsonError(400, 'BAD_REQUEST', `the Content-Length header is not a length: ${JSON.stringify(length)}`, { connection: 'close' }));
        return;
      }
      const declared = Number(length);
      if (declared > maxBytes) endResponse(tooLarge(`the request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`));
    },
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      if (!requestParser || !request.body || request.headers.has('content-length')) return;
      setRequestParser(async (req) => {
        let total = 0;
        let exceeded = false;
        const counted = req.body!.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              total += chunk.byteLength;
              if (total > maxBytes) {
                exceeded = true;
                controller.error(overLimit());
                return;
              }
              controller.enqueue(chunk);
            },
          }),
        );
        try {
          return await requestParser(new fetchAPI.Request(req.url, { method: req.method, headers: req.headers, body: counted, signal: req.signal, duplex: 'half' } as RequestInit));
        } catch (error) {
          // The multipart parser wraps the stream's error in its own (400 "invalid multipart data").
          if (exceeded) throw overLimit();
          throw error;
        }
      });
    },
  };
}

/** graphql-armor's refusals, with a code and without its "Syntax Error:" prefix (they are limits, not syntax). */
function refusal(code: string) {
  return [
    (_context: unknown, error: GraphQLError) => {
      throw new GraphQLError(error.message.replace(/^Syntax Error:\s*/, ''), { extensions: { code } });
    },
  ];
}

function armorPlugin(limits: GraphqlLimits) {
  return EnvelopArmorPlugin({
    maxDepth: { n: limits.maxDepth, onReject: refusal('QUERY_TOO_DEEP') },
    maxAliases: { n: limits.maxAliases, onReject: refusal('TOO_MANY_ALIASES') },
    maxTokens: { n: limits.maxTokens, onReject: refusal('TOO_MANY_TOKENS') },
    maxDirectives: { n: limits.maxDirectives, onReject: refusal('TOO_MANY_DIRECTIVES') },
    // Costed from the variables' values instead (cost.ts); suggestions are removed from every result below.
    costLimit: { enabled: false },
    blockFieldSuggestion: { enabled: false },
  });
}

/** graphql-js appends "Did you mean ...?" to validation and coercion errors (fields, arguments, types, enum values). */
const SUGGESTION = /\s*Did you mean\b[^]*$/;

function withoutSuggestion(result: ExecutionResult): ExecutionResult {
  if (!result.errors?.some((e) => SUGGESTION.test(e.message))) return result;
  return {
    ...result,
    errors: result.errors.map((e) =>
      SUGGESTION.test(e.message)
        ? new GraphQLError(e.message.replace(SUGGESTION, ''), { nodes: e.nodes, source: e.source, positions: e.positions, path: e.path, originalError: e.originalError, extensions: e.extensions })
        : e,
    ),
  };
}

/**
 * No result names a field, argument, type or enum value that the client did not write: suggestions would
 * show the schema to anyone who guesses, with introspection off too. Every result passes here, whichever
 * stage (parse, validation, variable coercion, execution) made its errors.
 */
function noSuggestionsPlugin(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result)) setResult(result.map(withoutSuggestion));
      else if (!isAsyncIterable(result)) setResult(withoutSuggestion(result as ExecutionResult));
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
  const readiness = createReadinessCheck({ db, gpu: options.gpuReady ?? nodeGpu, queue: processor.ready?.bind(processor) });
  const files = new InspectionFiles(db, config.maxImagePixels);
  const refusals = new WeakMap<Request, NonNullable<Context['admission']>>();
  const uploads = new UploadGate(config.maxConcurrentUploads);
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: config.graphiql ? { title: 'ttt-inspect', subscriptionsProtocol: 'SSE', headers: JSON.stringify({ Authorization: 'Bearer ttt_...' }) } : false,
    renderGraphiQL,
    cors: corsFor(config.corsOrigins),
    // bodyLimitPlugin counts bodies against MAX_REQUEST_BYTES (yoga's own limit, 25 MB by default, would
    // be lower and its refusal of a multipart body a 400).
    maxRequestBodySize: false,
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
      requestMetricsPlugin('/graphql', FILE_ROUTE),
      requestLogPlugin(logger),
      admissionPlugin(refusals),
      noSuggestionsPlugin(),
      ...(config.graphiql ? [graphiqlAssetsPlugin()] : []),
      // Probes carry no key.
      healthPlugin(readiness),
      // The page at / and its assets, without a key.
      dashboardPlugin(),
      unknownPathsPlugin('/graphql'),
      // From the headers alone, before any of the body is read.
      authPlugin(db, limits, logger),
      metricsPlugin(db),
      bodyLimitPlugin(config.maxRequestBytes),
      uploadGatePlugin(uploads, '/graphql'),
      filesPlugin(files),
      thumbnailsPlugin(db, files),
      armorPlugin(config.graphqlLimits),
      ...(config.introspection ? [] : [disableIntrospectionPlugin()]),
      operationRolesPlugin(),
      costLimitPlugin(config.graphqlLimits.maxCost, { defaultPageSize: DEFAULT_PAGE_SIZE }),
      subscriptionKeysPlugin(subscriptions),
    ],
  });
  return { yoga, events, config, subscriptions, files, uploads };
}
