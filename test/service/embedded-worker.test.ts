// The server on PostgreSQL with its embedded worker (EMBEDDED_WORKER on, the default): the worker runs as
// a child process at a lower priority, so that inspections are processed outside the API's event loop.
// One server process; an inspection submitted to it is processed by another pid (the attempt log names
// host:pid), and SIGTERM stops both.

import { getPriority } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/service/keys.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { freePort, startProcess as start, until, type Proc } from '../helpers/processes.ts';
import { CREATE_PRODUCT, POSTGRES_URL, SUBMIT, openTestDatabase, sampleFiles, type TestDatabase } from './helpers.ts';
import { decodeGlobalID } from '@pothos/plugin-relay';

describe.skipIf(!POSTGRES_URL)('the embedded worker on PostgreSQL', () => {
  let database: TestDatabase;
  let server: Proc;
  let url: string;

  beforeAll(async () => {
    database = await openTestDatabase('postgres');
    const port = await freePort();
    url = `http://127.0.0.1:${port}/graphql`;
    server = start('src/server/main.ts', { DATABASE_URL: database.url!, PORT: String(port), EMBEDDED_WORKER: 'true', PROCESSING_CONCURRENCY: '1', LOG_LEVEL: 'info' });
    await until('the server and its worker', async () => server.output.join('').includes('"listening"') && server.output.join('').includes('"worker ready"'), 60_000, 100).catch((e: Error) => {
      throw new Error(`${e.message}; its output:\n${server.output.join('').slice(-3000)}`);
    });
  });

  afterAll(async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    await server?.exited;
    await database?.close();
  });

  it('processes inspections in a child process, not in the server', async () => {
    const { secret } = await createApiKey(database.db.prisma, { role: 'ADMIN', name: 'embedded' });
    const gql = async (body: BodyInit, headers: Record<string, string> = {}) =>
      (await (await fetch(url, { method: 'POST', body, headers: { authorization: `Bearer ${secret}`, ...headers } })).json()) as any;
    const product = await gql(JSON.stringify({ query: CREATE_PRODUCT, variables: { input: { name: 'embedded', options: [{ key: 'features.extractor', value: 'filterbank' }] } } }), {
      'content-type': 'application/json',
    });
    const files = await sampleFiles(syntheticSample({ width: 64, height: 64, seed: 7 }));
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: SUBMIT, variables: { input: { productId: product.data.createProduct.product.id, image: null, scoreMap: null } } }));
    form.set('map', JSON.stringify({ 0: ['variables.input.image'], 1: ['variables.input.scoreMap'] }));
    form.set('0', files['input.image']);
    form.set('1', files['input.scoreMap']);
    const r = await gql(form);
    const id = decodeGlobalID(r.data.submitInspection.inspection.id).id;
    const db = database.db.prisma;
    await until('the inspection to finish', async () => (await db.inspection.findUnique({ where: { id }, select: { status: true } }))?.status === 'SUCCEEDED', 60_000, 200);
    const attempt = await db.inspectionAttempt.findFirstOrThrow({ where: { inspectionId: id }, select: { worker: true, outcome: true } });
    expect(attempt.outcome).toBe('SUCCEEDED');
    // The worker logs its pid when ready; the server's own (tsx runs the script in a child of its own) is its parent.
    const workerPid = Number(/"worker ready".*"pid":(\d+)/.exec(server.output.join(''))![1]);
    expect(attempt.worker).toMatch(new RegExp(`:${workerPid}$`));
    expect(workerPid).not.toBe(server.child.pid);
    // At a lower priority than the server (nice 10): the API's requests come first.
    expect(getPriority(workerPid)).toBe(10);
    const listening = server.output.join('');
    expect(listening).toContain('queue + embedded worker (child process)');

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    // Both stopped: the worker logged its stop before the server exited.
    expect(server.output.join('')).toContain('"worker stopped"');
  });
});
