// AdamW written out (Loshchilov & Hutter; torch.optim.AdamW's update), with global-norm clipping.
//   g ← g · min(1, clip / ‖g‖)
//   m ← β1 m + (1-β1) g          v ← β2 v + (1-β2) g²
//   p ← p (1 - lr·wd)            (decoupled decay: matrices only, not norm gains)
//   p ← p - lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps)
import * as tf from '@tensorflow/tfjs-core';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Max global gradient norm (0: no clipping). */
  clip: number;
}

export class AdamW {
  readonly m: tf.Variable[];
  readonly v: tf.Variable[];
  /** Steps taken so far (t in the bias corrections). */
  t = 0;

  constructor(
    readonly params: tf.Variable[],
    readonly cfg: AdamWConfig,
  ) {
    const zeros = (p: tf.Variable) => {
      const z = tf.zerosLike(p);
      const out = tf.variable(z, false);
      z.dispose();
      return out;
    };
    this.m = params.map(zeros);
    this.v = params.map(zeros);
  }

  /** One update from grads (same order as params); returns the global grad norm before clipping. */
  step(grads: tf.Tensor[], lr: number): tf.Scalar {
    this.t++;
    const { beta1, beta2, eps, weightDecay, clip } = this.cfg;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    return tf.tidy(() => {
      const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
      const scale = clip > 0 ? tf.minimum(1, tf.div(clip, tf.add(norm, 1e-6))) : tf.scalar(1);
      this.params.forEach((p, i) => {
        const g = tf.mul(grads[i], scale);
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const decayed = p.rank >= 2 ? tf.mul(p, 1 - lr * weightDecay) : p;
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
      return tf.keep(norm);
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** Linear warmup to `peak`, then cosine decay to `peak · minRatio` at `total`. */
export function cosineLr(step: number, total: number, warmup: number, peak: number, minRatio = 0.1): number {
  if (step < warmup) return (peak * (step + 1)) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
