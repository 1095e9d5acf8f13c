// Token streams and batches for training: the books train split only; the held-out chapters
// are scored, never trained on.
import { mobyDickSplit } from '../datasets/corpus';
import type { Tokenizer } from '../io/tokenizer';
import { rngFor } from './rng';

/** All chapters' tokens end to end, without specials (a window may cross a chapter break). */
export function tokenStream(tokenizer: Tokenizer, texts: string[]): Int32Array {
  const parts = texts.map((t) => tokenizer.encode(t, { addSpecialTokens: false }));
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bookStreams(tokenizer: Tokenizer): { train: Int32Array; heldOut: Int32Array; heldOutText: string } {
  const { train, heldOut } = mobyDickSplit();
  return {
    train: tokenStream(
      tokenizer,
      train.map((c) => c.text),
    ),
    heldOut: tokenStream(
      tokenizer,
      heldOut.map((c) => c.text),
    ),
    heldOutText: heldOut.map((c) => c.text).join(''),
  };
}

/**
 * Batch `step`: B rows of [BOS, w_0 .. w_{T-2}] at random offsets, a pure function of
 * (seed, step) so a resumed run sees exactly the batches it would have seen. Every row starts
 * with BOS because crammed texts do.
 */
export function batchAt(
  stream: Int32Array,
  bos: number,
  B: number,
  T: number,
  seed: number,
  step: number,
  bosProbability = 1,
): Int32Array {
  if (stream.length < T)
    throw new Error(`the training stream has ${stream.length} tokens, fewer than the sequence length ${T}`);
  const rand = rngFor(seed, step);
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const start = Math.floor(rand() * (stream.length - (T - 1)));
    // bosProbability < 1: some rows are plain windows, so position 0 carries content the model
    // must read (a row that always starts with BOS teaches it to ignore position 0, where [mem] goes).
    if (bosProbability >= 1 || rand() < bosProbability) {
      out[b * T] = bos;
      out.set(stream.subarray(start, start + T - 1), b * T + 1);
    } else out.set(stream.subarray(start, start + T), b * T);
  }
  return out;
}

/** Non-overlapping [BOS + T-1 tokens] windows covering `stream` (the last partial one dropped). */
export function evalWindows(stream: Int32Array, bos: number, T: number, max = Infinity): Int32Array[] {
  const out: Int32Array[] = [];
  for (let s = 0; s + T - 1 <= stream.length && out.length < max; s += T - 1) {
    const w = new Int32Array(T);
    w[0] = bos;
    w.set(stream.subarray(s, s + T - 1), 1);
    out.push(w);
  }
  return out;
}

/** Entropy (bits/token) of the empirical unigram distribution of `ids`: the bar a LM must beat. */
export function unigramEntropyBits(ids: ArrayLike<number>): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < ids.length; i++) counts.set(ids[i], (counts.get(ids[i]) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / ids.length;
    h -= p * Math.log2(p);
  }
  return h;
}
