// The PNGs behind an inspection's file URLs: the uploaded image, its score map, the predicted mask and
// an overlay of mask and region boxes on the image. Rendered on request from the stored blobs.

import type { Region } from '../core/types.ts';
import type { PrismaClient } from '../db.ts';
import type { BlobKind } from '../generated/prisma/enums.ts';
import { decodeImage, decodeMask, encodeOverlayPng, encodeScoreMapPng, sharpInput } from '../io/image.ts';
import { sniff } from '../io/sniff.ts';
import { decodeScoreMap } from '../io/scoremap.ts';
import { inScope, type Principal } from './auth.ts';

export const FILE_KINDS = ['image', 'score-map', 'mask', 'overlay'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

export type FileResult = { ok: true; png: Uint8Array } | { ok: false; status: 404; reason: string };

/** The blobs each file is rendered from (the overlay also reads the regions). */
const SOURCES: Record<FileKind, BlobKind[]> = { image: ['IMAGE'], 'score-map': ['SCORE_MAP'], mask: ['MASK'], overlay: ['MASK', 'IMAGE'] };

/** The file, or 404 when the inspection is missing or outside the principal's products (the same answer). */
export async function renderFile(db: PrismaClient, inspectionId: string, kind: FileKind, principal: Principal, maxImagePixels: number): Promise<FileResult> {
  // One query: the inspection with the blobs (and, for the overlay, the regions) the file needs.
  const inspection = await db.inspection.findUnique({
    where: { id: inspectionId },
    select: {
      status: true,
      productId: true,
      blobs: { where: { kind: { in: SOURCES[kind] } }, select: { kind: true, name: true, data: true } },
      regions: kind === 'overlay' ? { orderBy: { index: 'asc' } } : false,
    },
  });
  if (!inspection || !inScope(principal, inspection.productId)) return { ok: false, status: 404, reason: 'no such inspection' };
  const blob = (k: BlobKind) => inspection.blobs.find((b) => b.kind === k);
  switch (kind) {
    case 'image': {
      const b = blob('IMAGE');
      if (!b) return { ok: false, status: 404, reason: 'the inspection has no image' };
      if (sniff(b.data) === 'png') return { ok: true, png: b.data };
      return { ok: true, png: new Uint8Array(await sharpInput(b.data, maxImagePixels).png().toBuffer()) };
    }
    case 'score-map': {
      const b = blob('SCORE_MAP');
      if (!b) return { ok: false, status: 404, reason: 'the inspection has no score map' };
      return { ok: true, png: await encodeScoreMapPng(await decodeScoreMap(b.data, b.name, { maxPixels: maxImagePixels })) };
    }
    case 'mask':
    case 'overlay': {
      if (inspection.status !== 'SUCCEEDED') return { ok: false, status: 404, reason: `no mask: the inspection is ${inspection.status}` };
      const mask = blob('MASK');
      if (!mask) return { ok: false, status: 404, reason: 'no mask stored' };
      if (kind === 'mask') return { ok: true, png: mask.data };
      const image = blob('IMAGE');
      if (!image) return { ok: false, status: 404, reason: 'the inspection has no image' };
      const decoded = await decodeImage(image.data, image.name, { maxPixels: maxImagePixels });
      const regions: Region[] = inspection.regions.map((r) => ({
        id: r.index,
        area: r.area,
        bbox: { x: r.bboxX, y: r.bboxY, width: r.bboxWidth, height: r.bboxHeight },
        centroid: { x: r.centroidX, y: r.centroidY },
        meanScore: r.meanScore,
        maxScore: r.maxScore,
      }));
      const bits = await decodeMask(mask.data, mask.name, decoded);
      return { ok: true, png: await encodeOverlayPng(decoded, bits, regions) };
    }
  }
}
