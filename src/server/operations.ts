// The operations endpoints: GET /healthz (the process is up), GET /readyz (database, migrations, WebGPU
// adapter, job queue), GET /metrics (Prometheus text format; an ADMIN key on the main port, or no key on
// the separate METRICS_PORT server), and the per-request HTTP metrics.

import { getOperationAST, type DocumentNode } from 'graphql';
import { createServer, type Server } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import type { PrismaClient } from '../db.ts';
import { hasRole } from '../service/auth.ts';
import type { Readiness } from '../service/health.ts';
import { httpRequestDuration, httpRequests, renderMetrics } from '../service/metrics.ts';
import { jsonError, principalOf } from './auth.ts';

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';
export const METRICS_PATH = '/metrics';

/**
 * Distinct operation names a process labels its request metrics with; later new names count as "other",
 * so that clients naming operations at will cannot grow the series without bound.
 */
export const MAX_OPERATION_LABELS = 100;

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' } });

const onlyGet = (request: Request) =>
  request.method === 'GET' || request.method === 'HEAD' ? null : new Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } });

const unavailable = (error: unknown) => `metrics unavailable: the queue gauges could not be read (${error instanceof Error ? error.message.trim().split('\n')[0] : String(error)})\n`;

/** 503 when the database does not answer (see renderMetrics). */
async function metricsResponse(db: PrismaClient): Promise<Response> {
  try {
    const { contentType, body } = await renderMetrics(db);
    return new Response(body, { status: 200, headers: { 'content-type': contentType, 'cache-control': 'no-store' } });
  } catch (error) {
    return new Response(unavailable(error), { status: 503, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  }
}

/** /healthz and /readyz, without a key (probes carry none); answered before authentication. */
export function healthPlugin(readiness: () => Promise<Readiness>): Plugin {
  return {
    async onRequest({ url, request, endResponse }) {
      if (url.pathname !== HEALTH_PATH && url.pathname !== READY_PATH) return;
      const refused = onlyGet(request);
      if (refused) return endResponse(refused);
      if (url.pathname === HEALTH_PATH) return endResponse(json(200, { status: 'ok' }));
      const r = await readiness();
      endResponse(json(r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', checks: r.checks }));
    },
  };
}

/** /metrics on the main port: after authentication, for ADMIN keys only. */
export function metricsPlugin(db: PrismaClient): Plugin {
  return {
    async onRequest({ url, request, endResponse }) {
      if (url.pathname !== METRICS_PATH) return;
      const refused = onlyGet(request);
      if (refused) return endResponse(refused);
      const principal = principalOf(request);
      if (!principal || !hasRole(principal, 'ADMIN')) {
        return endResponse(jsonError(403, 'FORBIDDEN', `${METRICS_PATH} needs an ADMIN key on this port (or use the METRICS_PORT listener, without a key)`));
      }
      endResponse(await metricsResponse(db));
    },
  };
}

/** The operation names labelled so far, in the whole process (the metrics are the process's). */
const operationNames = new Set<string>();

function operationLabel(name: string): string {
  if (operationNames.has(name)) return name;
  if (operationNames.size >= MAX_OPERATION_LABELS) return 'other';
  operationNames.add(name);
  return name;
}

function routeOf(path: string, graphqlEndpoint: string, fileRoute: RegExp): string {
  if (path === graphqlEndpoint || path === `${graphqlEndpoint}/`) return 'graphql';
  if (fileRoute.test(path)) return 'files';
  if (path === HEALTH_PATH) return 'healthz';
  if (path === READY_PATH) return 'readyz';
  if (path === METRICS_PATH) return 'metrics';
  return 'other';
}

/**
 * Counts and times every request by route and, for GraphQL, by the name of the operation it runs:
 * "anonymous" for an unnamed one, "unknown" when no document was parsed (refused before, or not GraphQL
 * syntax), "other" past MAX_OPERATION_LABELS names, "none" off the GraphQL route. Never the query text.
 */
export function requestMetricsPlugin(graphqlEndpoint: string, fileRoute: RegExp): Plugin {
  const started = new WeakMap<Request, { t: number; operation?: string }>();
  return {
    onRequest({ request }) {
      started.set(request, { t: performance.now() });
    },
    onParse({ context }) {
      const { request, params } = context as unknown as { request: Request; params?: { operationName?: string | null } };
      return ({ result }) => {
        const s = started.get(request);
        if (!s || result instanceof Error || !result || typeof result !== 'object' || (result as DocumentNode).kind !== 'Document') return;
        const op = getOperationAST(result as DocumentNode, params?.operationName ?? undefined);
        s.operation = op ? (op.name ? operationLabel(op.name.value) : 'anonymous') : 'unknown';
      };
    },
    onResponse({ request, response }) {
      const s = started.get(request);
      const route = routeOf(new URL(request.url).pathname, graphqlEndpoint, fileRoute);
      const operation = route === 'graphql' ? (s?.operation ?? 'unknown') : 'none';
      httpRequests.inc({ route, operation, status: String(response.status) });
      if (s) httpRequestDuration.observe({ route, operation }, (performance.now() - s.t) / 1000);
    },
  };
}

/** The METRICS_PORT listener: GET /metrics without a key, nothing else. Bind it to a private address. */
export function createMetricsServer(db: PrismaClient): Server {
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (path !== METRICS_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`only ${METRICS_PATH} is served here\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    void metricsResponse(db).then(async (r) => {
      res.writeHead(r.status, Object.fromEntries(r.headers)).end(req.method === 'HEAD' ? undefined : await r.text());
    });
  });
}
