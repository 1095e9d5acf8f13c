// Small seeded random numbers, independent of the tfjs backend, so a run is reproducible anywhere.

import { mulberry32 } from '../random';

export { mulberry32 };

/** A generator for one (seed, stream) pair: e.g. the batch of step s is stream s. */
export function rngFor(seed: number, stream: number): () => number {
  return mulberry32(Math.imul(seed ^ 0x9e3779b9, 2654435761) + Math.imul(stream + 1, 40503));
}

/** n standard-normal samples (Box–Muller) scaled by std. */
export function normals(rand: () => number, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - rand();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    const th = 2 * Math.PI * rand();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}
