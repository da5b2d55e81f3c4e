// `ttt score`: the built-in PatchCore anomaly map of one image against a memory bank (from `ttt bank build`).

import { readFileSync } from 'node:fs';
import { TttError } from '../core/errors.ts';
import { decodeBank } from '../core/patchcore/bank.ts';
import { PatchCoreScorer } from '../core/patchcore/patchcore.ts';
import { nodeGpu } from '../gpu/node.ts';
import { registerMobileNet } from '../models/nsfwjs.ts';
import { parse } from './args.ts';
import { writeAtomic } from './bank.ts';
import { decodeImage, encodeHeatPng, encodeNpy } from './imageio.ts';

const HELP = `usage: ttt score --bank bank.bin --image FILE --out map.npy [--png heat.png]

Scores an image with the built-in PatchCore scorer: the anomaly map (float32 .npy, at the image's own
size) and the image score (the map's maximum) on stdout.

  --bank FILE   memory bank from \`ttt bank build\`
  --image FILE  the image to score
  --out FILE    the anomaly map (.npy, height x width)
  --png FILE    also write the map as a heat-map PNG`;

function readInput(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new TttError('NOT_FOUND', `${what} ${path}: ${(e as Error).message}`);
  }
}

export const command = {
  summary: 'score an image with the built-in PatchCore scorer (score --bank bank.bin --image FILE --out map.npy)',
  async run(argv: string[]): Promise<void> {
    const v = parse(argv, { bank: { type: 'string' }, image: { type: 'string' }, out: { type: 'string' }, png: { type: 'string' } }, HELP);
    if (!v.bank || !v.image || !v.out) throw new TttError('INVALID_OPTION', `--bank, --image and --out are required\n\n${HELP}`);
    const bank = decodeBank(readInput(v.bank, 'memory bank'), v.bank);
    const image = await decodeImage(readInput(v.image, 'image'), v.image);
    registerMobileNet();
    const { gpu } = await nodeGpu();
    const scorer = await PatchCoreScorer.load(gpu, bank);
    const t0 = performance.now();
    const { anomalyMap, predScore } = await scorer.score(image);
    const ms = performance.now() - t0;
    scorer.release();
    writeAtomic(v.out, encodeNpy(anomalyMap.data, [anomalyMap.height, anomalyMap.width]));
    if (v.png) writeAtomic(v.png, await encodeHeatPng(anomalyMap));
    console.log(JSON.stringify({ image: v.image, predScore, width: anomalyMap.width, height: anomalyMap.height, ms: +ms.toFixed(1) }));
  },
};
