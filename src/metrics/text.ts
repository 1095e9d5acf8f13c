// What a crammed text measures: how much the [mem] vectors tell the model about the text.
//   CE(text | mem) vs CE(text): both over the N-1 shifted predictions, total and per prediction
//   information gain = CE without mem − CE with mem      (our convention: at the kept best mem)
//   token gain       = correct greedy predictions with mem − without
//   compression      = N / K tokens per vector
// The authors' notebooks instead total the losses as mean loss × N in nats, with the smallest loss
// seen during the optimisation as "with mem" (np.min(losses)): kept alongside as paper*.
import * as tf from '@tensorflow/tfjs-core';
import type { CramResult } from '../cram/result';
import type { CausalLM } from '../models/types';
import { scoreText, type TextScore } from '../score';
import { textBits, type TextBits } from './bits';
import { exactness, type Exactness } from './exactness';

const LN2 = Math.LN2;

export interface CrossEntropy {
  totalNats: number;
  perTokenNats: number;
  totalBits: number;
  perTokenBits: number;
}

export interface TextMetrics {
  /** Text id (sample id, file name, …) when known. */
  id?: string;
  N: number;
  K: number;
  status: string;
  stepsToBest: number;
  steps: number;
  seconds: number;
  bestAccuracy: number;
  decoded: boolean;
  correctWithMem: number;
  correctWithoutMem: number;
  tokenGain: number;
  ceWithoutMem: CrossEntropy;
  /** At the best mem (the vectors cram keeps). */
  ceWithMem: CrossEntropy;
  infoGainNats: number;
  infoGainBits: number;
  compression: number;
  /** The authors' totals: mean loss × N, natural log, "with mem" = smallest loss seen. */
  paperCeWithoutMemNats: number;
  paperCeWithMemNats: number;
  paperInfoGainNats: number;
  /** Greedy horizon, margins and exactness per storage precision of the best mem (exactness.ts). */
  exactness?: Exactness;
  /** The record's bits: vectors at the precisions that decode exactly vs UTF-8, gzip/brotli/xz, arithmetic code. */
  bits?: TextBits;
}

export function crossEntropy(totalNats: number, predictions: number): CrossEntropy {
  return {
    totalNats,
    perTokenNats: totalNats / predictions,
    totalBits: totalNats / LN2,
    perTokenBits: totalNats / LN2 / predictions,
  };
}

/** Metrics from a cram result and the two scores (without mem, and with the best mem). */
export function textMetrics(r: CramResult, withoutMem: TextScore, withMem: TextScore, id?: string): TextMetrics {
  const n = r.tokens - 1;
  const ceWithout = crossEntropy(withoutMem.totalNats, n);
  const ceWith = crossEntropy(withMem.totalNats, n);
  const paperWithout = (withoutMem.totalNats / n) * r.tokens;
  const paperWith = r.minLoss * r.tokens;
  return {
    id,
    N: r.tokens,
    K: r.K,
    status: r.status,
    stepsToBest: r.stepsToBest,
    steps: r.steps,
    seconds: r.seconds,
    bestAccuracy: r.bestAccuracy,
    decoded: r.bestCorrect === n,
    correctWithMem: r.bestCorrect,
    correctWithoutMem: withoutMem.correct,
    tokenGain: r.bestCorrect - withoutMem.correct,
    ceWithoutMem: ceWithout,
    ceWithMem: ceWith,
    infoGainNats: ceWithout.totalNats - ceWith.totalNats,
    infoGainBits: ceWithout.totalBits - ceWith.totalBits,
    compression: r.tokens / r.K,
    paperCeWithoutMemNats: paperWithout,
    paperCeWithMemNats: paperWith,
    paperInfoGainNats: paperWithout - paperWith,
  };
}

export interface MeasureOptions {
  /** What the ids spell: with it the record gets its bits (UTF-8, gzip/brotli/xz, arithmetic code). */
  text?: string;
}

/**
 * Score a cram result: the text alone (or `without`, that score computed before) and behind its best mem,
 * and how exactly the best mem gives the text back (greedy, margins, per storage precision).
 */
export async function measure(
  model: CausalLM,
  ids: number[],
  r: CramResult,
  id?: string,
  without?: TextScore,
  opts: MeasureOptions = {},
): Promise<TextMetrics> {
  if (ids.length !== r.tokens)
    throw new Error(`measure: the result is for ${r.tokens} tokens but ${ids.length} ids were given`);
  without ??= await scoreText(model, ids);
  const mem = tf.tensor2d(r.bestMem, [r.K, model.info.memDim]);
  let m: TextMetrics;
  try {
    m = textMetrics(r, without, await scoreText(model, ids, mem), id);
  } finally {
    mem.dispose();
  }
  m.exactness = await exactness(model, ids, r.bestMem, r.K);
  if (opts.text !== undefined) m.bits = await textBits(model, ids, opts.text, r.K, m.exactness);
  return m;
}
