// The dashboard in a real browser (Debian's Chromium through playwright-core) against the real service
// on an HTTP port: sign-in, Live updated by the subscription with a thumbnail, the inspection's images
// and regions, reprocess and delete, History filters in the URL, Trends' points against inspectionStats,
// Setup, what a VIEWER is not offered, reloads and revocation, a wrong key's sign-in error. A screenshot of each view goes to out/screenshots (to look at).

import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { decodeGlobalID } from '@pothos/plugin-relay';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '../../src/server/http.ts';
import { syntheticSample } from '../../src/synthetic.ts';
import { launchBrowser, requireBuiltPage, type Browser } from '../helpers/browser.ts';
import { INSPECTION, SUBMIT, createProduct, sampleFiles, scoreMapNpy, startService, type TestService } from '../service/helpers.ts';

export const SCREENSHOTS = new URL('../../out/screenshots/', import.meta.url).pathname;

describe('dashboard in Chromium', () => {
  let s: TestService;
  let browser: Browser;
  let base: string;
  let productId: string;
  let page: Page;
  let inspectionId: string;
  const close: (() => unknown)[] = [];
  /** Console errors and uncaught exceptions of the ADMIN's page (CSP violations included). */
  const pageErrors: string[] = [];

  beforeAll(async () => {
    requireBuiltPage();
    mkdirSync(SCREENSHOTS, { recursive: true });
    s = await startService('pglite');
    close.push(() => s.close());
    const server = createHttpServer(s.app, s.app.config);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    close.unshift(() => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    productId = await createProduct(s, 'bracket');
    await createProduct(s, 'housing');
    browser = await launchBrowser();
    close.unshift(() => browser.close());
    page = await browser.context.newPage();
    page.on('console', (m) => void (m.type() === 'error' && pageErrors.push(m.text())));
    page.on('pageerror', (e) => void pageErrors.push(String(e)));
  });
  afterAll(async () => {
    for (const c of close) await c();
  });

  async function signIn(p: Page, key: string): Promise<void> {
    await p.goto(`${base}/`);
    await p.fill('input[name=key]', key);
    await p.click('form.signin button');
  }

  it('signs in and shows a new inspection on Live with its thumbnail', async () => {
    const subscribed = page.waitForRequest((r) => r.url().endsWith('/graphql') && (r.postData() ?? '').includes('inspectionCompleted'));
    await signIn(page, s.adminKey);
    await expect.poll(() => page.textContent('[data-testid=who]')).toBe('test admin · ADMIN');
    await subscribed;
    await page.waitForSelector('text=No inspections of this product yet');

    const sample = syntheticSample({ width: 96, height: 64, seed: 11, defects: 2 });
    const r = await s.upload(SUBMIT, { input: { productId, externalId: 'line-1/0001', image: null, scoreMap: null } }, await sampleFiles(sample));
    inspectionId = r.data!.submitInspection.inspection.id;
    await s.processor.drain();
    // The completion reaches the page through the subscription (no reload): within a second.
    const card = page.locator(`[data-testid=live-list] li[data-id="${inspectionId}"]`);
    await card.waitFor({ timeout: 1000 });
    await expect.poll(() => card.locator('.badge').textContent()).toBe('DEFECTIVE');
    const thumb = card.locator('img[data-testid=thumbnail]');
    await thumb.waitFor();
    const size = await thumb.evaluate((img: HTMLImageElement) => (img.decode().then(() => [img.naturalWidth, img.naturalHeight])));
    // 96 x 64 fits in 160 x 160 unscaled.
    expect(size).toEqual([96, 64]);
    const api = (await s.gql(INSPECTION, { id: inspectionId })).data!.inspection;
    expect(await card.locator('dd').first().textContent()).toBe(`${(api.defectFraction * 100).toFixed(2)} %`);
    expect(await card.locator('dd').nth(1).textContent()).toBe(api.imageScore.toFixed(3));
    await page.screenshot({ path: `${SCREENSHOTS}live.png`, fullPage: true });
  });

  it('opens the inspection: the overlay image loaded and the regions table matches the API', async () => {
    await page.locator(`li[data-id="${inspectionId}"] a`).click();
    expect(page.url()).toBe(`${base}/#/inspection/${encodeURIComponent(inspectionId)}`);
    for (const name of ['image', 'score-map', 'mask', 'overlay']) {
      const img = page.locator(`img[data-testid=image-${name}]`);
      await img.waitFor();
      const [w, h] = await img.evaluate((el: HTMLImageElement) => el.decode().then(() => [el.naturalWidth, el.naturalHeight]));
      expect([w, h], name).toEqual([96, 64]);
    }
    const api = (await s.gql(INSPECTION, { id: inspectionId })).data!.inspection;
    expect(api.regions.length).toBeGreaterThan(0);
    const rows = await page.locator('[data-testid=regions] tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(rows).toEqual(
      api.regions.map((r: any) => [
        String(r.index),
        String(r.area),
        `${r.bbox.x}, ${r.bbox.y}, ${r.bbox.width} × ${r.bbox.height}`,
        `${r.centroid.x.toFixed(1)}, ${r.centroid.y.toFixed(1)}`,
        r.meanScore.toFixed(3),
        r.maxScore.toFixed(3),
      ]),
    );
    expect(await page.textContent('[data-testid=pseudo-labels]')).toBe(`${api.pseudoLabels.anomalous} anomalous, ${api.pseudoLabels.nominal} nominal`);
    expect(await page.locator('[data-testid=stages] tbody tr').count()).toBe(api.stageMs.length + 1);
    // An ADMIN is offered both.
    expect(await page.locator('[data-testid=reprocess]').count()).toBe(1);
    expect(await page.locator('[data-testid=delete]').count()).toBe(1);
    await page.screenshot({ path: `${SCREENSHOTS}inspection.png`, fullPage: true });
  });

  it('reprocesses with option overrides from the page, naming a malformed line', async () => {
    await page.fill('textarea[name=overrides]', 'nonsense');
    await page.click('[data-testid=reprocess]');
    await page.waitForSelector('text=line 1 ("nonsense") is not key=value');
    await page.fill('textarea[name=overrides]', 'classifier.epochs=5\n');
    await page.click('[data-testid=reprocess]');
    await page.waitForSelector('text=Queued for reprocessing.');
    await s.processor.drain();
    const api = (await s.gql(INSPECTION, { id: inspectionId })).data!.inspection;
    expect(api.status).toBe('SUCCEEDED');
    expect(api.options).toEqual([{ key: 'classifier.epochs', value: '5' }]);
    // The page follows the inspection (inspectionUpdated) and shows the new options.
    await expect.poll(() => page.locator('[data-testid=options] tr', { hasText: 'inspection' }).allTextContents()).toEqual(['classifier.epochs5inspection']);
  });

  it('History keeps its filters in the URL and lists what the connection returns', async () => {
    await page.goto(`${base}/#/history?product=${encodeURIComponent(productId)}&verdict=NOMINAL`);
    await page.waitForSelector('text=No inspections match.');
    await page.selectOption('select[name=verdict]', 'DEFECTIVE');
    await expect.poll(() => new URL(page.url()).hash).toBe(`#/history?product=${encodeURIComponent(productId)}&verdict=DEFECTIVE&sort=time&dir=desc`);
    const row = page.locator(`[data-testid=history-table] tbody tr[data-id="${inspectionId}"]`);
    await row.waitFor();
    expect(await page.locator('[data-testid=history-table] tbody tr').count()).toBe(1);
    await page.screenshot({ path: `${SCREENSHOTS}history.png`, fullPage: true });
  });

  it('Trends draws charts whose points are the inspectionStats buckets', async () => {
    const day = new Date().toISOString().slice(0, 10);
    const next = new Date(Date.parse(day) + 86_400_000).toISOString().slice(0, 10);
    await page.goto(`${base}/#/trends?product=${encodeURIComponent(productId)}&bucket=HOUR&from=${day}&to=${next}`);
    const chart = page.locator('[data-testid=chart-total]');
    await chart.locator('canvas').waitFor();
    const stats = await s.gql(`query($p: ID, $f: DateTime!, $t: DateTime!) { inspectionStats(productId: $p, from: $f, to: $t, bucket: HOUR) { buckets { start total defectRate meanDefectFraction } } }`, {
      p: productId,
      f: `${day}T00:00:00.000Z`,
      t: `${next}T00:00:00.000Z`,
    });
    const buckets = stats.data!.inspectionStats.buckets as { start: string; total: number; defectRate: number | null; meanDefectFraction: number | null }[];
    expect(buckets).toHaveLength(24);
    expect(buckets.reduce((a, b) => a + b.total, 0)).toBe(1);
    const x = buckets.map((b) => Date.parse(b.start) / 1000);
    for (const [id, field] of [['total', 'total'], ['defectRate', 'defectRate'], ['meanDefectFraction', 'meanDefectFraction']] as const) {
      const points = JSON.parse((await page.locator(`[data-testid=chart-${id}]`).getAttribute('data-points'))!);
      expect(points, id).toEqual({ x, y: [buckets.map((b) => b[field])] });
    }
    // The canvas has drawn something (not one flat colour).
    const colours = await chart.locator('canvas').evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<number>();
      for (let k = 0; k < d.length; k += 4) seen.add((d[k] << 16) | (d[k + 1] << 8) | d[k + 2]);
      return seen.size;
    });
    expect(colours).toBeGreaterThan(2);
    await page.screenshot({ path: `${SCREENSHOTS}trends.png`, fullPage: true });

    // A second product overlaid: its own series, from its own statistics (housing has no inspections).
    const housing = (await s.gql('{ products { id name } }')).data!.products.find((p: { name: string }) => p.name === 'housing').id;
    await page.selectOption('select[name=compare]', housing);
    await expect
      .poll(async () => JSON.parse((await page.locator('[data-testid=chart-total]').getAttribute('data-points'))!).y.length)
      .toBe(2);
    const compared = JSON.parse((await page.locator('[data-testid=chart-total]').getAttribute('data-points'))!);
    expect(compared).toEqual({ x, y: [buckets.map((b) => b.total), buckets.map(() => 0)] });
    // The chart's data attribute is set before uPlot redraws its legend: wait for the legend too.
    await expect
      .poll(() => page.locator('[data-testid=chart-total] .u-legend .u-series').allTextContents())
      .toEqual(expect.arrayContaining([expect.stringContaining('bracket'), expect.stringContaining('housing')]));
  });

  it('Setup (ADMIN) lists the products, creates one and adds nominal score maps that calibrate it', async () => {
    await page.goto(`${base}/#/setup`);
    const rows = page.locator('[data-testid=products] tbody tr');
    await rows.first().waitFor();
    expect(await rows.evaluateAll((trs) => trs.map((tr) => [tr.children[0].textContent, tr.children[1].textContent, tr.children[3].textContent]))).toEqual([
      ['bracket', 'EXTERNAL', 'not calibrated'],
      ['housing', 'EXTERNAL', 'not calibrated'],
    ]);
    await page.fill('input[name=name]', 'cover');
    await page.fill('input[name=line]', 'line 2');
    await page.click('text=Create');
    await page.waitForSelector('text=Created cover.');
    const row = rows.filter({ hasText: 'cover' });
    expect(await row.locator('td').nth(3).textContent()).toBe('not calibrated');
    const maps = [1, 2].map((seed) => {
      const m = syntheticSample({ width: 64, height: 48, seed, defects: 0 }).scoreMap;
      return { name: `nominal-${seed}.npy`, mimeType: 'application/octet-stream', buffer: Buffer.from(scoreMapNpy(m)) };
    });
    await row.locator('input[type=file]').setInputFiles(maps);
    await page.waitForSelector('text=Added 2 nominal sample(s) to cover.');
    const products = (await s.gql('{ products { name nominalScoreMapCount calibration { count width height } } }')).data!.products;
    const cover = products.find((p: { name: string }) => p.name === 'cover');
    expect(cover).toMatchObject({ nominalScoreMapCount: 2, calibration: { count: 2 } });
    expect(await row.locator('td').nth(2).textContent()).toBe('2');
    expect(await row.locator('td').nth(3).textContent()).toMatch(new RegExp(`^2 maps, ${cover.calibration.width}×${cover.calibration.height}; image score `));
    await page.screenshot({ path: `${SCREENSHOTS}setup.png`, fullPage: true });
  });

  it('offers a VIEWER no reprocess, delete or setup (and the server refuses them anyway)', async () => {
    const viewer = await s.createKey('VIEWER');
    const p = await browser.context.newPage();
    await signIn(p, viewer.secret);
    await expect.poll(() => p.textContent('[data-testid=who]')).toBe('test viewer · VIEWER');
    await p.goto(`${base}/#/inspection/${encodeURIComponent(inspectionId)}`);
    await p.locator('[data-testid=regions] tbody tr').first().waitFor();
    expect(await p.locator('[data-testid=reprocess]').count()).toBe(0);
    expect(await p.locator('[data-testid=delete]').count()).toBe(0);
    expect(await p.locator('header nav a').allTextContents()).toEqual(['Live', 'History', 'Trends']);
    const refused = await s.as(viewer.secret).gql(`mutation($id: ID!) { deleteInspection(id: $id) { __typename } }`, { id: inspectionId });
    expect(refused.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    await p.screenshot({ path: `${SCREENSHOTS}inspection-viewer.png`, fullPage: true });
    // A reload keeps the tab's session; once the key is revoked, the next load signs the tab out.
    await p.reload();
    await p.locator('[data-testid=regions] tbody tr').first().waitFor();
    expect(await p.textContent('[data-testid=who]')).toBe('test viewer · VIEWER');
    const revoked = await s.gql(`mutation($id: String!) { revokeApiKey(id: $id) { __typename } }`, { id: viewer.id });
    expect(revoked.data!.revokeApiKey.__typename).toBe('RevokedApiKey');
    await p.reload();
    const error = p.locator('[data-testid=signin-error]');
    await error.waitFor();
    expect(await error.textContent()).toBe('Signed out: the API key is invalid or revoked');
    expect(await p.evaluate(() => sessionStorage.length)).toBe(0);
    await p.close();
  });

  it('deletes an inspection from the page after confirmation (ADMIN)', async () => {
    await page.goto(`${base}/#/inspection/${encodeURIComponent(inspectionId)}`);
    await page.locator('[data-testid=regions]').waitFor();
    page.once('dialog', (d) => void d.accept());
    await page.click('[data-testid=delete]');
    await expect.poll(() => new URL(page.url()).hash).toBe(`#/history?product=${encodeURIComponent(productId)}`);
    expect((await s.gql(INSPECTION, { id: inspectionId })).data!.inspection).toBeNull();
    // History loads after the navigation: wait for its answer rather than read the table mid-load.
    await expect.poll(() => page.locator('[data-testid=history-table] tbody tr').allTextContents()).toEqual(['No inspections match.']);
  });

  it('the ADMIN page logged no error and broke no Content-Security-Policy rule', () => {
    expect(pageErrors).toEqual([]);
  });

  it('a wrong key gets a clear sign-in error and no session', async () => {
    const p = await browser.context.newPage();
    await signIn(p, 'ttt_this-is-not-a-key');
    const error = p.locator('[data-testid=signin-error]');
    await error.waitFor();
    expect(await error.textContent()).toBe('Sign-in failed: the API key is invalid or revoked');
    expect(await p.evaluate(() => sessionStorage.length)).toBe(0);
    await p.screenshot({ path: `${SCREENSHOTS}sign-in-error.png` });
    await p.close();
    expect(decodeGlobalID(productId).typename).toBe('Product');
  });
});
