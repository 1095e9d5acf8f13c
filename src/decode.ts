// Back again: greedy generation from [mem] vectors alone (after the text's first token, which the
// authors' loss never predicts), and a diff against the original ids.
import * as tf from '@tensorflow/tfjs-core';
import { greedyGenerate } from './generate';
import type { CausalLM } from './models/types';
import type { Tokenizer } from './io/tokenizer';

export interface DecodeInput {
  /** K·memDim values, row-major [K, memDim]. */
  vectors: Float32Array;
  K: number;
  /** Token count of the crammed text, first token included: N-1 tokens are generated. */
  tokens: number;
  /** The text's first token (BOS for most tokenizers). */
  firstId: number;
}

export class DecodeError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'DecodeError';
  }
}

/** The ids [firstId, ...N-1 greedy tokens] that the mem vectors make the model write. */
export async function decode(
  model: CausalLM,
  mem: DecodeInput,
  tokenizer?: Tokenizer,
): Promise<{ ids: number[]; text?: string }> {
  const d = model.info.memDim;
  if (!Number.isInteger(mem.K) || mem.K < 1) throw new DecodeError(`K must be a positive integer, got ${mem.K}`);
  if (mem.vectors.length !== mem.K * d)
    throw new DecodeError(`${mem.vectors.length} mem values do not make ${mem.K} vectors of width ${d} (wrong model?)`);
  if (!Number.isInteger(mem.tokens) || mem.tokens < 1)
    throw new DecodeError(`token count must be a positive integer, got ${mem.tokens}`);
  if (!Number.isInteger(mem.firstId) || mem.firstId < 0 || mem.firstId >= model.info.vocabSize)
    throw new DecodeError(`first token id ${mem.firstId} is outside the vocabulary`);
  if (mem.K + mem.tokens > model.info.maxPositions)
    throw new DecodeError(
      `${mem.tokens} tokens + ${mem.K} mem vectors exceed the model's context of ${model.info.maxPositions}`,
    );
  const prefix = tf.tensor2d(mem.vectors, [mem.K, d]);
  try {
    // No early stop at EOS: the stored count says how long the text is.
    const out = await greedyGenerate(model, [mem.firstId], { prefix, maxNewTokens: mem.tokens - 1, eosTokenIds: [] });
    const ids = [mem.firstId, ...out];
    return { ids, text: tokenizer?.decode(ids) };
  } finally {
    prefix.dispose();
  }
}

export interface IdDiff {
  equal: boolean;
  /** Index of the first differing token, -1 when equal. */
  firstMismatch: number;
  /** Per position of the longer sequence: do both have the same id there. */
  match: boolean[];
  matched: number;
}

export function diffIds(original: number[], decoded: number[]): IdDiff {
  const n = Math.max(original.length, decoded.length);
  const match = Array.from(
    { length: n },
    (_, i) => i < original.length && i < decoded.length && original[i] === decoded[i],
  );
  const firstMismatch = match.indexOf(false);
  return { equal: firstMismatch < 0, firstMismatch, match, matched: match.filter(Boolean).length };
}

/** Text view of a diff: matching tokens as they are, mismatches as [-original-]{+decoded+}. */
export function formatDiff(tokenizer: Tokenizer, original: number[], decoded: number[]): string {
  const a = tokenizer.tokenStrings(original);
  const b = tokenizer.tokenStrings(decoded);
  const { match } = diffIds(original, decoded);
  return match
    .map((ok, i) => (ok ? a[i] : `${i < a.length ? `[-${a[i]}-]` : ''}${i < b.length ? `{+${b[i]}+}` : ''}`))
    .join('');
}
