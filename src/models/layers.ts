// The few building blocks the architectures share, written out so the math is visible.
// Shapes: B batch, T time, H heads, D head size. Linear weights are HF's [out, in] (y = x W^T + b).
import * as tf from '@tensorflow/tfjs-core';
import '../backend'; // registers gradients and chained ops for every model user

/** y = x W^T + b for x [..., in], W [out, in]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const inDim = shape[shape.length - 1];
  let y: tf.Tensor = tf.matMul(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, w as tf.Tensor2D, false, true);
  if (b) y = tf.add(y, b);
  return tf.reshape(y, [...shape.slice(0, -1), w.shape[0]]);
}

export function rmsNorm(x: tf.Tensor, weight: tf.Tensor | undefined, eps: number): tf.Tensor {
  // n = x·r with r = 1/sqrt(mean(x²) + eps). Backward written out (5 ops instead of autodiff's ~12):
  //   dx = r·(dn - n·mean(dn·n))
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xIn), -1, true), eps));
    const n = tf.mul(xIn, r);
    save([r, n]); // kept for the backward (customGrad disposes everything else)
    return {
      value: n,
      gradFunc: (dn: tf.Tensor, [rs, ns]: tf.Tensor[]) =>
        tf.mul(rs, tf.sub(dn, tf.mul(ns, tf.mean(tf.mul(dn, ns), -1, true)))),
    };
  });
  const y = f(x);
  return weight ? tf.mul(y, weight) : y;
}

export function layerNorm(
  x: tf.Tensor,
  weight: tf.Tensor | undefined,
  bias: tf.Tensor | undefined,
  eps: number,
): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), -1, true);
  let y = tf.mul(centered, tf.rsqrt(tf.add(variance, eps)));
  if (weight) y = tf.mul(y, weight);
  if (bias) y = tf.add(y, bias);
  return y;
}

export const silu = (x: tf.Tensor): tf.Tensor => tf.mul(x, tf.sigmoid(x));

/** Exact GELU, 0.5·x·(1 + erf(x/√2)), as torch's default. */
export const geluExact = (x: tf.Tensor): tf.Tensor =>
  tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));

/** Rotary inverse frequencies in float32 arithmetic, as HF computes them: 1 / base^(2i/dim). */
export function ropeInvFreq(dim: number, base: number): Float32Array {
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = Math.fround(1 / Math.fround(Math.pow(base, Math.fround((2 * i) / dim))));
  return out;
}

/** Llama 3.x frequency scaling (rope_scaling.rope_type = "llama3"): long wavelengths divided by factor, a smooth band between. */
export function llama3ScaleInvFreq(
  invFreq: Float32Array,
  s: { factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number },
): Float32Array {
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  return invFreq.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth =
      (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** cos/sin tables [T, rotDim] in HF's rotate-half layout: cat(freqs, freqs).
 *  Built once per power-of-two capacity and sliced, so the cache stays small while T grows. */
const ropeCache = new Map<string, { cos: tf.Tensor2D; sin: tf.Tensor2D }>();
const capacityFor = (T: number): number => Math.max(64, 2 ** Math.ceil(Math.log2(T)));
export function ropeTables(T: number, invFreq: Float32Array): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const cap = capacityFor(T);
  const key = `${cap}:${invFreq.join(',')}`;
  let hit = ropeCache.get(key);
  if (!hit) {
    const half = invFreq.length;
    const cos = new Float32Array(cap * 2 * half);
    const sin = new Float32Array(cap * 2 * half);
    for (let t = 0; t < cap; t++) {
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(t * invFreq[i]);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        cos[t * 2 * half + i] = cos[t * 2 * half + half + i] = c;
        sin[t * 2 * half + i] = sin[t * 2 * half + half + i] = s;
      }
    }
    hit = { cos: tf.keep(tf.tensor2d(cos, [cap, 2 * half])), sin: tf.keep(tf.tensor2d(sin, [cap, 2 * half])) };
    ropeCache.set(key, hit);
  }
  if (T === cap) return hit;
  return { cos: tf.slice(hit.cos, [0, 0], [T, -1]), sin: tf.slice(hit.sin, [0, 0], [T, -1]) };
}

/** Rotate the first rotDim dims of x [B, H, T, D] (rotate-half pairs j and j + rotDim/2); the rest pass through. */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor4D {
  const D = x.shape[3];
  const rotDim = cos.shape[1];
  const half = rotDim / 2;
  const xRot = rotDim === D ? x : tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, rotDim]);
  const x1 = tf.slice(xRot, [0, 0, 0, 0], [-1, -1, -1, half]);
  const x2 = tf.slice(xRot, [0, 0, 0, half], [-1, -1, -1, half]);
  const rotated = tf.concat([tf.neg(x2), x1], 3);
  const out = tf.add(tf.mul(xRot, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
  return rotDim === D ? out : tf.concat([out, tf.slice(x, [0, 0, 0, rotDim], [-1, -1, -1, D - rotDim])], 3);
}

/** Additive causal mask [T, T]: 0 on and below the diagonal, a large negative number above.
 *  Cached per power-of-two capacity and sliced (the top-left block of a causal mask is causal). */
const maskCache = new Map<number, tf.Tensor2D>();
export function causalMask(T: number): tf.Tensor2D {
  const cap = capacityFor(T);
  let m = maskCache.get(cap);
  if (!m) {
    const data = new Float32Array(cap * cap);
    for (let i = 0; i < cap; i++) for (let j = i + 1; j < cap; j++) data[i * cap + j] = -1e9;
    m = tf.keep(tf.tensor2d(data, [cap, cap]));
    maskCache.set(cap, m);
  }
  return T === cap ? m : tf.slice(m, [0, 0], [T, T]);
}

/** [B, T, H·D] → [B, H, T, D] */
export function splitHeads(x: tf.Tensor, H: number): tf.Tensor4D {
  const [B, T, HD] = x.shape;
  return tf.transpose(tf.reshape(x, [B, T, H, HD / H]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** [B, H, T, D] → [B, T, H·D] */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [B, H, T, D] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B, T, H * D]) as tf.Tensor3D;
}

/** Grouped-query attention: key/value head j serves query heads j·rep .. (j+1)·rep-1 (HF repeat_kv).
 *  Done with tile, not gather: gather's gradient needs UnsortedSegmentSum, which wasm lacks. */
export function repeatKv(x: tf.Tensor4D, rep: number): tf.Tensor4D {
  if (rep === 1) return x;
  const [B, Hkv, T, D] = x.shape;
  // [B·Hkv, 1, T, D] tiled to [B·Hkv, rep, T, D] (rank 4: tfjs has no rank-5 tile gradient).
  return tf.reshape(tf.tile(tf.reshape(x, [B * Hkv, 1, T, D]), [1, rep, 1, 1]), [B, Hkv * rep, T, D]) as tf.Tensor4D;
}

/** softmax(q k^T · scale + causal mask) v for q, k, v [B, H, T, D]. */
export function causalAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, scale: number): tf.Tensor4D {
  const T = q.shape[2];
  const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), scale), causalMask(T));
  return tf.matMul(tf.softmax(scores), v) as tf.Tensor4D;
}
