// The service's settings, read once from the environment (every variable has a default).

import { availableParallelism } from 'node:os';
import { BACKBONES, type Backbone } from '../core/patchcore/bank.ts';
import { PATCHCORE_DEFAULTS } from '../core/patchcore/patchcore.ts';
import { DEFAULT_MAX_PIXELS } from '../io/image.ts';

export interface ServiceConfig {
  /** HTTP port of `npm start`. */
  port: number;
  /** Address the server binds to; null: every interface (IPv6 and IPv4), as Node does by default. */
  host: string | null;
  /** Origins (scheme://host[:port]) whose browser pages may call the API (CORS); none by default: same origin only. */
  corsOrigins: string[];
  /** A request's headers must arrive within this many milliseconds of its connection or previous request. */
  headersTimeoutMs: number;
  /** A whole request (headers and body) must arrive within this many milliseconds; answers (SSE streams) are not limited. */
  requestTimeoutMs: number;
  /** Largest accepted upload, per file, in bytes. */
  maxUploadBytes: number;
  /** Largest accepted request body: by its Content-Length before parsing, or counted when it has none. */
  maxRequestBytes: number;
  /** Largest accepted image, in pixels (decompression-bomb guard). */
  maxImagePixels: number;
  /** The network of the built-in scorer's new memory banks (a stored bank keeps the one it was built with). */
  scorerBackbone: Backbone;
  /** Bounds of the loaded built-in scorers per process (SCORER_CACHE_BANKS, SCORER_CACHE_MB). */
  scorerCache: ScorerCacheBounds;
  /** Inspections processed at once (the GPU stage itself runs one at a time on the process's device). */
  concurrency: number;
  /** Origin used in file URLs (e.g. behind a proxy); by default the request's own origin. */
  publicUrl: string | null;
  /** submitInspection and reprocessInspection refuse work (QueueFullError) at this many QUEUED + RUNNING. */
  maxQueueDepth: number;
  /** Multipart requests (uploads) read and processed at once per process; beyond, HTTP 429 before the body is read. */
  maxConcurrentUploads: number;
  /** On PostgreSQL: whether the server also takes jobs from the queue (with PGlite it always processes). */
  embeddedWorker: boolean;
  /** The durable queue's settings (PostgreSQL). */
  queue: QueueSettings;
  /** Serve GraphiQL on GET /graphql from a browser. */
  graphiql: boolean;
  /** Answer introspection queries (__schema, __type). */
  introspection: boolean;
  /** Limits of one GraphQL document (graphql-armor), checked before execution. */
  graphqlLimits: GraphqlLimits;
  /** Requests per minute per API key (token bucket, per process). */
  rateLimitPerMinute: number;
  /** Requests a key may make at once above the steady rate (the bucket's size). */
  rateLimitBurst: number;
  /** Failed authentications per minute per client address (token bucket of the same size, per process). */
  authFailuresPerMinute: number;
  /** Take the client address from X-Forwarded-For (its last entry) instead of the socket: only behind a proxy that sets it. */
  trustProxy: boolean;
  /** How often the keys of open subscriptions are checked, in milliseconds (a key revoked elsewhere ends its streams within this). */
  subscriptionKeyCheckMs: number;
  /** A second port serving GET /metrics without a key; null (the default): none, /metrics on PORT for ADMIN keys only. */
  metricsPort: number | null;
  /** Address the METRICS_PORT listener binds to: localhost by default, so that only the machine's own scraper reaches it. */
  metricsHost: string;
}

export interface QueueSettings {
  /**
   * Visibility timeout: a job still active this long after it started (its worker died, hangs, or is too
   * slow) is failed and retried. Must exceed the longest inspection, GPU wait included.
   */
  jobTimeoutSeconds: number;
  /** Deliveries after the first one for transient failures (device loss, unexpected errors, dead workers). */
  retryLimit: number;
  /** First retry delay; doubled (with jitter) on each further retry. */
  retryDelaySeconds: number;
  /**
   * On SIGTERM: how long the running jobs may finish before they are released (their leases given up,
   * their jobs failed back to the queue, which redelivers them after the retry delay).
   */
  shutdownTimeoutSeconds: number;
}

export interface GraphqlLimits {
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
  maxTokens: number;
  maxDirectives: number;
}

function integer(env: NodeJS.ProcessEnv, key: string, fallback: number, min: 0 | 1): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${key} must be a ${min === 1 ? 'positive' : 'non-negative'} integer, got ${JSON.stringify(raw)}`);
  return n;
}

const positiveInt = (env: NodeJS.ProcessEnv, key: string, fallback: number) => integer(env, key, fallback, 1);
const nonNegativeInt = (env: NodeJS.ProcessEnv, key: string, fallback: number) => integer(env, key, fallback, 0);

/** Bounds of the loaded built-in scorers of one process (src/processing/scorers.ts). */
export interface ScorerCacheBounds {
  /** Banks loaded at once (at least 1). */
  readonly banks: number;
  /** Device bytes the loaded banks hold together (PatchCoreScorer.deviceBytes). */
  readonly bytes: number;
}

/** 4 banks, 1 GiB (a default ResNet-50 bank holds about 64 MiB on the device). */
export const DEFAULT_SCORER_CACHE: ScorerCacheBounds = { banks: 4, bytes: 1024 * 1024 * 1024 };

/** Files a submission can carry: image, scoreMap, features, groundTruth and pointCloud. */
export const SUBMISSION_FILES = 5;

/** Room for every file of a submission at the per-file limit, plus the form's fields. */
const requestLimitFor = (maxUploadBytes: number) => SUBMISSION_FILES * maxUploadBytes + 1024 * 1024;

/** SCORER_BACKBONE: resnet50 (default) or mobilenetv2. */
function backbone(env: NodeJS.ProcessEnv, key: string): Backbone {
  const raw = env[key]?.trim();
  if (!raw) return PATCHCORE_DEFAULTS.backbone;
  if (!(BACKBONES as readonly string[]).includes(raw)) throw new Error(`${key} must be ${BACKBONES.join(' or ')}, got ${JSON.stringify(raw)}`);
  return raw as Backbone;
}

function onOff(env: NodeJS.ProcessEnv, key: string, fallback: boolean): boolean {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  if (/^(on|true|1)$/i.test(raw)) return true;
  if (/^(off|false|0)$/i.test(raw)) return false;
  throw new Error(`${key} must be on/off or true/false, got ${JSON.stringify(raw)}`);
}

/** CORS_ORIGINS: a comma-separated list of origins, each exactly scheme://host[:port]. */
function origins(env: NodeJS.ProcessEnv, key: string): string[] {
  const raw = env[key]?.trim();
  if (!raw) return [];
  return raw.split(',').map((entry) => {
    const o = entry.trim();
    let url: URL | null = null;
    try {
      url = new URL(o);
    } catch {
      // reported below
    }
    if (!url || !/^https?:$/.test(url.protocol) || url.origin !== o) {
      throw new Error(`${key} must list origins such as https://dashboard.plant.example or http://10.0.0.5:8080 (scheme, host and port only), got ${JSON.stringify(o)}`);
    }
    return o;
  });
}

/**
 * MAX_CONCURRENT_UPLOADS by default: one upload per CPU core, at least 2 (one reads its body while another
 * waits on the database), at most 8 (each holds one of the pool's DATABASE_POOL_SIZE (10) connections in
 * its transaction; the dashboard's reads keep the others).
 */
export function defaultUploadConcurrency(cores = availableParallelism()): number {
  return Math.max(2, Math.min(8, cores));
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const maxUploadBytes = positiveInt(env, 'MAX_UPLOAD_BYTES', 50 * 1024 * 1024);
  const development = env.NODE_ENV !== 'production';
  const requestTimeoutSeconds = positiveInt(env, 'REQUEST_TIMEOUT_SECONDS', 120);
  const headersTimeoutSeconds = positiveInt(env, 'REQUEST_HEADERS_TIMEOUT_SECONDS', 10);
  if (headersTimeoutSeconds > requestTimeoutSeconds) {
    throw new Error(`REQUEST_HEADERS_TIMEOUT_SECONDS (${headersTimeoutSeconds}) must not exceed REQUEST_TIMEOUT_SECONDS (${requestTimeoutSeconds})`);
  }
  const port = positiveInt(env, 'PORT', 4000);
  const metricsPort = env.METRICS_PORT ? positiveInt(env, 'METRICS_PORT', 0) : null;
  if (metricsPort === port) throw new Error(`METRICS_PORT (${metricsPort}) must differ from PORT (${port})`);
  return {
    port,
    host: env.HOST?.trim() || null,
    corsOrigins: origins(env, 'CORS_ORIGINS'),
    headersTimeoutMs: 1000 * headersTimeoutSeconds,
    requestTimeoutMs: 1000 * requestTimeoutSeconds,
    maxUploadBytes,
    maxRequestBytes: positiveInt(env, 'MAX_REQUEST_BYTES', requestLimitFor(maxUploadBytes)),
    maxImagePixels: positiveInt(env, 'MAX_IMAGE_PIXELS', DEFAULT_MAX_PIXELS),
    scorerBackbone: backbone(env, 'SCORER_BACKBONE'),
    scorerCache: {
      banks: positiveInt(env, 'SCORER_CACHE_BANKS', DEFAULT_SCORER_CACHE.banks),
      bytes: positiveInt(env, 'SCORER_CACHE_MB', DEFAULT_SCORER_CACHE.bytes / (1024 * 1024)) * 1024 * 1024,
    },
    concurrency: positiveInt(env, 'PROCESSING_CONCURRENCY', 2),
    publicUrl: env.PUBLIC_URL ? env.PUBLIC_URL.replace(/\/+$/, '') : null,
    maxQueueDepth: positiveInt(env, 'MAX_QUEUE_DEPTH', 100),
    maxConcurrentUploads: positiveInt(env, 'MAX_CONCURRENT_UPLOADS', defaultUploadConcurrency()),
    embeddedWorker: onOff(env, 'EMBEDDED_WORKER', true),
    queue: {
      jobTimeoutSeconds: positiveInt(env, 'JOB_TIMEOUT_SECONDS', 300),
      retryLimit: nonNegativeInt(env, 'JOB_RETRY_LIMIT', 3),
      retryDelaySeconds: positiveInt(env, 'JOB_RETRY_DELAY_SECONDS', 5),
      shutdownTimeoutSeconds: positiveInt(env, 'SHUTDOWN_TIMEOUT_SECONDS', 30),
    },
    graphiql: onOff(env, 'GRAPHIQL', development),
    introspection: onOff(env, 'INTROSPECTION', development),
    graphqlLimits: {
      maxDepth: positiveInt(env, 'GRAPHQL_MAX_DEPTH', 10),
      maxAliases: positiveInt(env, 'GRAPHQL_MAX_ALIASES', 15),
      maxCost: positiveInt(env, 'GRAPHQL_MAX_COST', 5000),
      maxTokens: positiveInt(env, 'GRAPHQL_MAX_TOKENS', 1000),
      maxDirectives: positiveInt(env, 'GRAPHQL_MAX_DIRECTIVES', 50),
    },
    rateLimitPerMinute: positiveInt(env, 'RATE_LIMIT_PER_MINUTE', 1200),
    rateLimitBurst: positiveInt(env, 'RATE_LIMIT_BURST', 200),
    authFailuresPerMinute: positiveInt(env, 'AUTH_FAILURES_PER_MINUTE', 120),
    trustProxy: onOff(env, 'TRUST_PROXY', false),
    subscriptionKeyCheckMs: 1000 * positiveInt(env, 'SUBSCRIPTION_KEY_CHECK_SECONDS', 5),
    metricsPort,
    metricsHost: env.METRICS_HOST?.trim() || '127.0.0.1',
  };
}

export function defaultConfig(overrides: Partial<ServiceConfig> = {}): ServiceConfig {
  const base = configFromEnv({});
  const maxUploadBytes = overrides.maxUploadBytes ?? base.maxUploadBytes;
  return { ...base, maxRequestBytes: requestLimitFor(maxUploadBytes), ...overrides };
}
