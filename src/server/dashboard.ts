// The dashboard page (web/, built by Vite into web/dist by scripts/setup.sh), served at `/` without a key:
// the page is public, its GraphQL and file requests carry the key the user signs in with. Files are read
// once at start-up; hashed assets (/assets/<name>-<hash>.js) are immutable, the page itself is revalidated.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'graphql-yoga';

export const DASHBOARD_DIR = fileURLToPath(new URL('../../web/dist', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

/** Scripts and styles from this server only; images also as blob: URLs (files fetched with the key). */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/** The built files by URL path; `/` is index.html. Null when the page was not built. */
export function loadDashboard(dir: string = DASHBOARD_DIR): Map<string, Asset> | null {
  if (!existsSync(join(dir, 'index.html'))) return null;
  const assets = new Map<string, Asset>();
  for (const path of walk(dir)) {
    const type = TYPES[extname(path)];
    if (!type) continue;
    const urlPath = `/${relative(dir, path).split(sep).join('/')}`;
    const hashed = urlPath.startsWith('/assets/');
    assets.set(urlPath === '/index.html' ? '/' : urlPath, {
      body: new Uint8Array(readFileSync(path)),
      headers: { 'content-type': type, 'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache', ...PAGE_HEADERS },
    });
  }
  return assets;
}

/** Answers `/` and the page's assets (GET, HEAD) before the key check; anything else goes on. */
export function dashboardPlugin(dir: string = DASHBOARD_DIR): Plugin {
  const assets = loadDashboard(dir);
  return {
    onRequest({ url, request, endResponse }) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return;
      if (url.pathname === '/' && !assets) {
        endResponse(
          new Response('the dashboard page is not built: run `npm run setup` (it builds web/ into web/dist)\n', {
            status: 503,
            headers: { 'content-type': 'text/plain; charset=utf-8' },
          }),
        );
        return;
      }
      const asset = assets?.get(url.pathname);
      if (!asset || url.pathname === '/index.html') return;
      endResponse(new Response(request.method === 'HEAD' ? null : asset.body, { status: 200, headers: { ...asset.headers, 'content-length': String(asset.body.byteLength) } }));
    },
  };
}
