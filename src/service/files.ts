// The PNGs behind an inspection's file URLs: the uploaded image, its score map, the predicted mask and
// an overlay of mask and region boxes on the image. Rendered on first request from the stored blobs, in a
// worker thread (io/offload.ts), then kept in a bounded in-memory cache; concurrent requests for the same
// file share one rendering. Each file version has a strong ETag derived from what it is rendered from, so
// a revalidation (If-None-Match) is answered 304 from one small query, without loading or rendering.

import { createHash } from 'node:crypto';
import type { Region } from '../core/types.ts';
import type { PrismaClient } from '../db.ts';
import type { BlobKind } from '../generated/prisma/enums.ts';
import { sharpInput } from '../io/image.ts';
import { offload } from '../io/offload.ts';
import { sniff } from '../io/sniff.ts';
import { inScope, type Principal } from './auth.ts';

export const FILE_KINDS = ['image', 'score-map', 'mask', 'overlay'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

export type FileResult = { ok: true; png: Uint8Array; etag: string } | { ok: false; status: 304; etag: string } | { ok: false; status: 404; reason: string };

/** Bytes of rendered files kept in memory (least recently used first out). */
export const FILE_CACHE_BYTES = 128 * 1024 * 1024;

/** Bumped when a file's rendering changes, so that clients do not keep an old rendering under its ETag. */
const RENDERING_VERSION = 1;

/** The blobs each file is rendered from (the overlay also reads the regions). */
const SOURCES: Record<FileKind, BlobKind[]> = { image: ['IMAGE'], 'score-map': ['SCORE_MAP'], mask: ['MASK'], overlay: ['MASK', 'IMAGE'] };

interface Source {
  status: string;
  productId: string;
  scoreSource: string;
  finishedAt: Date | null;
}

/**
 * What a file is rendered from, as one string: the uploads never change, while a mask, an overlay and a
 * score map the built-in scorer computed are replaced by each processing run (identified by its end time).
 */
function sourceVersion(id: string, kind: FileKind, s: Source): string {
  const run = s.finishedAt?.toISOString() ?? 'unfinished';
  const changesPerRun = kind === 'mask' || kind === 'overlay' || (kind === 'score-map' && s.scoreSource === 'BUILTIN');
  return `${RENDERING_VERSION}:${id}:${kind}:${changesPerRun ? run : 'upload'}`;
}

class ByteCache {
  private readonly entries = new Map<string, Uint8Array>();
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}

  get(key: string): Uint8Array | undefined {
    const v = this.entries.get(key);
    if (v) {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  set(key: string, value: Uint8Array): void {
    if (value.byteLength > this.maxBytes || this.entries.has(key)) return;
    this.entries.set(key, value);
    this.bytes += value.byteLength;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.byteLength;
    }
  }
}

export class InspectionFiles {
  /** Renderings started (cache misses not joined to one in flight). */
  renders = 0;
  private readonly cache: ByteCache;
  private readonly inFlight = new Map<string, Promise<FileResult>>();

  constructor(
    private readonly db: PrismaClient,
    private readonly maxImagePixels: number,
    cacheBytes = FILE_CACHE_BYTES,
  ) {
    this.cache = new ByteCache(cacheBytes);
  }

  /**
   * The file, 304 when `ifNoneMatch` names its current ETag, or 404 when the inspection is missing or
   * outside the principal's products (the same answer) or the file does not exist (yet).
   */
  async get(inspectionId: string, kind: FileKind, principal: Principal, ifNoneMatch: string | null): Promise<FileResult> {
    const source = await this.db.inspection.findUnique({
      where: { id: inspectionId },
      select: { status: true, productId: true, scoreSource: true, finishedAt: true },
    });
    if (!source || !inScope(principal, source.productId)) return { ok: false, status: 404, reason: 'no such inspection' };
    if ((kind === 'mask' || kind === 'overlay') && source.status !== 'SUCCEEDED') return { ok: false, status: 404, reason: `no mask: the inspection is ${source.status}` };
    const version = sourceVersion(inspectionId, kind, source);
    const etag = `"${createHash('sha256').update(version).digest('base64url').slice(0, 32)}"`;
    if (ifNoneMatch !== null && ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === '*')) return { ok: false, status: 304, etag };
    const cached = this.cache.get(version);
    if (cached) return { ok: true, png: cached, etag };
    let rendering = this.inFlight.get(version);
    if (!rendering) {
      this.renders++;
      rendering = this.render(inspectionId, kind, source, etag).finally(() => this.inFlight.delete(version));
      this.inFlight.set(version, rendering);
    }
    const file = await rendering;
    if (file.ok) this.cache.set(version, file.png);
    return file;
  }

  private async render(inspectionId: string, kind: FileKind, version: Source, etag: string): Promise<FileResult> {
    const inspection = await this.db.inspection.findUnique({
      where: { id: inspectionId },
      select: {
        finishedAt: true,
        blobs: { where: { kind: { in: SOURCES[kind] } }, select: { kind: true, name: true, data: true } },
        regions: kind === 'overlay' ? { orderBy: { index: 'asc' } } : false,
      },
    });
    // Reprocessed or deleted since the version was read: its ETag would name other bytes.
    if (!inspection || inspection.finishedAt?.getTime() !== version.finishedAt?.getTime()) return { ok: false, status: 404, reason: 'the inspection changed while the file was read; retry' };
    const blob = (k: BlobKind) => inspection.blobs.find((b) => b.kind === k);
    const maxPixels = this.maxImagePixels;
    switch (kind) {
      case 'image': {
        const b = blob('IMAGE');
        if (!b) return { ok: false, status: 404, reason: 'the inspection has no image' };
        if (sniff(b.data) === 'png') return { ok: true, png: b.data, etag };
        // sharp alone (libuv's threads): no JavaScript loop over the pixels.
        return { ok: true, png: new Uint8Array(await sharpInput(b.data, maxPixels).png().toBuffer()), etag };
      }
      case 'score-map': {
        const b = blob('SCORE_MAP');
        if (!b) return { ok: false, status: 404, reason: 'the inspection has no score map' };
        return { ok: true, png: await offload().run('renderScoreMap', [{ name: b.name, bytes: b.data }, maxPixels]), etag };
      }
      case 'mask':
      case 'overlay': {
        const mask = blob('MASK');
        if (!mask) return { ok: false, status: 404, reason: 'no mask stored' };
        if (kind === 'mask') return { ok: true, png: mask.data, etag };
        const image = blob('IMAGE');
        if (!image) return { ok: false, status: 404, reason: 'the inspection has no image' };
        const regions: Region[] = inspection.regions.map((r) => ({
          id: r.index,
          area: r.area,
          bbox: { x: r.bboxX, y: r.bboxY, width: r.bboxWidth, height: r.bboxHeight },
          centroid: { x: r.centroidX, y: r.centroidY },
          meanScore: r.meanScore,
          maxScore: r.maxScore,
        }));
        const png = await offload().run('renderOverlay', [{ name: image.name, bytes: image.data }, { name: mask.name, bytes: mask.data }, regions, maxPixels]);
        return { ok: true, png, etag };
      }
    }
  }
}
