// What a vector really holds, asked the strict way (the one home of it):
//   teacher-forced accuracy  argmax right at each of the N-1 positions, given the true prefix
//   greedy horizon           longest prefix (first token included) that greedy decoding from the
//                            vectors alone writes exactly, through the KV-cached decoder (generate.ts)
//   margin                   target logit − best other logit per predicted position (< 0 where wrong);
//                            the minimum says how much noise the vectors survive
//   per storage precision    the same after rounding the vectors (precision.ts): exact or not, horizon
// Cheap by construction: a decode stops at the first mismatch (its first chunk ends where teacher
// forcing first goes wrong, which is where greedy diverges unless float noise flips a near-tie), and a
// rounded vector equal bit for bit to one already measured reuses that measurement.
import * as tf from '@tensorflow/tfjs-core';
import { greedyGenerate, prefixedEmbeds } from '../generate';
import type { CausalLM } from '../models/types';
import { PRECISIONS, roundTo, sameBits, vectorBits, type Precision } from '../precision';

export interface AtPrecision {
  /** Greedy decoding from the rounded vectors gives the whole text back. */
  exact: boolean;
  /** Tokens (first included) greedy decoding reproduces, 1..N. */
  horizon: number;
  /** Teacher-forced accuracy over the N-1 predictions. */
  accuracy: number;
  minMargin: number;
  /** K·d·bits (+ a float32 scale per vector for int8/int4). */
  bits: number;
}

export interface Exactness {
  /** Teacher-forced accuracy of the vectors as optimised (fp32). */
  teacherForced: number;
  greedyHorizon: number;
  greedyExact: boolean;
  /** Smallest margin over the predicted positions (fp32). */
  minMargin: number;
  precisions: Record<Precision, AtPrecision>;
  /** Fewest bits among the precisions that still decode exactly (null: none does). */
  exactBits: number | null;
}

export interface Margins {
  /** Target logit − best other logit, per predicted position t = 0..N-2 (predicting ids[t+1]). */
  margins: Float32Array;
  /** Argmax per predicted position. */
  predictions: Int32Array;
}

/** One forward of [mem; ids]: each prediction's margin and argmax. */
export async function margins(model: CausalLM, ids: number[], mem: Float32Array, K: number): Promise<Margins> {
  const prefix = tf.tensor2d(mem, [K, model.info.memDim]);
  const [m, p] = tf.tidy(() => {
    const logits = model.forward(prefixedEmbeds(model, ids, prefix));
    const text = tf.reshape(tf.slice(logits, [0, K, 0], [1, ids.length - 1, -1]), [ids.length - 1, -1]) as tf.Tensor2D;
    const hot = tf.cast(tf.oneHot(tf.tensor1d(ids.slice(1), 'int32'), text.shape[1]), 'bool');
    const target = tf.sum(tf.where(hot, text, tf.zerosLike(text)), 1);
    const other = tf.max(tf.where(hot, tf.fill(text.shape, -Infinity), text), 1);
    return [tf.sub(target, other), tf.argMax(text, 1)];
  });
  prefix.dispose();
  try {
    return { margins: (await m.data()) as Float32Array, predictions: (await p.data()) as Int32Array };
  } finally {
    tf.dispose([m, p]);
  }
}

/** Tokens (first included) that predictions reproduce before the first miss: N when none. */
export function heldBy(ids: number[], predictions: ArrayLike<number>): number {
  for (let t = 0; t + 1 < ids.length; t++) if (predictions[t] !== ids[t + 1]) return t + 1;
  return ids.length;
}

/**
 * Longest prefix (first token included) greedy decoding from `mem` writes exactly, decoding no further
 * than its first mismatch: chunks from the held prefix, the first `guess` tokens long, doubling after.
 */
export async function greedyHorizon(
  model: CausalLM,
  ids: number[],
  mem: Float32Array,
  K: number,
  guess = ids.length,
): Promise<number> {
  const prefix = tf.tensor2d(mem, [K, model.info.memDim]);
  try {
    let held = 1;
    let chunk = Math.max(1, guess);
    while (held < ids.length) {
      const want = Math.min(chunk, ids.length - held);
      const out = await greedyGenerate(model, ids.slice(0, held), { prefix, maxNewTokens: want, eosTokenIds: [] });
      for (let j = 0; j < out.length; j++) if (out[j] !== ids[held + j]) return held + j;
      if (out.length < want) return held + out.length; // the context ran out
      held += out.length;
      chunk *= 2;
    }
    return held;
  } finally {
    prefix.dispose();
  }
}

const minOf = (a: Float32Array): number => a.reduce((m, x) => (x < m || Number.isNaN(x) ? x : m), Infinity);

async function atPrecision(model: CausalLM, ids: number[], mem: Float32Array, K: number): Promise<AtPrecision> {
  const bits = vectorBits(K, model.info.memDim, 'fp32');
  // fp16 overflows to ±Inf past 65504: such a vector decodes nothing (the model's sums turn NaN)
  if (!mem.every(Number.isFinite)) return { exact: false, horizon: 1, accuracy: 0, minMargin: -Infinity, bits };
  const m = await margins(model, ids, mem, K);
  const n = ids.length - 1;
  const held = heldBy(ids, m.predictions);
  const horizon = await greedyHorizon(model, ids, mem, K, held);
  const correct = m.predictions.reduce((c, p, t) => c + (p === ids[t + 1] ? 1 : 0), 0);
  return {
    exact: horizon === ids.length,
    horizon,
    accuracy: correct / n,
    minMargin: minOf(m.margins),
    bits,
  };
}

/** The exact answers for K vectors `mem` (K·memDim values) and the text `ids` they were crammed from. */
export async function exactness(
  model: CausalLM,
  ids: number[],
  mem: Float32Array,
  K: number,
  precisions: readonly Precision[] = PRECISIONS,
): Promise<Exactness> {
  const seen: { mem: Float32Array; r: AtPrecision }[] = [];
  const at = {} as Record<Precision, AtPrecision>;
  for (const p of ['fp32', ...precisions.filter((q) => q !== 'fp32')] as Precision[]) {
    const rounded = roundTo(mem, K, p);
    const twin = seen.find((s) => sameBits(s.mem, rounded));
    const r = twin ? twin.r : await atPrecision(model, ids, rounded, K);
    if (!twin) seen.push({ mem: rounded, r });
    at[p] = { ...r, bits: vectorBits(K, model.info.memDim, p) };
  }
  const exactBits = Object.values(at)
    .filter((a) => a.exact)
    .reduce<number | null>((b, a) => (b === null || a.bits < b ? a.bits : b), null);
  return {
    teacherForced: at.fp32.accuracy,
    greedyHorizon: at.fp32.horizon,
    greedyExact: at.fp32.exact,
    minMargin: at.fp32.minMargin,
    precisions: at,
    exactBits,
  };
}
