// A calibration file (the JSON of calibrationToJson) read back with every field checked, so a hand-edited
// or foreign file fails with a message instead of deep inside the gate.

import { calibrationFromJson, type Calibration, type CalibrationJson } from '../core/calibration.ts';
import { TttError, withSubject } from '../core/errors.ts';

export function decodeCalibration(bytes: Uint8Array, name: string): Calibration {
  return withSubject(name, () => {
    let j: unknown;
    try {
      j = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch (e) {
      throw new TttError('INVALID_INPUT', `the calibration is not valid JSON (${(e as Error).message})`);
    }
    if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new TttError('INVALID_INPUT', 'the calibration must be a JSON object');
    const o = j as Record<string, unknown>;
    if (o.version !== 1) throw new TttError('UNSUPPORTED_FORMAT', `unsupported calibration version ${JSON.stringify(o.version)} (expected 1)`);
    const num = (v: unknown, key: string) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new TttError('INVALID_INPUT', `calibration field ${key} must be a finite number, got ${JSON.stringify(v)}`);
    };
    for (const k of ['count', 'globalMean', 'globalStd', 'maxScore', 'width', 'height']) num(o[k], k);
    const scores = o.imageScores as Record<string, unknown> | undefined;
    if (!scores || typeof scores !== 'object') throw new TttError('INVALID_INPUT', 'calibration field imageScores is missing');
    for (const k of ['mean', 'std', 'max']) num(scores[k], `imageScores.${k}`);
    for (const k of ['pixelMean', 'pixelStd']) {
      if (typeof o[k] !== 'string') throw new TttError('INVALID_INPUT', `calibration field ${k} must be a base64 string`);
    }
    return calibrationFromJson(o as unknown as CalibrationJson);
  });
}
