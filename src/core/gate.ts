// The image-level gate: a per-image classifier always finds "defects", so a defect-free image must be
// stopped before training. The rule compares the image score (the map's maximum) with the nominal image
// scores of the calibration: mode max -> anomalous when score > factor * max nominal image score;
// mode sigma -> when score > mean + sigmas * std of the nominal image scores.

import type { Calibration } from './calibration.ts';
import type { TttOptions } from './options.ts';
import type { GateReport } from './types.ts';

export function imageGate(imageScore: number, calibration: Calibration | null | undefined, options: TttOptions): GateReport | null {
  const g = options.gate;
  if (!calibration || g.mode === 'off') return null;
  const s = calibration.imageScores;
  const threshold = g.mode === 'max' ? g.factor * s.max : s.mean + g.sigmas * s.std;
  return { imageScore, threshold, anomalous: imageScore > threshold };
}
