// The one seeded PRNG of cramlab (mem init, random text, training batches and inits): results do
// not depend on tfjs's RNG or on the backend.

/** mulberry32: uniform floats in [0, 1) from a 32-bit seed; the same seed gives the same stream everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n normal samples · scale (Box–Muller: two uniforms give two normals), from `rand`'s stream. */
export function normals(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand())); // 1 - u in (0, 1]: log stays finite
    const th = 2 * Math.PI * rand();
    out[i] = r * Math.cos(th) * scale;
    if (i + 1 < n) out[i + 1] = r * Math.sin(th) * scale;
  }
  return out;
}

/** n standard normal samples · scale from a seed (the mem init's randn). */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  return normals(mulberry32(seed), n, scale);
}
