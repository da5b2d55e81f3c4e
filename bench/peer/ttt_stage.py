"""The test-time stage with the paper's toolset (numpy, scipy, scikit-learn), for bench/peer.ts.

Reads map.npy (H x W float32), features.npy (C x H x W float32) and params.json from the folder given as
the first argument, runs the stage `runs` times after one warm-up, and prints one JSON line: the wall and
CPU milliseconds of every run (CPU: this process's, OpenBLAS threads included), the pseudo-label counts and
the mask's defect pixels of the last run.

Steps, as our configuration (src/core/options.ts defaults): anomalous seeds = 3x3 local maxima at or above
the anomalous percentile, dilated by a (2r+1)^2 square; nominal = nominalCount pixels drawn without
replacement among the other pixels at or below the nominal percentile; per-channel standardization over the
image; gather; a linear SVM (hinge loss, L2, balanced class weights: LinearSVC with C = 1 / (lambda * rows),
the objective of our SGD's lambda/2 |w|^2 + mean hinge); the decision at every pixel, mask = decision > 0.
"""

import json
import sys
import time
import warnings

import numpy as np
from scipy import ndimage
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC


def stage(score, feats, p, rng):
    h, w = score.shape
    c = feats.shape[0]
    thr_a, thr_n = np.percentile(score, [p["anomalousPercentile"], p["nominalPercentile"]])
    seeds = (ndimage.maximum_filter(score, size=3, mode="nearest") == score) & (score >= thr_a)
    r = p["radius"]
    anomalous = ndimage.binary_dilation(seeds, structure=np.ones((2 * r + 1, 2 * r + 1), bool))
    eligible = ~anomalous
    if p["nominalPercentile"] < 100:
        eligible &= score <= thr_n
    candidates = np.flatnonzero(eligible)
    nominal = rng.choice(candidates, size=min(p["nominalCount"], candidates.size), replace=False)
    pos = np.flatnonzero(anomalous)
    flat = feats.reshape(c, h * w)
    mu = flat.mean(axis=1)
    sd = flat.std(axis=1)
    sd[sd <= 1e-12] = 1.0
    idx = np.concatenate([pos, nominal])
    x = ((flat[:, idx].T - mu) / sd).astype(np.float32)
    y = np.concatenate([np.ones(pos.size), -np.ones(nominal.size)])
    svm = LinearSVC(C=1.0 / (p["lambda"] * idx.size), loss="hinge", class_weight="balanced", max_iter=p["maxIter"])
    svm.fit(x, y)
    z = ((flat.T - mu) / sd).astype(np.float32)
    mask = (svm.decision_function(z) > 0).reshape(h, w)
    return pos.size, nominal.size, int(mask.sum())


def main():
    folder = sys.argv[1]
    score = np.load(f"{folder}/map.npy")
    feats = np.load(f"{folder}/features.npy")
    with open(f"{folder}/params.json") as f:
        p = json.load(f)
    warnings.simplefilter("ignore", ConvergenceWarning)
    rng = np.random.default_rng(p["seed"])
    stage(score, feats, p, rng)
    wall = []
    cpu = []
    for _ in range(p["runs"]):
        t0 = time.perf_counter()
        c0 = time.process_time()
        out = stage(score, feats, p, rng)
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"wall": wall, "cpu": cpu, "anomalous": out[0], "nominal": out[1], "defectPixels": out[2]}))


if __name__ == "__main__":
    main()
