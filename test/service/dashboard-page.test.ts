// The dashboard page's HTTP side: / and its built assets without a key (types, cache headers, CSP), and
// the thumbnail route (size limits, ETag, 304, cache lifetime by version, a reprocess changes the tag,
// product scope), on the real service. The page itself is tested in a browser (test/browser/).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { createSchema, createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR, dashboardPlugin } from '../../src/server/dashboard.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { requireBuiltPage } from '../helpers/browser.ts';
import { BACKENDS, INSPECTION, REPROCESS, SUBMIT, createProduct, readPng, sampleFiles, startService, type TestService } from './helpers.ts';

describe.each(BACKENDS)('dashboard page and thumbnails on %s', (backend) => {
  let s: TestService;
  let productId: string;
  let inspection: { id: string; uuid: string; finishedAt: string };

  beforeAll(async () => {
    requireBuiltPage();
    s = await startService(backend);
    productId = await createProduct(s, 'bracket');
    const sample = syntheticSample({ width: 96, height: 64, seed: 5, defects: 2 });
    const r = await s.upload(SUBMIT, { input: { productId, image: null, scoreMap: null } }, await sampleFiles(sample));
    const id = r.data!.submitInspection.inspection.id;
    await s.processor.drain();
    const i = (await s.gql(INSPECTION, { id })).data!.inspection;
    expect(i.status).toBe('SUCCEEDED');
    inspection = { id, uuid: decodeGlobalID(id).id, finishedAt: i.finishedAt };
  });
  afterAll(async () => s?.close());

  it('serves the page and its hashed assets without a key, with types and cache headers', async () => {
    const page = await s.as(null).get('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toBe(readFileSync(join(DASHBOARD_DIR, 'index.html'), 'utf8'));
    const scripts = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
    expect(scripts.some((p) => p.endsWith('.js'))).toBe(true);
    for (const path of scripts) {
      const res = await s.as(null).get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe(path.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(new Uint8Array(readFileSync(join(DASHBOARD_DIR, path))));
    }
    // HEAD: the headers, no body.
    const head = await s.app.yoga.fetch('http://ttt.test/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    // Other methods and other paths are not the page's.
    expect((await s.app.yoga.fetch('http://ttt.test/', { method: 'POST' })).status).toBe(404);
    expect((await s.as(null).get('/assets/nothing-1234.js')).status).toBe(404);
  });

  it('answers 503 naming the setup command when the page is not built', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'ttt-web-'));
    try {
      const yoga = createYoga({ schema: createSchema({ typeDefs: 'type Query { a: Int }' }), plugins: [dashboardPlugin(empty)], logging: false });
      const res = await yoga.fetch('http://ttt.test/');
      expect(res.status).toBe(503);
      expect(await res.text()).toBe('the dashboard page is not built: run `npm run setup` (it builds web/ into web/dist)\n');
    } finally {
      rmSync(empty, { recursive: true });
    }
  });

  it('serves a thumbnail that fits the size, with an ETag, 304 on a match, and a year of caching for the current version', async () => {
    const path = `/thumbnails/${inspection.uuid}.png?size=40&v=${Date.parse(inspection.finishedAt)}`;
    const res = await s.get(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    const png = await readPng(new Uint8Array(await res.arrayBuffer()));
    // 96 x 64 scaled to fit 40 x 40.
    expect([png.width, png.height]).toEqual([40, 27]);
    const etag = res.headers.get('etag')!;
    expect(etag).toBe(`"${inspection.uuid}-${Date.parse(inspection.finishedAt)}-40"`);
    const again = await s.app.yoga.fetch(`http://ttt.test${path}`, { headers: { ...s.headers, 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    // Without the current version in the URL: revalidated each time.
    const unversioned = await s.get(`/thumbnails/${inspection.uuid}.png`);
    expect(unversioned.headers.get('cache-control')).toBe('private, no-cache');
    const full = await readPng(new Uint8Array(await unversioned.arrayBuffer()));
    // The default size (160) does not enlarge a smaller image.
    expect([full.width, full.height]).toEqual([96, 64]);
  });

  it('refuses bad sizes, other products, missing keys and unfinished inspections with clear answers', async () => {
    for (const size of ['0', '15', '513', 'abc', '1e2', '']) {
      const res = await s.get(`/thumbnails/${inspection.uuid}.png?size=${size}`);
      expect(res.status, size).toBe(400);
      expect(await res.text()).toBe(`size must be an integer from 16 to 512 (pixels), not ${JSON.stringify(size)}\n`);
    }
    expect((await s.as(null).get(`/thumbnails/${inspection.uuid}.png`)).status).toBe(401);
    const other = await createProduct(s, 'other');
    const viewer = await s.createKey('VIEWER', [decodeGlobalID(other).id]);
    const hidden = await s.as(viewer.secret).get(`/thumbnails/${inspection.uuid}.png`);
    expect(hidden.status).toBe(404);
    expect(await hidden.text()).toBe('no such inspection\n');
    expect((await s.get('/thumbnails/00000000-0000-4000-8000-000000000000.png')).status).toBe(404);
    await s.prisma.inspection.update({ where: { id: inspection.uuid }, data: { status: 'RUNNING' } });
    try {
      const running = await s.get(`/thumbnails/${inspection.uuid}.png`);
      expect(running.status).toBe(404);
      expect(await running.text()).toBe('no overlay: the inspection is RUNNING\n');
    } finally {
      await s.prisma.inspection.update({ where: { id: inspection.uuid }, data: { status: 'SUCCEEDED' } });
    }
    const post = await s.app.yoga.fetch(`http://ttt.test/thumbnails/${inspection.uuid}.png`, { method: 'POST', headers: s.headers });
    expect(post.status).toBe(405);
  });

  it('gives a reprocessed inspection a new tag (the old URL is no longer the current version)', async () => {
    const before = await s.get(`/thumbnails/${inspection.uuid}.png?size=40`);
    const r = await s.gql(REPROCESS, { id: inspection.id, options: [{ key: 'classifier.epochs', value: '5' }] });
    expect(r.data!.reprocessInspection.__typename).toBe('ReprocessInspectionSuccess');
    await s.processor.drain();
    const finishedAt = (await s.gql(INSPECTION, { id: inspection.id })).data!.inspection.finishedAt;
    expect(finishedAt).not.toBe(inspection.finishedAt);
    const oldUrl = await s.get(`/thumbnails/${inspection.uuid}.png?size=40&v=${Date.parse(inspection.finishedAt)}`);
    expect(oldUrl.headers.get('cache-control')).toBe('private, no-cache');
    const after = await s.app.yoga.fetch(`http://ttt.test/thumbnails/${inspection.uuid}.png?size=40`, { headers: { ...s.headers, 'if-none-match': before.headers.get('etag')! } });
    expect(after.status).toBe(200);
    expect(after.headers.get('etag')).toBe(`"${inspection.uuid}-${Date.parse(finishedAt)}-40"`);
  });
});
