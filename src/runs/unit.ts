// A unit of sweep work: a few texts crammed at one (N, K), or their capacities found by bisection,
// with everything a process needs to compute it from a loaded model. It is what the local executor
// runs in-process and what a queue job carries to a worker (so it is plain JSON); its outcomes are
// the per-text measurements that the run folder's writer turns into records.
import { capacitySearch, type TextCapacity } from '../cram/capacity';
import { cram, type CramOptions } from '../cram/cram';
import type { ProgressInfo } from '../cram/progress';
import { measure, type TextMetrics } from '../metrics/text';
import type { CausalLM } from '../models/types';
import { scoreText, type TextScore } from '../score';
import { decodeMem, encodeMem } from './record';

/** A model as the coordinator loaded it: what the user passed (a path or Hub id) and its weights. */
export interface ModelRef {
  id: string;
  weightsHash: string;
}

/** The cram options a unit carries (JSON; the worker-local ones — progress, quiet — stay out). */
export type JobOptions = Omit<CramOptions, 'K' | 'seed' | 'initMem' | 'onText' | 'onProgress' | 'quiet'>;

export interface UnitText {
  id: string;
  /** The tokens to cram (cram: the first N; bisect: the whole searched text). */
  ids: number[];
  seed: number;
  /** The tokens as text (cram units), for the record's bits. */
  text?: string;
  /** Start vectors (base64 K×d float32) instead of the authors' init: a warm start. */
  init?: string;
}

interface UnitBase {
  model: ModelRef;
  K: number;
  texts: UnitText[];
  /** One fingerprint per text: what the writer files the outcome under. */
  prints: string[];
  options: JobOptions;
}
export interface CramUnit extends UnitBase {
  kind: 'cram';
  N: number;
  /** Return each text's loss/accuracy curve (sampled every options.curveEvery steps). */
  curve?: boolean;
}
export interface BisectUnit extends UnitBase {
  kind: 'bisect';
  startN: number;
  maxN: number;
}
export type Unit = CramUnit | BisectUnit;

export interface CramOutcome {
  kind: 'cram';
  id: string;
  metrics: TextMetrics;
  /** Best mem, base64. */
  mem: string;
  curve?: { step: number[]; loss: number[]; accuracy: number[] };
}
export interface BisectOutcome {
  kind: 'bisect';
  id: string;
  found: Omit<TextCapacity, 'index' | 'mem'>;
}
export type Outcome = CramOutcome | BisectOutcome;

export interface RunUnitHooks {
  /** Each text's outcome as soon as it is known (a local sweep writes it at once). */
  onOutcome?: (o: Outcome, index: number) => void | Promise<void>;
  onProgress?: (p: ProgressInfo) => void;
  quiet?: boolean;
}

// The score without mem depends only on the model and the tokens: a notebook re-scores the same
// prefixes often (kept small: a long sweep sees each prefix once).
const withoutCache = new Map<string, TextScore>();
async function scoreWithout(model: CausalLM, weightsHash: string, ids: number[]): Promise<TextScore> {
  const k = `${weightsHash}|${ids.join(',')}`;
  let s = withoutCache.get(k);
  if (!s) {
    s = await scoreText(model, ids);
    if (withoutCache.size > 4096) withoutCache.clear();
    withoutCache.set(k, s);
  }
  return s;
}

/** Compute a unit on a loaded model (the one it names: the caller checks the weights). */
export async function runUnit(model: CausalLM, u: Unit, hooks: RunUnitHooks = {}): Promise<Outcome[]> {
  const { onOutcome, onProgress, quiet } = hooks;
  const out: Outcome[] = new Array(u.texts.length);
  if (!u.texts.length) return out; // an empty job: the queue's own cost (bench/queue.ts)
  const seed = u.texts.map((t) => t.seed);
  if (u.kind === 'bisect') {
    const found = await capacitySearch(
      model,
      u.texts.map((t) => t.ids),
      { ...u.options, onProgress, quiet, K: u.K, maxN: u.maxN, startN: u.startN, seed },
    );
    for (const [i, f] of found.entries()) {
      const { index: _i, mem: _m, ...rest } = f;
      out[i] = { kind: 'bisect', id: u.texts[i].id, found: rest };
      await onOutcome?.(out[i], i);
    }
    return out;
  }
  const inits = u.texts.some((t) => t.init) ? u.texts.map((t) => t.init) : undefined;
  if (inits?.some((m) => !m)) throw new Error('a unit with warm starts needs one for every text');
  await cram(
    model,
    u.texts.map((t) => t.ids),
    {
      ...u.options,
      onProgress,
      quiet,
      K: u.K,
      seed,
      initMem: inits?.map((m) => decodeMem(m!)),
      onText: async (r) => {
        const t = u.texts[r.index];
        const metrics = await measure(model, t.ids, r, t.id, await scoreWithout(model, u.model.weightsHash, t.ids), {
          text: t.text,
        });
        const o: CramOutcome = { kind: 'cram', id: t.id, metrics, mem: encodeMem(r.bestMem) };
        if (u.curve)
          o.curve = { step: r.curve.step, loss: r.curve.loss, accuracy: r.curve.correct.map((c) => c / r.predicted) };
        out[r.index] = o;
        await onOutcome?.(o, r.index);
      },
    },
  );
  return out;
}

// Outcomes cross Redis as JSON, which has no NaN (a diverged run's metrics): spell them out.
const SPECIAL = new Map<string, number>([
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
]);

export function encodeOutcomes(o: Outcome[]): string {
  return JSON.stringify(o, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? { $num: String(v) } : v));
}

export function decodeOutcomes(s: string): Outcome[] {
  return JSON.parse(s, (_k, v) =>
    v && typeof v === 'object' && typeof v.$num === 'string' && SPECIAL.has(v.$num) ? SPECIAL.get(v.$num) : v,
  );
}
