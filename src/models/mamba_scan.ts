// Mamba's selective scan, two ways that compute the same numbers.
//   h_t = dA_t ⊙ h_{t-1} + dBu_t          (h, dA, dBu: [B, I, N] per time step; h_{-1} = 0)
//   y_t = Σ_n h_t[:, :, n] · C_t[:, n]     ([B, I])
// Inputs: dA = exp(Δ·A) and dBu = Δ·B·x, both [B, T, I, N]; C [B, T, N]. Output y [B, T, I].
import * as tf from '@tensorflow/tfjs-core';

export type SelectiveScan = (dA: tf.Tensor4D, dBu: tf.Tensor4D, C: tf.Tensor3D) => tf.Tensor3D;

/** The plain recurrence, one time step at a time (HF's slow_forward): the reference. */
export const selectiveScanSequential: SelectiveScan = (dA, dBu, C) =>
  tf.tidy(() => {
    const [B, T, I, N] = dA.shape;
    const at = (x: tf.Tensor, t: number, shape: number[]) => tf.reshape(tf.slice(x, [0, t], [-1, 1]), shape);
    let h: tf.Tensor = tf.zeros([B, I, N]);
    const ys: tf.Tensor[] = [];
    for (let t = 0; t < T; t++) {
      h = tf.add(tf.mul(at(dA, t, [B, I, N]), h), at(dBu, t, [B, I, N]));
      ys.push(tf.sum(tf.mul(h, at(C, t, [B, 1, N])), -1)); // [B, I]
    }
    return tf.stack(ys, 1) as tf.Tensor3D;
  });

/**
 * Inclusive scan of the pairs (a_t, b_t) under (a1, b1)∘(a2, b2) = (a1·a2, a2·b1 + b2) along axis 1
 * of [R, L, C] tensors, Hillis-Steele style: log2(L) rounds of whole-tensor ops instead of L small ones.
 * Returns (Π a, h) where h_t is the recurrence h_t = a_t·h_{t-1} + b_t started from 0.
 */
export function associativeScan(a: tf.Tensor3D, b: tf.Tensor3D): { a: tf.Tensor3D; b: tf.Tensor3D } {
  const L = a.shape[1];
  // Shift right by k along time, filling with the identity (a = 1, b = 0).
  const shift = (x: tf.Tensor3D, k: number, fill: number) => tf.pad(tf.slice(x, [0, 0, 0], [-1, L - k, -1]), [[0, 0], [k, 0], [0, 0]], fill);
  for (let k = 1; k < L; k *= 2) {
    b = tf.add(tf.mul(a, shift(b, k, 0)), b);
    a = tf.mul(a, shift(a, k, 1));
  }
  return { a, b };
}

/**
 * Two-level log-depth scan: an associative scan inside chunks of `chunk` steps, another over the
 * chunk ends (the state carried into each chunk), then h = local h + (decay since chunk start) · carry.
 * Work is T·log2(chunk) elementwise products; the op count is O(log T), which is what tfjs pays for.
 */
export function selectiveScanChunked(chunk = 32): SelectiveScan {
  return (dA, dBu, C) =>
    tf.tidy(() => {
      const [B, T, I, N] = dA.shape;
      const L = Math.min(chunk, T);
      const nC = Math.ceil(T / L);
      const pad = nC * L - T;
      // [B, T, I, N] → [B·nC, L, I·N], padding the tail with identity steps.
      const chunked = (x: tf.Tensor, fill: number) => {
        const padded = pad ? tf.pad(x, [[0, 0], [0, pad], [0, 0], [0, 0]], fill) : x;
        return tf.reshape(padded, [B * nC, L, I * N]) as tf.Tensor3D;
      };
      const local = associativeScan(chunked(dA, 1), chunked(dBu, 0));
      let h = local.b;
      if (nC > 1) {
        // State at the end of each chunk, then the state entering chunk c = the end state of chunk c-1.
        const ends = (x: tf.Tensor3D) => tf.reshape(tf.slice(x, [0, L - 1, 0], [-1, 1, -1]), [B, nC, I * N]) as tf.Tensor3D;
        const carried = associativeScan(ends(local.a), ends(local.b)).b;
        const carryIn = tf.pad(tf.slice(carried, [0, 0, 0], [-1, nC - 1, -1]), [[0, 0], [1, 0], [0, 0]]);
        h = tf.add(h, tf.mul(local.a, tf.reshape(carryIn, [B * nC, 1, I * N])));
      }
      const states = tf.slice(tf.reshape(h, [B, nC * L, I, N]), [0, 0, 0, 0], [-1, T, -1, -1]);
      return tf.sum(tf.mul(states, tf.expandDims(C, 2)), -1) as tf.Tensor3D;
    });
}
