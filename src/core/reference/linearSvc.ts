// An exact solver of the classifier's squared-hinge objective, the yardstick of the SGD (classifier.ts):
//   P(w, b) = lambda/2 |w|^2 + lambdaBias/2 b^2 + sum_i a_i max(0, 1 - y_i (w.x_i + b))^2 / sum_i a_i,
// which with lambda = 1 / (C n), a_i = 1 and lambdaBias = lambda is scikit-learn's LinearSVC(C) (loss
// 'squared_hinge', penalty 'l2', intercept_scaling 1: liblinear regularizes the intercept) divided by C n.
// Generalized Newton on the primal (Keerthi & DeCoste 2005): the objective is piecewise quadratic, so
// Newton with a backtracking line search ends at the exact minimizer in a few steps. Dense (channels + 1)^2
// systems: for training sets of a few thousand rows and up to ~1500 channels (tests, benches).

export interface SvmProblem {
  /** rows x channels, row-major. */
  x: ArrayLike<number>;
  /** +1 / -1 per row. */
  targets: ArrayLike<number>;
  rows: number;
  channels: number;
  /** Per-row weights a_i (default 1). */
  weights?: ArrayLike<number>;
}

export interface SvmSolution {
  /** Weights per channel, then the bias (as ClassifierReport.weights). */
  weights: number[];
  objective: number;
  /** Largest |gradient| component at the solution. */
  gradient: number;
  iterations: number;
}

/** The objective and its gradient at theta = [w, b]; `active` gets the rows with a positive hinge. */
export function svmObjective(p: SvmProblem, theta: ArrayLike<number>, lambda: number, lambdaBias: number, grad?: Float64Array, active?: number[]): number {
  const C = p.channels;
  let asum = 0;
  for (let i = 0; i < p.rows; i++) asum += p.weights ? p.weights[i] : 1;
  let reg = 0;
  for (let c = 0; c < C; c++) reg += theta[c] * theta[c];
  let value = 0.5 * lambda * reg + 0.5 * lambdaBias * theta[C] * theta[C];
  if (grad) {
    for (let c = 0; c < C; c++) grad[c] = lambda * theta[c];
    grad[C] = lambdaBias * theta[C];
  }
  if (active) active.length = 0;
  for (let i = 0; i < p.rows; i++) {
    let f = theta[C];
    for (let c = 0; c < C; c++) f += theta[c] * p.x[i * C + c];
    const y = p.targets[i];
    const h = 1 - y * f;
    if (h <= 0) continue;
    const a = (p.weights ? p.weights[i] : 1) / asum;
    value += a * h * h;
    active?.push(i);
    if (grad) {
      const k = -2 * a * h * y;
      for (let c = 0; c < C; c++) grad[c] += k * p.x[i * C + c];
      grad[C] += k;
    }
  }
  return value;
}

/** Cholesky solve of the symmetric positive definite n x n system H z = r (H overwritten). */
function choleskySolve(H: Float64Array, r: Float64Array, n: number): Float64Array {
  for (let j = 0; j < n; j++) {
    let d = H[j * n + j];
    for (let k = 0; k < j; k++) d -= H[j * n + k] * H[j * n + k];
    const l = Math.sqrt(Math.max(d, 1e-300));
    H[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let s = H[i * n + j];
      for (let k = 0; k < j; k++) s -= H[i * n + k] * H[j * n + k];
      H[i * n + j] = s / l;
    }
  }
  const z = Float64Array.from(r);
  for (let i = 0; i < n; i++) {
    let s = z[i];
    for (let k = 0; k < i; k++) s -= H[i * n + k] * z[k];
    z[i] = s / H[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = z[i];
    for (let k = i + 1; k < n; k++) s -= H[k * n + i] * z[k];
    z[i] = s / H[i * n + i];
  }
  return z;
}

/** The minimizer of the squared-hinge objective, to a gradient of at most `tol` (max norm). */
export function solveSquaredHinge(p: SvmProblem, lambda: number, lambdaBias: number, tol = 1e-12, maxIterations = 100): SvmSolution {
  const C = p.channels;
  const n = C + 1;
  let asum = 0;
  for (let i = 0; i < p.rows; i++) asum += p.weights ? p.weights[i] : 1;
  const theta = new Float64Array(n);
  const grad = new Float64Array(n);
  const active: number[] = [];
  let value = svmObjective(p, theta, lambda, lambdaBias, grad, active);
  let iterations = 0;
  const gmax = () => grad.reduce((m, g) => Math.max(m, Math.abs(g)), 0);
  while (gmax() > tol && iterations < maxIterations) {
    iterations++;
    // Generalized Hessian: diag(lambda, lambdaBias) + 2/A sum over the active rows of a_i xb xb^T.
    const H = new Float64Array(n * n);
    for (let c = 0; c < C; c++) H[c * n + c] = lambda;
    H[C * n + C] = lambdaBias;
    const xb = new Float64Array(n);
    for (const i of active) {
      const a = (2 * (p.weights ? p.weights[i] : 1)) / asum;
      for (let c = 0; c < C; c++) xb[c] = p.x[i * C + c];
      xb[C] = 1;
      for (let r = 0; r < n; r++) {
        const v = a * xb[r];
        if (v === 0) continue;
        for (let c = 0; c <= r; c++) H[r * n + c] += v * xb[c];
      }
    }
    // A tiny ridge keeps the system definite (a free bias with no active row).
    for (let r = 0; r < n; r++) {
      H[r * n + r] += 1e-12;
      for (let c = 0; c < r; c++) H[c * n + r] = H[r * n + c];
    }
    const step = choleskySolve(H, grad, n);
    let slope = 0;
    for (let k = 0; k < n; k++) slope -= grad[k] * step[k];
    // Backtracking (Armijo) along -step.
    let t = 1;
    const trial = new Float64Array(n);
    let next = value;
    for (let k = 0; k < 60; k++) {
      for (let j = 0; j < n; j++) trial[j] = theta[j] - t * step[j];
      next = svmObjective(p, trial, lambda, lambdaBias);
      if (next <= value + 1e-4 * t * slope) break;
      t /= 2;
    }
    if (!(next < value)) break;
    theta.set(trial);
    value = svmObjective(p, theta, lambda, lambdaBias, grad, active);
  }
  return { weights: Array.from(theta), objective: value, gradient: gmax(), iterations };
}
