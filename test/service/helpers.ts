// The service under test: a fresh database per test file (in-memory PGlite, or a uniquely named database
// on the PostgreSQL server of TEST_DATABASE_URL / DATABASE_URL), migrated, with the real processor on
// the real GPU, driven through `yoga.fetch` (JSON, multipart uploads, SSE).

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import sharp from 'sharp';
import type { Gpu } from '../../src/core/gpu.ts';
import { openDatabase, type Database } from '../../src/db.ts';
import { encodeImagePng, encodeMaskPng } from '../../src/io/image.ts';
import { encodeNpy } from '../../src/io/npy.ts';
import { migrate } from '../../src/migrate.ts';
import { registerMobileNet } from '../../src/models/mobilenet.ts';
import { registerResnet50 } from '../../src/models/resnet50.ts';
import { createInProcessProcessor, type InspectionProcessor } from '../../src/processing/processor.ts';
import { createQueueProcessor } from '../../src/processing/queue.ts';
import { jobLimits } from '../../src/processing/start.ts';
import { defaultConfig, type QueueSettings, type ServiceConfig } from '../../src/service/config.ts';
import { createInspectionEvents, createSharedInspectionEvents } from '../../src/service/events.ts';
import { memoryLogger } from '../../src/service/log.ts';
import { createApp, type App } from '../../src/server/yoga.ts';
import type { Role } from '../../src/service/auth.ts';
import type { Faults } from '../../src/service/faults.ts';
import { createApiKey } from '../../src/service/keys.ts';
import type { SyntheticSample } from '../../src/synthetic.ts';

export type Backend = 'pglite' | 'postgres';

export const POSTGRES_URL = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || '';

/** PGlite always; the PostgreSQL server too when a URL is configured. */
export const BACKENDS: Backend[] = POSTGRES_URL ? ['pglite', 'postgres'] : ['pglite'];

export interface TestDatabase {
  db: Database;
  /** SQL of every statement Prisma sent, in order. */
  queries: string[];
  url: string | null;
  close(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function openTestDatabase(backend: Backend, migrated = true): Promise<TestDatabase> {
  const queries: string[] = [];
  const onQuery = (sql: string) => void queries.push(sql);
  if (backend === 'pglite') {
    const db = await openDatabase({ dataDir: 'memory://', onQuery });
    if (migrated) await migrate(db);
    return { db, queries, url: null, close: () => db.close() };
  }
  const name = `ttt_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(POSTGRES_URL, name);
  const db = await openDatabase({ url, onQuery });
  if (migrated) await migrate(db);
  return {
    db,
    queries,
    url,
    async close() {
      // Drop the database even when a test has closed the connection itself.
      await db.close().catch(() => undefined);
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface GqlResult<T = Record<string, any>> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** Requests made with one API key. */
export interface Client {
  /** The key's "Authorization" header. */
  headers: Record<string, string>;
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<GqlResult<T>>;
  /** A multipart request: `files` maps a variable path (e.g. "input.image") to a file. */
  upload<T = Record<string, any>>(query: string, variables: Record<string, unknown>, files: Record<string, File | File[]>): Promise<GqlResult<T>>;
  get(path: string): Promise<Response>;
}

/** The service, driven by default with an ADMIN key (`as` makes requests with another key). */
export interface TestService extends Client {
  app: App;
  yoga: App['yoga'];
  database: TestDatabase;
  prisma: Database['prisma'];
  processor: InspectionProcessor;
  logger: ReturnType<typeof memoryLogger>;
  adminKey: string;
  /** A new key (product ids are UUIDs). */
  createKey(role: Role, productIds?: string[]): Promise<{ id: string; secret: string }>;
  as(secret: string | null): Client;
  close(): Promise<void>;
}

export const ORIGIN = 'http://ttt.test';

/** Destroys the device at its `afterSubmits`-th queue submission: a device lost in the middle of a job's GPU work. */
export function destroyMidRun(gpu: Gpu, afterSubmits = 3): void {
  const queue = gpu.device.queue;
  const submit = queue.submit.bind(queue);
  let n = 0;
  queue.submit = (buffers) => {
    if (++n === afterSubmits) gpu.device.destroy();
    return submit(buffers);
  };
}

export async function startService(
  backend: Backend,
  options: {
    config?: Partial<ServiceConfig>;
    acquireGpu?: () => Promise<Gpu>;
    concurrency?: number;
    faults?: Faults;
    /** The durable PostgreSQL queue (postgres only) instead of the in-process processor; `work`: take jobs. */
    queue?: { work: boolean; settings?: Partial<QueueSettings> };
    /** Retries of the in-process processor (default: none, every failure is final). */
    inProcessRetries?: { retryLimit: number; retryDelayMs: number };
  } = {},
): Promise<TestService> {
  const database = await openTestDatabase(backend);
  // As the server's start-up does: the built-in scorer's weights (read on first use).
  registerMobileNet();
  registerResnet50();
  const logger = memoryLogger();
  let processor: InspectionProcessor;
  let events = createInspectionEvents();
  let closeEvents = async () => {};
  // The built-in scorer on MobileNetV2 (SCORER_BACKBONE): the tests' banks build several times faster than on ResNet-50.
  const config = defaultConfig({ scorerBackbone: 'mobilenetv2', ...options.config });
  if (options.queue) {
    if (!database.url) throw new Error('the queue processor needs the PostgreSQL server');
    const shared = await createSharedInspectionEvents(database.url);
    events = shared;
    closeEvents = () => shared.close();
    processor = await createQueueProcessor({
      db: database.db.prisma,
      url: database.url,
      events,
      logger,
      settings: { jobTimeoutSeconds: 60, retryLimit: 2, retryDelaySeconds: 1, shutdownTimeoutSeconds: 30, ...options.queue.settings },
      limits: jobLimits({ ...config, queue: { ...config.queue, jobTimeoutSeconds: 60, ...options.queue.settings } }),
      work: options.queue.work,
      concurrency: options.concurrency ?? 2,
      acquireGpu: options.acquireGpu,
    });
  } else {
    processor = createInProcessProcessor({
      db: database.db.prisma,
      events,
      logger,
      limits: jobLimits(config),
      concurrency: options.concurrency ?? 2,
      acquireGpu: options.acquireGpu,
      ...options.inProcessRetries,
    });
  }
  const app = createApp({ db: database.db.prisma, processor, events, config, logger, faults: options.faults });
  const createKey = async (role: Role, productIds: string[] = []) => {
    const { key, secret } = await createApiKey(database.db.prisma, { role, productIds, name: `test ${role.toLowerCase()}` });
    return { id: key.id, secret };
  };
  const admin = await createKey('ADMIN');
  return {
    app,
    yoga: app.yoga,
    database,
    prisma: database.db.prisma,
    processor,
    logger,
    adminKey: admin.secret,
    createKey,
    as: (secret) => client(app, secret),
    ...client(app, admin.secret),
    async close() {
      await processor.close();
      await closeEvents();
      await database.close();
    },
  };
}

/** A client of the app that sends `secret` as its API key (none when null). */
export function client(app: App, secret: string | null): Client {
  const headers: Record<string, string> = secret === null ? {} : { authorization: `Bearer ${secret}` };
  const post = async (body: BodyInit, extra: Record<string, string> = {}) => {
    const res = await app.yoga.fetch(`${ORIGIN}/graphql`, { method: 'POST', body, headers: { accept: 'application/json', ...headers, ...extra } });
    return { status: res.status, ...(await res.json()) };
  };
  return {
    headers,
    gql: (query, variables = {}) => post(JSON.stringify({ query, variables }), { 'content-type': 'application/json' }),
    upload(query, variables, files) {
      const form = new FormData();
      const map: Record<string, string[]> = {};
      const list: File[] = [];
      for (const [path, f] of Object.entries(files)) {
        if (Array.isArray(f)) f.forEach((file, k) => ((map[String(list.length)] = [`variables.${path}.${k}`]), list.push(file)));
        else (map[String(list.length)] = [`variables.${path}`]), list.push(f);
      }
      form.set('operations', JSON.stringify({ query, variables }));
      form.set('map', JSON.stringify(map));
      list.forEach((file, k) => form.set(String(k), file));
      return post(form);
    },
    get: (path) => Promise.resolve(app.yoga.fetch(`${ORIGIN}${path}`, { headers })),
  };
}

/** A subscription's server-sent events. */
export interface Sse {
  /** Waits for the next `next` event's data. */
  next(): Promise<Record<string, any>>;
  close(): void;
}

/** Splits the first complete event off an SSE buffer: its name, its JSON data (null without), the rest. */
export function takeSseEvent(buffer: string): { event: string | undefined; data: any; rest: string } | null {
  const end = buffer.indexOf('\n\n');
  if (end < 0) return null;
  const lines = buffer.slice(0, end).split('\n');
  const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim();
  const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
  return { event, data: data ? JSON.parse(data) : null, rest: buffer.slice(end + 2) };
}

/** Reads the `next` events of an SSE response (`abort` is the request's, to end it). */
export function eventStream(res: Response, abort: AbortController): Sse {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return {
    async next() {
      for (;;) {
        const taken = takeSseEvent(buffer);
        if (taken) {
          buffer = taken.rest;
          if (taken.event === 'next') return taken.data;
          if (taken.event === 'complete') throw new Error('the subscription completed');
          continue; // keep-alive comments
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        buffer += value;
      }
    },
    close: () => abort.abort(),
  };
}

/** A subscription request (SSE) to the app with these headers; `abort` ends it. */
export async function openSubscription(
  s: TestService,
  headers: Record<string, string>,
  query: string,
  variables: Record<string, unknown>,
): Promise<{ res: Response; abort: AbortController }> {
  const abort = new AbortController();
  const res = await s.yoga.fetch(`${ORIGIN}/graphql`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  return { res, abort };
}

/** Subscribes through the app (SSE), with the service's ADMIN key. */
export async function subscribe(s: TestService, query: string, variables: Record<string, unknown>): Promise<Sse> {
  const { res, abort } = await openSubscription(s, s.headers, query, variables);
  if (res.status !== 200 || !/^text\/event-stream/.test(res.headers.get('content-type') ?? '')) {
    throw new Error(`the subscription was answered ${res.status} ${res.headers.get('content-type')}: ${await res.text()}`);
  }
  return eventStream(res, abort);
}

// ---- files from synthetic samples ----

export function imagePng(sample: SyntheticSample): Promise<Uint8Array> {
  return encodeImagePng(sample.image);
}

export function scoreMapNpy(map: { data: Float32Array; width: number; height: number }): Uint8Array {
  return encodeNpy(map.data, [map.height, map.width]);
}

export function file(bytes: Uint8Array | string, name: string): File {
  return new File([typeof bytes === 'string' ? bytes : new Uint8Array(bytes)], name);
}

export async function sampleFiles(sample: SyntheticSample, withTruth = false): Promise<Record<string, File>> {
  const files: Record<string, File> = {
    'input.image': file(await imagePng(sample), 'part.png'),
    'input.scoreMap': file(scoreMapNpy(sample.scoreMap), 'part-map.npy'),
  };
  if (withTruth) files['input.groundTruth'] = file(await encodeMaskPng(sample.groundTruth, sample.image.width, sample.image.height), 'part-gt.png');
  return files;
}

/** Decodes a PNG: size and channel count, and the first channel's bytes. */
export async function readPng(bytes: Uint8Array): Promise<{ format: string | undefined; width: number; height: number; channels: number; pixels: Uint8Array }> {
  const meta = await sharp(bytes).metadata();
  const { data, info } = await sharp(bytes).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { format: meta.format, width: info.width, height: info.height, channels: meta.channels ?? 0, pixels: new Uint8Array(data) };
}

// ---- GraphQL documents ----

export const INSPECTION_FIELDS = `
  id status externalId errorCode errorMessage width height channels verdict imageScore defectFraction regionCount
  pseudoLabels { anomalous nominal } classifierLoss classifierEpochs emptyReason gateThreshold
  stageMs { stage ms on } totalMs metrics { precision recall f1 iou }
  createdAt startedAt finishedAt options { key value }
  imageUrl scoreMapUrl maskUrl overlayUrl
  product { id name }
  regions { index area bbox { x y width height } centroid { x y } meanScore maxScore }`;

export const CREATE_PRODUCT = `mutation($input: CreateProductInput!) {
  createProduct(input: $input) {
    __typename
    ... on CreateProductSuccess { product { id name line options { key value } nominalScoreMapCount calibration { count } } }
    ... on Error { code message }
  }
}`;

export const SUBMIT = `mutation($input: SubmitInspectionInput!) {
  submitInspection(input: $input) {
    __typename
    ... on SubmitInspectionSuccess { inspection { ${INSPECTION_FIELDS} } }
    ... on Error { code message }
  }
}`;

export const REPROCESS = `mutation($id: ID!, $options: [OptionInput!]) {
  reprocessInspection(id: $id, options: $options) {
    __typename
    ... on ReprocessInspectionSuccess { inspection { id status options { key value } } }
    ... on Error { code message }
  }
}`;

export const INSPECTION = `query($id: ID!) { inspection(id: $id) { ${INSPECTION_FIELDS} } }`;

export async function createProduct(s: TestService, name: string, options: { key: string; value: string }[] = []): Promise<string> {
  const r = await s.gql(CREATE_PRODUCT, { input: { name, options } });
  const p = r.data?.createProduct;
  if (p?.__typename !== 'CreateProductSuccess') throw new Error(`createProduct failed: ${JSON.stringify(r)}`);
  return p.product.id;
}

export async function rowCounts(s: TestService): Promise<Record<string, number>> {
  const p = s.prisma;
  const [products, inspections, blobs, regions, nominal, nominalImages] = await Promise.all([
    p.product.count(),
    p.inspection.count(),
    p.inspectionBlob.count(),
    p.region.count(),
    p.nominalScoreMap.count(),
    p.nominalImage.count(),
  ]);
  return { products, inspections, blobs, regions, nominal, nominalImages };
}
