// `ttt score`: the built-in PatchCore anomaly map of one image against a memory bank (from `ttt bank build`).

import { TttError, withSubjectAsync } from '../core/errors.ts';
import { decodeBank } from '../core/patchcore/bank.ts';
import { PatchCoreScorer } from '../core/patchcore/patchcore.ts';
import { nodeGpu } from '../gpu/node.ts';
import { parse } from './args.ts';
import { readInputFile, writeFileAtomic } from '../io/files.ts';
import { decodeImage, encodeScoreMapPng } from '../io/image.ts';
import { encodeNpy } from '../io/npy.ts';
import { readPointCloud } from '../io/pointcloud.ts';

const HELP = `usage: ttt score --bank bank.bin --image FILE [--point-cloud FILE] --out map.npy [--png heat.png]

Scores an image with the built-in PatchCore scorer: the anomaly map (float32 .npy, at the image's own
size) and the image score (the map's maximum) on stdout.

  --bank FILE   memory bank from \`ttt bank build\`
  --image FILE  the image to score
  --point-cloud FILE  its organized point cloud (3-sample float TIFF or .npy): required by a bank of
                modality 3d or both, ignored by an rgb bank
  --out FILE    the anomaly map (.npy, height x width)
  --png FILE    also write the map as a heat-map PNG`;

export const command = {
  summary: 'score an image with the built-in PatchCore scorer (score --bank bank.bin --image FILE --out map.npy)',
  async run(argv: string[]): Promise<void> {
    const v = parse(argv, { bank: { type: 'string' }, image: { type: 'string' }, 'point-cloud': { type: 'string' }, out: { type: 'string' }, png: { type: 'string' } }, HELP);
    if (!v.bank || !v.image || !v.out) throw new TttError('INVALID_OPTION', `--bank, --image and --out are required\n\n${HELP}`);
    const bank = decodeBank(await readInputFile(v.bank, 'memory bank'), v.bank);
    const image = await withSubjectAsync(v.image, async () => decodeImage(await readInputFile(v.image!, 'image'), v.image!));
    const cloudPath = v['point-cloud'];
    if (bank.header.modality !== 'rgb' && !cloudPath) {
      throw new TttError('INVALID_OPTION', `${v.bank}: the memory bank holds 3-D features (modality ${bank.header.modality}): give the image's point cloud with --point-cloud`);
    }
    const pointCloud = cloudPath ? await readPointCloud(cloudPath) : null;
    const { gpu } = await nodeGpu();
    const scorer = await PatchCoreScorer.load(gpu, bank);
    const t0 = performance.now();
    const { anomalyMap, predScore } = await withSubjectAsync(cloudPath ?? v.image, () => scorer.score(image, pointCloud));
    const ms = performance.now() - t0;
    scorer.release();
    await writeFileAtomic(v.out, encodeNpy(anomalyMap.data, [anomalyMap.height, anomalyMap.width]));
    if (v.png) await writeFileAtomic(v.png, await encodeScoreMapPng(anomalyMap));
    console.log(JSON.stringify({ image: v.image, predScore, width: anomalyMap.width, height: anomalyMap.height, ms: +ms.toFixed(1) }));
  },
};
