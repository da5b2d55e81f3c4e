// Small overlay thumbnails for the dashboard's lists: GET /thumbnails/<inspection id>.png?size=160[&v=...],
// the overlay (mask and region boxes over the image) scaled by sharp to fit size x size. Behind the same
// key check as the file routes. An inspection's files never change once it has succeeded, except by a
// reprocess, which sets a new finishedAt: the ETag is made from it, and a URL whose `v` names the current
// version is cached for a year (the page builds its URLs with `v`, so a reprocess gives a new URL).

import sharp from 'sharp';
import type { Plugin } from 'graphql-yoga';
import type { PrismaClient } from '../db.ts';
import { FILE_ROLE, hasRole, inScope } from '../service/auth.ts';
import type { InspectionFiles } from '../service/files.ts';
import { principalOf } from './auth.ts';

export const THUMBNAIL_ROUTE = /^\/thumbnails\/([0-9a-f-]{36})\.png$/i;
export const THUMBNAIL_SIZES = { min: 16, max: 512, default: 160 } as const;

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(`${body}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } });
}

/** The thumbnail URL the page requests: its `v` is the inspection's finishedAt in milliseconds. */
export function thumbnailPath(inspectionId: string, finishedAt: Date, size: number = THUMBNAIL_SIZES.default): string {
  return `/thumbnails/${inspectionId}.png?size=${size}&v=${finishedAt.getTime()}`;
}

export function thumbnailsPlugin(db: PrismaClient, files: InspectionFiles): Plugin {
  return {
    async onRequest({ url, request, endResponse }) {
      const m = THUMBNAIL_ROUTE.exec(url.pathname);
      if (!m) return;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        endResponse(text(405, 'method not allowed', { allow: 'GET, HEAD' }));
        return;
      }
      const principal = principalOf(request);
      if (!principal || !hasRole(principal, FILE_ROLE)) {
        endResponse(text(403, 'forbidden'));
        return;
      }
      // Limits before any work: the size is checked before the database is asked.
      const sizeParam = url.searchParams.get('size');
      const size = sizeParam === null ? THUMBNAIL_SIZES.default : /^\d{1,4}$/.test(sizeParam) ? Number(sizeParam) : NaN;
      if (!(size >= THUMBNAIL_SIZES.min && size <= THUMBNAIL_SIZES.max)) {
        endResponse(text(400, `size must be an integer from ${THUMBNAIL_SIZES.min} to ${THUMBNAIL_SIZES.max} (pixels), not ${JSON.stringify(sizeParam)}`));
        return;
      }
      const id = m[1].toLowerCase();
      const row = await db.inspection.findUnique({ where: { id }, select: { productId: true, status: true, finishedAt: true } });
      if (!row || !inScope(principal, row.productId)) {
        endResponse(text(404, 'no such inspection'));
        return;
      }
      if (row.status !== 'SUCCEEDED' || !row.finishedAt) {
        endResponse(text(404, `no overlay: the inspection is ${row.status}`));
        return;
      }
      const version = String(row.finishedAt.getTime());
      const etag = `"${id}-${version}-${size}"`;
      const cacheControl = url.searchParams.get('v') === version ? 'private, max-age=31536000, immutable' : 'private, no-cache';
      const headers = { etag, 'cache-control': cacheControl };
      const match = request.headers.get('if-none-match');
      if (match !== null && match.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
        endResponse(new Response(null, { status: 304, headers }));
        return;
      }
      // The overlay as its file route serves it: rendered once, off the event loop, cached.
      const file = await files.get(id, 'overlay', principal, null);
      // Asked without an ETag, the file is never a 304.
      if (!file.ok) {
        endResponse(text(file.status, file.status === 304 ? 'not modified' : file.reason));
        return;
      }
      const png = new Uint8Array(await sharp(file.png).resize(size, size, { fit: 'inside', withoutEnlargement: true }).png().toBuffer());
      endResponse(
        new Response(request.method === 'HEAD' ? null : png, {
          status: 200,
          headers: { ...headers, 'content-type': 'image/png', 'content-length': String(png.byteLength) },
        }),
      );
    },
  };
}
