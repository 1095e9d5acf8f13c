// Mamba's selective scan, two ways that compute the same numbers.
//   h_t = dA_t ⊙ h_{t-1} + dBu_t          (h, dA, dBu: [B, I, N] per time step; h_{-1} = 0)
//   y_t = Σ_n h_t[:, :, n] · C_t[:, n]     ([B, I])
// Inputs: dA = exp(Δ·A) and dBu = Δ·B·x, both [B, T, I, N]; C [B, T, N]. Output y [B, T, I].
import * as tf from '@tensorflow/tfjs-core';

export type SelectiveScan = (dA: tf.Tensor4D, dBu: tf.Tensor4D, C: tf.Tensor3D) => tf.Tensor3D;

/** The plain recurrence, one time step at a time (HF's slow_forward): the reference. */
export const selectiveScanSequential: SelectiveScan = (dA, dBu, C) =>
  tf.tidy(() => {
    const [B, , I, N] = dA.shape;
    // Time first, then unstack: slices along the leading axis are contiguous copies (fast in wasm),
    // and unstack's gradient is one stack, where a slice per step would pad back to full size each.
    const dAs = tf.unstack(tf.transpose(dA, [1, 0, 2, 3]));
    const dBus = tf.unstack(tf.transpose(dBu, [1, 0, 2, 3]));
    const Cs = tf.unstack(tf.transpose(C, [1, 0, 2])).map((c) => tf.reshape(c, [B, 1, N]));
    let h: tf.Tensor = tf.zeros([B, I, N]);
    const ys: tf.Tensor[] = [];
    for (let t = 0; t < dAs.length; t++) {
      h = tf.add(tf.mul(dAs[t], h), dBus[t]);
      ys.push(tf.sum(tf.mul(h, Cs[t]), -1)); // [B, I]
    }
    return tf.stack(ys, 1) as tf.Tensor3D;
  });

/**
 * Inclusive scan of the pairs (a_t, b_t) under (a1, b1)∘(a2, b2) = (a1·a2, a2·b1 + b2) along the
 * leading (time) axis of [L, X] tensors, Hillis-Steele style: log2(L) rounds of whole-tensor ops
 * instead of L small ones. Returns (Π a, h) where h_t is the recurrence h_t = a_t·h_{t-1} + b_t from 0.
 * Time is the leading axis so every shift is one contiguous copy.
 */
export function associativeScan(a: tf.Tensor2D, b: tf.Tensor2D): { a: tf.Tensor2D; b: tf.Tensor2D } {
  const [L, X] = a.shape;
  // Shift down by k rows, filling with the identity element (a = 1, b = 0).
  const shift = (x: tf.Tensor2D, k: number, fill: number) =>
    tf.concat([tf.fill([k, X], fill), tf.slice(x, [0, 0], [L - k, X])], 0);
  for (let k = 1; k < L; k *= 2) {
    b = tf.add(tf.mul(a, shift(b, k, 0)), b);
    a = tf.mul(a, shift(a, k, 1));
  }
  return { a, b };
}

/**
 * Two-level log-depth scan: an associative scan inside chunks of `chunk` steps (all chunks at once),
 * another over the chunk ends (the state carried into each chunk), then
 * h = local h + (decay since the chunk start) · carry. Work is T·log2(chunk) elementwise products,
 * the op count O(log T): tfjs pays per op, so this beats T small steps by a wide margin.
 */
export function selectiveScanChunked(chunk = 32): SelectiveScan {
  return (dA, dBu, C) =>
    tf.tidy(() => {
      const [B, T, I, N] = dA.shape;
      const L = Math.min(chunk, T);
      const nC = Math.ceil(T / L);
      const X = B * I * N;
      // [B, T, I, N] → time first [T, X] → identity steps appended up to nC·L → [L, nC·X] (step within chunk first).
      const layout = (x: tf.Tensor, fill: number) => {
        let t = tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [T, X]);
        if (nC * L > T) t = tf.concat([t, tf.fill([nC * L - T, X], fill)], 0);
        return tf.reshape(tf.transpose(tf.reshape(t, [nC, L, X]), [1, 0, 2]), [L, nC * X]) as tf.Tensor2D;
      };
      const local = associativeScan(layout(dA, 1), layout(dBu, 0));
      let h: tf.Tensor = local.b;
      if (nC > 1) {
        // End state of each chunk from the start, then the state entering chunk c = the end state of chunk c-1.
        const ends = (x: tf.Tensor2D) => tf.reshape(tf.slice(x, [L - 1, 0], [1, -1]), [nC, X]) as tf.Tensor2D;
        const carried = associativeScan(ends(local.a), ends(local.b)).b;
        const carryIn = tf.concat([tf.zeros([1, X]), tf.slice(carried, [0, 0], [nC - 1, X])], 0);
        h = tf.add(h, tf.mul(local.a, tf.reshape(carryIn, [1, nC * X])));
      }
      // Back to time first [T, B, I, N]; y_t = C_t · h_t over the state axis, then [B, T, I].
      const states = tf.slice(
        tf.reshape(tf.transpose(tf.reshape(h, [L, nC, X]), [1, 0, 2]), [nC * L, B, I, N]),
        [0, 0, 0, 0],
        [T, -1, -1, -1],
      );
      const y = tf.sum(tf.mul(states, tf.reshape(tf.transpose(C, [1, 0, 2]), [T, B, 1, N])), -1);
      return tf.transpose(y, [1, 0, 2]) as tf.Tensor3D;
    });
}
