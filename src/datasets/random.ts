// Random text, as in the authors' --shuffled runs: words drawn uniformly from a 100k-word
// vocabulary, 5·N of them joined by spaces, tokenized and truncated to N tokens (BOS counted).
// Their N is itself drawn uniformly from [2, N] per text (np.random.randint(2, N + 1)).
import type { Tokenizer } from '../io/tokenizer';

import { mulberry32 } from '../random';

/** Integer uniform in [lo, hi] (both inclusive). */
export function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** The stream for text `index` of a seeded set: text i is the same whatever `count` is asked for. */
export function textRng(seed: number, index: number): () => number {
  return mulberry32((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

export interface RandomText {
  text: string;
  ids: number[];
  /** The length the text was drawn for (maxTokens, or the per-text draw from [2, maxTokens]). */
  length: number;
}

/** One random-word text of `maxTokens` tokens (fewer only if the tokenizer packs 5 words into < 1 token each, which none does). */
export function randomWordText(
  words: readonly string[],
  tokenizer: Tokenizer,
  maxTokens: number,
  rng: () => number,
  randomLength = false,
): RandomText {
  if (words.length === 0) throw new Error('random text needs a non-empty word list');
  if (!Number.isInteger(maxTokens) || maxTokens < (randomLength ? 2 : 1)) {
    throw new Error(`random text needs maxTokens >= ${randomLength ? 2 : 1} (an integer), got ${maxTokens}`);
  }
  const length = randomLength ? randInt(rng, 2, maxTokens) : maxTokens;
  const picked: string[] = [];
  for (let i = 0; i < 5 * length; i++) picked.push(words[Math.floor(rng() * words.length)]);
  const text = picked.join(' ');
  return { text, ids: tokenizer.encode(text).slice(0, length), length };
}
