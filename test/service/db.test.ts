// bytea through Prisma on PGlite: the native hex conversion (src/db.ts) stores and returns the same bytes as
// PGlite's own serializer and parser, inside and outside transactions, for every byte value and sizes from
// empty to an inspection's 300 KB.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBytea, serializeBytea } from '../../src/db.ts';
import { openTestDatabase, type TestDatabase } from './helpers.ts';

/** PGlite 0.5's own bytea text conversion, as it is written there (one string / parseInt per byte). */
const pgliteSerialize = (e: Uint8Array) => '\\x' + Array.from(e).map((t) => t.toString(16).padStart(2, '0')).join('');
const pgliteParse = (e: string) => {
  const t = e.slice(2);
  return Uint8Array.from({ length: t.length / 2 }, (_, s) => parseInt(t.substring(s * 2, (s + 1) * 2), 16));
};

function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

const samples: Uint8Array<ArrayBuffer>[] = [
  new Uint8Array(0),
  Uint8Array.from({ length: 256 }, (_, k) => k),
  bytes(4095, 1),
  bytes(300_000, 2).subarray(17, 262_289), // a view with an offset into a larger buffer
];

describe('bytea hex conversion', () => {
  it('equals PGlite\'s serializer and parser on every byte value and on views', () => {
    for (const b of samples) {
      const text = serializeBytea(b);
      expect(text).toBe(pgliteSerialize(b));
      const back = parseBytea(text);
      expect(back).toBeInstanceOf(Uint8Array);
      expect(back).toEqual(pgliteParse(text));
      expect(Buffer.from(back).equals(Buffer.from(b))).toBe(true);
    }
    expect(() => serializeBytea('00ff')).toThrow(/bytea/);
  });
});

describe('bytea columns through Prisma on PGlite', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase('pglite');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('stores and returns the same bytes, in and out of transactions, as PGlite reads them itself', async () => {
    const prisma = t.db.prisma;
    const product = await prisma.product.create({ data: { name: 'bytea' } });
    const inspections = [];
    for (const [k, data] of samples.entries()) {
      const i = await prisma.inspection.create({ data: { productId: product.id, width: 1, height: 1, channels: 1 } });
      inspections.push(i.id);
      if (k % 2 === 0) await prisma.inspectionBlob.create({ data: { inspectionId: i.id, kind: 'IMAGE', name: 'x.png', data } });
      else await prisma.$transaction(async (tx) => tx.inspectionBlob.create({ data: { inspectionId: i.id, kind: 'IMAGE', name: 'x.png', data } }));
    }
    for (const [k, id] of inspections.entries()) {
      const want = Buffer.from(samples[k]);
      const plain = await prisma.inspectionBlob.findUniqueOrThrow({ where: { inspectionId_kind: { inspectionId: id, kind: 'IMAGE' } } });
      expect(Buffer.from(plain.data).equals(want), `sample ${k}`).toBe(true);
      const inTx = await prisma.$transaction(async (tx) => tx.inspectionBlob.findUniqueOrThrow({ where: { inspectionId_kind: { inspectionId: id, kind: 'IMAGE' } } }));
      expect(Buffer.from(inTx.data).equals(want), `sample ${k} in a transaction`).toBe(true);
      // What PGlite's own (default) parser reads from the stored row, and the byte count the server sees.
      const raw = await t.db.withSession((s) => s.query<{ data: Uint8Array; n: number }>('SELECT data, length(data) AS n FROM "InspectionBlob" WHERE "inspectionId" = $1', [id]));
      expect(raw[0].n).toBe(samples[k].length);
      expect(Buffer.from(raw[0].data).equals(want), `sample ${k} read by PGlite`).toBe(true);
    }
  });
});
