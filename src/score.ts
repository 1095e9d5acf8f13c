// How well a model predicts a text on its own: cross-entropy per token and greedy accuracy.
import * as tf from '@tensorflow/tfjs-core';
import { prefixedEmbeds } from './generate';
import type { CausalLM } from './models/types';
import { ModelError } from './models/types';

/**
 * The shifted next-token objective, the one home of it (cram's loss, score's CE): text position
 * K + t predicts labels[b, t] = ids_b[t + 1]; the logit at the last mem position is not scored.
 * ce [B, P] in nats, pred [B, P] the greedy (argmax) predictions, P = labels' width.
 */
export function shiftedCE(logits: tf.Tensor3D, K: number, labels: tf.Tensor2D): { ce: tf.Tensor2D; pred: tf.Tensor2D } {
  return tf.tidy(() => {
    const [B, P] = labels.shape;
    const text = tf.slice(logits, [0, K, 0], [B, P, -1]);
    const logp = tf.logSoftmax(text);
    const target = tf.oneHot(labels, logp.shape[2]);
    return { ce: tf.neg(tf.sum(tf.mul(logp, target), -1)) as tf.Tensor2D, pred: tf.argMax(text, -1) as tf.Tensor2D };
  });
}

export interface TextScore {
  /** Tokens in the text (N); N-1 of them are predicted. */
  tokens: number;
  /** -log p(token t+1 | ≤ t) in nats, for t = 0..N-2. */
  ceNats: number[];
  totalNats: number;
  totalBits: number;
  bitsPerToken: number;
  /** Greedy next-token predictions that are right. */
  correct: number;
  accuracy: number;
  predictions: number[];
}

/** Score `ids` after an optional prefix ([mem] vectors), with the authors' shifted convention. */
export async function scoreText(model: CausalLM, ids: number[], prefix?: tf.Tensor2D): Promise<TextScore> {
  if (ids.length < 2) throw new ModelError('a text needs at least 2 tokens to be scored');
  const K = prefix ? prefix.shape[0] : 0;
  if (K + ids.length > model.info.maxPositions) {
    throw new ModelError(
      `text of ${ids.length} tokens${K ? ` plus ${K} mem vectors` : ''} is longer than the model's context (${model.info.maxPositions})`,
    );
  }
  const [ce, pred] = tf.tidy(() => {
    const logits = model.forward(prefixedEmbeds(model, ids, prefix));
    const { ce, pred } = shiftedCE(logits, K, tf.tensor2d([ids.slice(1)], [1, ids.length - 1], 'int32'));
    return [tf.reshape(ce, [-1]), tf.reshape(pred, [-1])];
  });
  const ceNats = Array.from((await ce.data()) as Float32Array);
  const predictions = Array.from((await pred.data()) as Int32Array);
  ce.dispose();
  pred.dispose();
  // Without [mem] a non-finite CE is the model's own fault (finite but huge weights overflow): an error,
  // never a NaN score. Behind a mem it is that mem's divergence, which cram reports as its status.
  const bad = prefix ? -1 : ceNats.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0)
    throw new ModelError(
      `the model's cross-entropy is ${ceNats[bad]} at text token ${bad + 1} (predicting id ${ids[bad + 1]}): its activations overflow there (weights too large or damaged?)`,
    );
  const correct = predictions.reduce((n, p, i) => n + (p === ids[i + 1] ? 1 : 0), 0);
  const totalNats = ceNats.reduce((a, b) => a + b, 0);
  return {
    tokens: ids.length,
    ceNats,
    totalNats,
    totalBits: totalNats / Math.LN2,
    bitsPerToken: totalNats / Math.LN2 / (ids.length - 1),
    correct,
    accuracy: correct / (ids.length - 1),
    predictions,
  };
}

/** Longest prefix of `ids` (first token included) whose every next token `mem` makes the model predict. */
export async function heldPrefix(model: CausalLM, ids: number[], mem: Float32Array, K: number): Promise<number> {
  const prefix = tf.tensor2d(mem, [K, model.info.memDim]);
  try {
    const s = await scoreText(model, ids, prefix);
    const miss = s.predictions.findIndex((p, i) => p !== ids[i + 1]);
    return miss < 0 ? ids.length : miss + 1;
  } finally {
    prefix.dispose();
  }
}
