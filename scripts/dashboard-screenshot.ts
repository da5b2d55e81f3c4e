// Regenerates docs/dashboard.png, the README's picture of the dashboard: the real service on an in-memory
// database with a few synthetic inspections (processed on the GPU), its Live view in Debian's Chromium.
//
//   npx tsx scripts/dashboard-screenshot.ts [--out docs/dashboard.png]

import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createHttpServer } from '../src/server/http.ts';
import { syntheticSample } from '../src/synthetic.ts';
import { launchBrowser } from '../test/helpers/browser.ts';
import { SUBMIT, createProduct, sampleFiles, startService } from '../test/service/helpers.ts';

const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs/dashboard.png' } } });

const s = await startService('pglite');
const server = createHttpServer(s.app, s.app.config);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const browser = await launchBrowser({ width: 1280, height: 760 });
try {
  const productId = await createProduct(s, 'bracket');
  // Seeds fixed, so the picture changes only when the page or the method does.
  for (const [k, defects] of [2, 0, 1, 3, 0, 2].entries()) {
    const sample = syntheticSample({ width: 128, height: 96, seed: 100 + k, defects });
    const r = await s.upload(SUBMIT, { input: { productId, externalId: `line-1/${String(k + 1).padStart(4, '0')}`, image: null, scoreMap: null } }, await sampleFiles(sample));
    if (r.data?.submitInspection.__typename !== 'SubmitInspectionSuccess') throw new Error(`submission failed: ${JSON.stringify(r)}`);
  }
  await s.processor.drain();
  const page = await browser.context.newPage();
  await page.goto(`${base}/`);
  await page.fill('input[name=key]', s.adminKey);
  await page.click('form.signin button');
  await page.locator('[data-testid=live-list] li').nth(5).waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('.thumb')].every((t) => t instanceof HTMLImageElement || t.classList.contains('placeholder')) && [...document.querySelectorAll('img')].every((i) => i.complete));
  await page.screenshot({ path: values.out! });
  console.log(`wrote ${values.out}`);
} finally {
  await browser.close();
  server.closeAllConnections();
  server.close();
  await s.close();
}
