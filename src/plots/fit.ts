// Least-squares lines for the paper's fits (capacity vs K, compressed vs original CE).
import { mean } from '../math';

export { mean };

export interface LineFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination of the fit on its own points. */
  r2: number;
  n: number;
}

/** Ordinary least squares y ≈ slope·x + intercept. Needs two distinct x values. */
export function linearFit(xs: number[], ys: number[]): LineFit {
  if (xs.length !== ys.length) throw new Error(`linearFit: ${xs.length} x values but ${ys.length} y values`);
  const n = xs.length;
  if (n < 2) throw new Error(`linearFit: need at least 2 points, got ${n}`);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (ys[i] - my);
    syy += (ys[i] - my) ** 2;
  }
  if (sxx === 0) throw new Error('linearFit: all x values are equal; a line is not defined');
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { slope, intercept, r2, n };
}

export function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}
