// `ttt synth`: writes a synthetic inspection sample (image, score map, ground truth) to try `ttt segment`
// on without a dataset.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFilesAtomic } from '../io/files.ts';
import { encodeImagePng, encodeMaskPng } from '../io/image.ts';
import { encodeNpy } from '../io/npy.ts';
import { syntheticSample } from '../synthetic.ts';
import { synthetic3dSample } from '../synthetic3d.ts';
import { encodeFloatTiff } from '../io/tiff.ts';
import { TttError } from '../core/errors.ts';
import { intArg, parse } from './args.ts';

const HELP = `usage: ttt synth --out DIR [--size N] [--seed N] [--colour | --3d]

Writes a synthetic sample with known defects (a textured surface with dark blobs and bright scratches):
  DIR/image.png          the image (N x N, grey, or RGB with --colour)
  DIR/score.npy          the anomaly map a detector would give (float32, N x N)
  DIR/ground_truth.png   the true defect mask (255 = defect)
Then: ttt segment --image DIR/image.png --score-map DIR/score.npy --out DIR/mask.png
With --3d, a part with shallow dents and bumps that the image does not show, and its point cloud:
  DIR/xyz.tiff           the organized point cloud (3-sample float32 TIFF, holes around the part)
Then: ttt segment --image DIR/image.png --score-map DIR/score.npy --point-cloud DIR/xyz.tiff --out DIR/mask.png

options:
  --out DIR      output directory (created if missing)
  --size N       image side in pixels (default 256)
  --seed N       random seed (default 1)
  --colour       an RGB image instead of grey
  --3d           a part with a point cloud (RGB image, 3/4 as high as wide)`;

export const command = {
  summary: 'write a synthetic sample (image, score map, ground truth) to try segment on',
  async run(argv: string[]): Promise<void> {
    const v = parse(
      argv,
      { out: { type: 'string' }, size: { type: 'string' }, seed: { type: 'string' }, colour: { type: 'boolean' }, '3d': { type: 'boolean' } },
      HELP,
    );
    if (!v.out) throw new TttError('INVALID_OPTION', '--out is required (see ttt synth --help)');
    const size = intArg('size', v.size, 256, 16, 8192);
    const seed = intArg('seed', v.seed, 1, 0, 0xffffffff);
    if (v.colour && v['3d']) throw new TttError('INVALID_OPTION', '--colour and --3d exclude each other (the 3-D sample is in colour)');
    const files = [];
    if (v['3d']) {
      const s = synthetic3dSample({ width: size, height: Math.max(1, Math.round(size * 0.75)), seed, defects: 2 });
      const { width, height } = s.image;
      files.push(
        { path: join(v.out, 'image.png'), bytes: await encodeImagePng(s.image) },
        { path: join(v.out, 'score.npy'), bytes: encodeNpy(s.scoreMap.data, [height, width]) },
        { path: join(v.out, 'xyz.tiff'), bytes: encodeFloatTiff(s.pointCloud.data, width, height, 3) },
        { path: join(v.out, 'ground_truth.png'), bytes: await encodeMaskPng(s.groundTruth, width, height) },
      );
    } else {
      const s = syntheticSample({ width: size, height: size, seed, colour: v.colour ?? false });
      files.push(
        { path: join(v.out, 'image.png'), bytes: await encodeImagePng(s.image) },
        { path: join(v.out, 'score.npy'), bytes: encodeNpy(s.scoreMap.data, [s.scoreMap.height, s.scoreMap.width]) },
        { path: join(v.out, 'ground_truth.png'), bytes: await encodeMaskPng(s.groundTruth, size, size) },
      );
    }
    try {
      await mkdir(v.out, { recursive: true });
    } catch (e) {
      throw new TttError('INVALID_INPUT', `${v.out}: cannot create the output directory: ${(e as Error).message}`);
    }
    await writeFilesAtomic(files);
    for (const f of files) console.log(`wrote ${f.path}`);
  },
};
