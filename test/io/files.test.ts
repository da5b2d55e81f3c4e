import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOutputPath, findOneFile, readInputFile, writeFileAtomic, writeFilesAtomic } from '../../src/io/files.ts';
import { expectTttError } from '../helpers/files.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ttt-files-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('findOneFile', () => {
  it('finds the one file of the extensions; none -> NOT_FOUND listing them; two -> INVALID_INPUT; folders do not count', async () => {
    const sub = join(dir, 'one');
    await mkdir(sub);
    const base = join(sub, '001');
    const exts = ['.npy', '.tiff', '.tif'];
    await expectTttError(() => findOneFile(base, exts, 'score map', 'test/x/001.png'), 'NOT_FOUND', `${base}.npy`, new RegExp(`the score map of test/x/001.png does not exist \\(looked for ${base}.npy, ${base}.tiff, ${base}.tif\\)`));
    await mkdir(`${base}.npy`);
    await writeFile(`${base}.tif`, 'x');
    expect(await findOneFile(base, exts, 'score map', 'test/x/001.png')).toBe(`${base}.tif`);
    await writeFile(`${base}.tiff`, 'x');
    await expectTttError(() => findOneFile(base, exts, 'score map', 'test/x/001.png'), 'INVALID_INPUT', `${base}.tiff`, /test\/x\/001.png has more than one score map .*; keep one/);
  });
});

describe('readInputFile', () => {
  it('reads the whole file', async () => {
    const p = join(dir, 'a.bin');
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => i % 253);
    await writeFile(p, bytes);
    expect(Buffer.from(await readInputFile(p, 'image')).equals(Buffer.from(bytes))).toBe(true);
    expect((await readInputFile(p, 'image', 70_000)).length).toBe(70_000);
  });

  it('missing file -> NOT_FOUND naming the path', async () => {
    const p = join(dir, 'nope.png');
    await expectTttError(() => readInputFile(p, 'image'), 'NOT_FOUND', p, /cannot open the image: no such file/);
  });

  it('over the size limit -> TOO_LARGE before reading; a directory -> INVALID_INPUT', async () => {
    const p = join(dir, 'b.bin');
    await writeFile(p, new Uint8Array(1001));
    await expectTttError(() => readInputFile(p, 'score map', 1000), 'TOO_LARGE', p, /1001 bytes, more than the limit of 1000/);
    await expectTttError(() => readInputFile(dir, 'score map'), 'INVALID_INPUT', dir, /is a directory/);
  });
});

describe('writeFileAtomic / writeFilesAtomic', () => {
  const leftovers = async (d: string) => (await readdir(d)).filter((f) => f.endsWith('.tmp'));

  it('writes (and replaces) the file, leaving no temp files', async () => {
    const p = join(dir, 'out.png');
    await writeFileAtomic(p, Uint8Array.from([1, 2, 3]));
    await writeFileAtomic(p, Uint8Array.from([4, 5]));
    expect(Array.from(await readFile(p))).toEqual([4, 5]);
    expect(await leftovers(dir)).toEqual([]);
  });

  it('a failing file leaves none of the set behind (missing directory for the second)', async () => {
    const sub = join(dir, 'set');
    await mkdir(sub);
    const first = join(sub, 'mask.png');
    const second = join(sub, 'missing-dir', 'overlay.png');
    await expectTttError(
      () => writeFilesAtomic([
        { path: first, bytes: Uint8Array.from([1]) },
        { path: second, bytes: Uint8Array.from([2]) },
      ]),
      'NOT_FOUND',
      second,
    );
    expect(await readdir(sub)).toEqual([]);
  });

  it('checkOutputPath: missing directory -> NOT_FOUND, a directory as output -> INVALID_INPUT', async () => {
    await checkOutputPath(join(dir, 'fine.png'));
    const p = join(dir, 'no', 'such', 'x.png');
    await expectTttError(() => checkOutputPath(p), 'NOT_FOUND', p, /output directory .* does not exist/);
    await expectTttError(() => checkOutputPath(dir), 'INVALID_INPUT', dir, /is a directory/);
  });
});
