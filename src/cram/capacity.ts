// Searches the authors do not have:
//   capacitySearch: per text, the largest N whose first N tokens K vectors decode, by doubling N
//     then bisecting, all texts in lockstep (one batched cram per round). Warm starts: every
//     attempt's best mem is scored on the whole text, and the longest prefix it already decodes
//     raises the lower bound for free; the mem behind the best known prefix starts the next try
//     (a mem decoding 16 tokens is a good start for 24, and a failed 64-token mem that decodes
//     30 is a good start for 32).
//   fewestVectors: the smallest K whose vectors decode a whole text (K doubled, then bisected).
// Both assume success is monotone (in N, in K), as the grid's capacity rule does.
import { decode } from '../decode';
import type { CausalLM } from '../models/types';
import { heldPrefix } from '../score';
import { cram, CramError, initialMem, type CramOptions, type CramResult } from './cram';

export interface CapacityAttempt {
  N: number;
  bestAccuracy: number;
  /** Longest prefix (tokens, first included) this attempt's best mem decodes, on the whole text. */
  decodedPrefix: number;
  steps: number;
  status: string;
  warm: boolean;
}

export interface TextCapacity {
  index: number;
  K: number;
  /** Largest N found decodable (≥ 1: the first token needs no mem). */
  capacity: number;
  /** True when the whole (searched) text decodes: the capacity is at least this. */
  censored: boolean;
  attempts: CapacityAttempt[];
  totalSteps: number;
  /** A mem decoding the first `capacity` tokens (null when capacity is 1). */
  mem: Float32Array | null;
  seconds: number;
}

export interface CapacitySearchOptions extends Omit<CramOptions, 'initMem' | 'onText'> {
  /** First length tried (default 8). */
  startN?: number;
  /** Longest prefix searched (default: each text's length). */
  maxN?: number;
}

export async function capacitySearch(
  model: CausalLM,
  texts: number[][],
  opts: CapacitySearchOptions = {},
): Promise<TextCapacity[]> {
  const K = opts.K ?? 1;
  const startN = opts.startN ?? 8;
  if (!Number.isInteger(startN) || startN < 2) throw new CramError(`startN must be an integer ≥ 2, got ${startN}`);
  const t0 = performance.now();
  const st = texts.map((ids, i) => {
    const limit = Math.min(ids.length, opts.maxN ?? Infinity, model.info.maxPositions - K);
    if (limit < 2) throw new CramError(`text ${i} has fewer than 2 tokens to search`);
    return {
      ids: ids.slice(0, limit),
      lo: 1, // longest prefix known to decode
      hi: limit + 1, // shortest length known to fail
      mem: null as Float32Array | null,
      attempts: [] as CapacityAttempt[],
      steps: 0,
      growing: true,
      seconds: 0,
      seed: (Array.isArray(opts.seed) ? opts.seed[i] : (opts.seed ?? 0) + i) as number,
    };
  });
  const next = (s: (typeof st)[number]): number => {
    if (s.hi - s.lo <= 1) return 0;
    if (s.growing) return Math.min(s.hi - 1, Math.max(startN, 2 * s.lo));
    return Math.floor((s.lo + s.hi) / 2);
  };
  for (let round = 0; ; round++) {
    const todo = st.map((s, i) => ({ i, N: next(s) })).filter((x) => x.N > 0);
    if (!todo.length) break;
    const inits = todo.map(({ i }) => st[i].mem ?? initialMem(model, K, st[i].seed + 7919 * round));
    // Every attempt gets an explicit init (warm or seeded above), so the seeds stay here.
    const {
      onText: _onText,
      seed: _seed,
      startN: _startN,
      maxN: _maxN,
      ...cramOpts
    } = opts as CapacitySearchOptions & CramOptions;
    const results: CramResult[] = await cram(
      model,
      todo.map(({ i, N }) => st[i].ids.slice(0, N)),
      { ...cramOpts, K, initMem: inits },
    );
    for (const [j, { i, N }] of todo.entries()) {
      const s = st[i];
      const r = results[j];
      const prefix = await heldPrefix(model, s.ids, r.bestMem, K);
      s.attempts.push({
        N,
        bestAccuracy: r.bestAccuracy,
        decodedPrefix: prefix,
        steps: r.steps,
        status: r.status,
        warm: s.mem !== null,
      });
      s.steps += r.steps;
      if (prefix > s.lo) {
        s.lo = prefix;
        s.mem = r.bestMem;
      }
      if (r.status !== 'decoded' && prefix < N) {
        s.hi = Math.min(s.hi, N);
        s.growing = false;
      }
      if (s.hi - s.lo <= 1 && !s.seconds) s.seconds = (performance.now() - t0) / 1000;
    }
  }
  return st.map((s, index) => ({
    index,
    K,
    capacity: s.lo,
    censored: s.lo === s.ids.length,
    attempts: s.attempts,
    totalSteps: s.steps,
    mem: s.mem,
    seconds: s.seconds || (performance.now() - t0) / 1000,
  }));
}

export interface FewestVectors {
  K: number;
  result: CramResult;
  attempts: { K: number; decoded: boolean; bestAccuracy: number; steps: number; seconds: number }[];
  totalSteps: number;
  seconds: number;
}

/** The fewest mem vectors that make greedy decoding reproduce `ids` exactly (K doubled, then bisected). */
export async function fewestVectors(
  model: CausalLM,
  ids: number[],
  opts: Omit<CramOptions, 'K' | 'initMem'> & {
    maxK?: number;
    /** First K to try (default 1), doubled from there. */
    guess?: number;
    /** A K already known to fail (default 0: none): the search starts above it. */
    failsAt?: number;
    /** Before each try: the K about to be tried and the range the answer is still known to lie in. */
    onTry?: (K: number, range: { lo: number; hi: number }) => void;
  } = {},
): Promise<FewestVectors> {
  const { maxK: maxKOpt, guess = 1, failsAt = 0, onTry, ...cramOpts } = opts;
  const maxK = Math.min(maxKOpt ?? 64, model.info.maxPositions - ids.length);
  if (maxK < 1)
    throw new CramError(
      `a text of ${ids.length} tokens leaves no room for a mem vector in the model's context of ${model.info.maxPositions}`,
    );
  const t0 = performance.now();
  const attempts: FewestVectors['attempts'] = [];
  const found = new Map<number, CramResult>();
  let lo = Math.max(0, Math.min(failsAt, maxK - 1)); // largest K known to fail
  let hi = 0; // smallest K known to work
  const tryK = async (K: number): Promise<boolean> => {
    onTry?.(K, { lo: lo + 1, hi: hi || maxK });
    const t = performance.now();
    const [r] = await cram(model, [ids], { ...cramOpts, K });
    // Exact means what a reader gets back: check by generating, not only by teacher-forced accuracy.
    const ok =
      r.status === 'decoded' &&
      (await decode(model, { vectors: r.bestMem, K, tokens: ids.length, firstId: ids[0] })).ids.every(
        (x, i) => x === ids[i],
      );
    attempts.push({
      K,
      decoded: ok,
      bestAccuracy: r.bestAccuracy,
      steps: r.steps,
      seconds: (performance.now() - t) / 1000,
    });
    if (ok) found.set(K, r);
    return ok;
  };
  for (let K = Math.min(Math.max(guess, lo + 1), maxK); ; K = Math.min(2 * K, maxK)) {
    if (await tryK(K)) {
      hi = K;
      break;
    }
    lo = K;
    if (K >= maxK) break;
  }
  if (!hi)
    throw new CramError(
      `no K ≤ ${maxK} decoded the text exactly (best accuracy ${Math.max(...attempts.map((a) => a.bestAccuracy)).toFixed(3)})`,
    );
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await tryK(mid)) hi = mid;
    else lo = mid;
  }
  return {
    K: hi,
    result: found.get(hi)!,
    attempts,
    totalSteps: attempts.reduce((n, a) => n + a.steps, 0),
    seconds: (performance.now() - t0) / 1000,
  };
}
