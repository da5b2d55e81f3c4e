// GraphiQL from the installed @graphql-yoga/render-graphiql bundle, served by this server: a plant network
// has no internet, so the page loads nothing from a CDN. The page is small and names same-origin assets
// under /graphiql/ (script, style, Monaco's workers, icon), read from the package on first use.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { GraphiQLOptions, Plugin } from 'graphql-yoga';

export const GRAPHIQL_ASSETS_PATH = '/graphiql/';

interface Bundle {
  js: string;
  css: string;
  favicon: string;
  editorWorkerService: string;
  jsonWorker: string;
  graphqlWorker: string;
}

const require = createRequire(import.meta.url);
// The package exports only its renderer (which inlines 9 MB into every page); its bundle module sits beside it.
const bundlePath = join(dirname(require.resolve('@graphql-yoga/render-graphiql')), 'graphiql.js');
const version = (require('@graphql-yoga/render-graphiql/package.json') as { version: string }).version;

let assets: Map<string, { body: Uint8Array<ArrayBuffer>; type: string }> | undefined;

function loadAssets() {
  if (assets) return assets;
  const b = require(bundlePath) as Bundle;
  const text = (s: string) => new TextEncoder().encode(s);
  const icon = /^data:[^;,]+;base64,(.*)$/.exec(b.favicon);
  assets = new Map([
    ['graphiql.js', { body: text(b.js), type: 'text/javascript; charset=utf-8' }],
    ['graphiql.css', { body: text(b.css), type: 'text/css; charset=utf-8' }],
    ['editor.worker.js', { body: text(b.editorWorkerService), type: 'text/javascript; charset=utf-8' }],
    ['json.worker.js', { body: text(b.jsonWorker), type: 'text/javascript; charset=utf-8' }],
    ['graphql.worker.js', { body: text(b.graphqlWorker), type: 'text/javascript; charset=utf-8' }],
    ...(icon ? [['favicon.ico', { body: new Uint8Array(Buffer.from(icon[1], 'base64')), type: 'image/x-icon' }] as const] : []),
  ]);
  return assets;
}

/** The asset names the page refers to (tests). */
export function graphiqlAssetNames(): string[] {
  return [...loadAssets().keys()];
}

const at = (name: string) => `${GRAPHIQL_ASSETS_PATH}${name}?v=${version}`;

/** yoga's `renderGraphiQL`: the page, with every script, style and worker from this server. */
export function renderGraphiQL(options?: GraphiQLOptions): string {
  const title = (options?.title ?? 'GraphiQL').replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  // In a <script>: "<" escaped so that no value can close the element.
  const json = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${title}</title>
    <link rel="icon" href="${at('favicon.ico')}" />
    <link rel="stylesheet" href="${at('graphiql.css')}" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>You need to enable JavaScript to run this app.</noscript>
    <div id="root"></div>
    <script src="${at('graphiql.js')}"></script>
    <script>
      const workers = ${json({ editorWorkerService: at('editor.worker.js'), json: at('json.worker.js'), graphql: at('graphql.worker.js') })};
      self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (moduleId, label) => workers[label] ?? workers.editorWorkerService };
      YogaGraphiQL.renderYogaGraphiQL(document.querySelector('#root'), ${json(options ?? {})});
    </script>
  </body>
</html>
`;
}

/** Serves GraphiQL's assets (GET and HEAD, no key: they are the package's files and hold no data). */
export function graphiqlAssetsPlugin(): Plugin {
  return {
    onRequest({ url, request, endResponse }) {
      if (!url.pathname.startsWith(GRAPHIQL_ASSETS_PATH)) return;
      const asset = loadAssets().get(url.pathname.slice(GRAPHIQL_ASSETS_PATH.length));
      if (!asset) {
        endResponse(new Response('not found\n', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } }));
        return;
      }
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        endResponse(new Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } }));
        return;
      }
      endResponse(
        new Response(request.method === 'HEAD' ? null : asset.body, {
          status: 200,
          headers: { 'content-type': asset.type, 'content-length': String(asset.body.byteLength), 'cache-control': 'public, max-age=86400', etag: `"${version}"` },
        }),
      );
    },
  };
}
