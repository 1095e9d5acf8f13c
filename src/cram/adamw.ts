// AdamW written out, with torch.optim.AdamW's arithmetic (torch 1.13 _single_tensor_adamw, no amsgrad):
//   p *= 1 - lr·wd                       (decoupled weight decay)
//   m  = b1·m + (1-b1)·g
//   v  = b2·v + (1-b2)·g²
//   p -= (lr / (1-b1^t)) · m / (sqrt(v)/sqrt(1-b2^t) + eps)      (eps outside the square root)
import * as tf from '@tensorflow/tfjs-core';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const AUTHORS_ADAMW: AdamWConfig = { lr: 1e-2, beta1: 0.9, beta2: 0.9, eps: 1e-8, weightDecay: 0.01 };

/** One AdamW update at step t (1-based). Returns new tensors; the caller disposes the old ones. */
export function adamwStep(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  t: number,
  c: AdamWConfig,
): { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  return tf.tidy(() => {
    const decayed = tf.mul(p, 1 - c.lr * c.weightDecay);
    const m2 = tf.add(tf.mul(m, c.beta1), tf.mul(g, 1 - c.beta1));
    const v2 = tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(g), 1 - c.beta2));
    const stepSize = c.lr / (1 - c.beta1 ** t);
    const denom = tf.add(tf.div(tf.sqrt(v2), Math.sqrt(1 - c.beta2 ** t)), c.eps);
    const p2 = tf.sub(decayed, tf.mul(tf.div(m2, denom), stepSize));
    return { p: p2, m: m2, v: v2 };
  });
}
