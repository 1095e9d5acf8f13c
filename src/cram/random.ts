// A small seeded PRNG, so a cram run's init does not depend on tfjs's RNG or backend.
// mulberry32 for uniforms, Box-Muller for normals.

import { mulberry32 } from '../random';

export { mulberry32 };

/** n standard normal samples (Box-Muller: two uniforms give two normals). */
export function randn(n: number, seed: number): Float64Array {
  const u = mulberry32(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - u(); // (0, 1]: log stays finite
    const u2 = u();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
