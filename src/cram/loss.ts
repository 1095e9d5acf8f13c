// The authors' objective for a batch of texts, each behind its own K [mem] vectors:
//   inputs = [mem_b ; embed(ids_b)]            (texts right-padded to the longest; causal, so padding
//                                               after a text never reaches its positions)
//   loss_b = mean over t < N_b-1 of CE(logits[b, K+t], ids_b[t+1])     (text positions only, shifted;
//                                               a weighted mean with a leading weight: schedule.ts)
//   total  = Σ_b loss_b                         (a sum, so each mem gets exactly its own gradient)
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../models/types';
import { shiftedCE } from '../score';
import { predictionWeights, SCHEDULE_DEFAULTS, type Schedule } from './schedule';

/** Constant tensors describing the texts of one batch (rebuilt only when the batch changes). */
export interface TextBatch {
  /** Token embeddings [B, L, memDim], L = longest text in the batch. */
  embeds: tf.Tensor3D;
  /** Next-token targets [B, L-1] int32 (0 where padded). */
  labels: tf.Tensor2D;
  /** 1 where a target is real, 0 where padded [B, L-1]. */
  mask: tf.Tensor2D;
  /** mask / (N_b - 1): turns a masked sum into each text's mean [B, L-1] (or weighted mean: schedule.ts). */
  weights: tf.Tensor2D;
  /** Number of scored predictions per text (N_b - 1). */
  predicted: number[];
}

export function makeBatch(model: CausalLM, texts: number[][], schedule: Schedule = SCHEDULE_DEFAULTS): TextBatch {
  const L = Math.max(...texts.map((t) => t.length)); // cram() checked that the batch fits (./memory.ts)
  return tf.tidy(() => {
    const B = texts.length;
    const ids = new Int32Array(B * L);
    const labels = new Int32Array(B * (L - 1));
    const mask = new Float32Array(B * (L - 1));
    const weights = new Float32Array(B * (L - 1));
    texts.forEach((t, b) => {
      ids.set(t, b * L);
      const w = predictionWeights(schedule, t.length - 1);
      for (let i = 0; i + 1 < t.length; i++) {
        labels[b * (L - 1) + i] = t[i + 1];
        mask[b * (L - 1) + i] = 1;
        weights[b * (L - 1) + i] = w[i];
      }
    });
    return {
      embeds: model.embed(tf.tensor2d(ids, [B, L], 'int32')),
      labels: tf.tensor2d(labels, [B, L - 1], 'int32'),
      mask: tf.tensor2d(mask, [B, L - 1]),
      weights: tf.tensor2d(weights, [B, L - 1]),
      predicted: texts.map((t) => t.length - 1),
    };
  });
}

export function disposeBatch(b: TextBatch): void {
  tf.dispose([b.embeds, b.labels, b.mask, b.weights]);
}

/**
 * Per-text mean CE [B] and held predictions [B] for mem [B, K, memDim]: right by argmax or, with
 * `margin` > 0, by at least that much (target logit − best other logit ≥ margin).
 */
export function batchLoss(
  model: CausalLM,
  mem: tf.Tensor3D,
  batch: TextBatch,
  margin = 0,
): { loss: tf.Tensor1D; correct: tf.Tensor1D } {
  return tf.tidy(() => {
    const K = mem.shape[1];
    const logits = model.forward(tf.concat([mem, batch.embeds], 1) as tf.Tensor3D);
    const { ce, pred } = shiftedCE(logits, K, batch.labels); // [B, L-1]
    const real = tf.greater(batch.mask, 0);
    const loss = tf.sum(tf.mul(tf.where(real, ce, tf.zerosLike(ce)), batch.weights), 1) as tf.Tensor1D;
    const hit = tf.logicalAnd(
      margin > 0 ? tf.greaterEqual(marginOf(logits, K, batch.labels), margin) : tf.equal(pred, batch.labels),
      real,
    );
    const correct = tf.sum(tf.cast(hit, 'float32'), 1) as tf.Tensor1D;
    return { loss, correct };
  });
}

/** Target logit − best other logit at each shifted text position [B, P] (P = labels' width). */
function marginOf(logits: tf.Tensor3D, K: number, labels: tf.Tensor2D): tf.Tensor2D {
  const [B, P] = labels.shape;
  const text = tf.slice(logits, [0, K, 0], [B, P, -1]);
  const hot = tf.cast(tf.oneHot(labels, text.shape[2]), 'bool');
  const target = tf.sum(tf.where(hot, text, tf.zerosLike(text)), -1);
  const other = tf.max(tf.where(hot, tf.fill(text.shape, -Infinity), text), -1);
  return tf.sub(target, other) as tf.Tensor2D;
}
