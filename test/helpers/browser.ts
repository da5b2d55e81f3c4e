// Debian's Chromium driven by playwright-core, which never downloads a browser: headless, no GPU, no
// network of its own (no QUIC, background requests, component updates or sync), a fresh profile each
// time. scripts/setup.sh installs the `chromium` package when it is missing.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { DASHBOARD_DIR } from '../../src/server/dashboard.ts';

export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A browser with a fresh profile (its --user-data-dir, removed on close). */
export async function launchBrowser(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium package (npm run setup does)`);
  const profile = mkdtempSync(join(tmpdir(), 'ttt-chromium-'));
  // playwright sets --user-data-dir itself from the profile directory.
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The tests of the page need it built (scripts/setup.sh does it; vitest alone does not). */
export function requireBuiltPage(): void {
  if (!existsSync(join(DASHBOARD_DIR, 'index.html'))) throw new Error(`the dashboard page is not built (${DASHBOARD_DIR}): run \`npm run setup\``);
}
