// progressiveCram: grow the crammed prefix `stride` tokens at a time (Tarasov et al. 2026,
// "progressive cramming"), instead of optimising for the whole text at once:
//   held = 1, mem = randn·std(E)                           (the first token needs no mem)
//   stage: cram ids[0 : held + stride] starting FROM mem    (warm start: the previous stage's best mem)
//          held = longest prefix of the whole text the stage's best mem decodes (may exceed the target)
//          decoded → next stage;  failed within stageSteps/stagePatience → the text stops
//   horizon = held, checked by a greedy decode from the final mem.
// Texts advance independently but share each round: one batched cram() over every text still
// growing, each at its own target length (makeBatch pads and weights texts of different lengths).
// Each stage starts a fresh AdamW state (cram's); only the mem carries over.
// growth 'geometric' (the anchor's search): the first target is 1 + stride, then each success doubles
// the held prefix (target = 2·held) while no target above it has failed, else bisects between the held
// prefix and the shortest failed target above it; every stage starts from the mem of the last success.
// The text stops when no length lies strictly between the two (held + 1 failed), or at the text's end.
// With a rank (lowrank.ts, W and b fixed per text by its seed), each stage warm-starts z instead of mem.
import { decode } from '../decode';
import type { CausalLM } from '../models/types';
import { heldPrefix } from '../score';
import { cram, CramError, embeddingStd, initialMem, type CramOptions, type CramResult } from './cram';
import { expandHost, lowRankBasis } from './lowrank';

export type Growth = 'stride' | 'geometric';
export const GROWTHS: readonly Growth[] = ['stride', 'geometric'];

export interface ProgressiveOptions extends Omit<CramOptions, 'initMem' | 'onText' | 'maxSteps' | 'patience'> {
  /** stride: +stride per stage, stop at the first failure (default); geometric: double, then bisect. */
  growth?: Growth;
  /** Tokens added to the target per stage (default 8). */
  stride?: number;
  /** Longest prefix grown to, first token included (default: each text's length, within the context). */
  maxTokens?: number;
  /** cram() maxSteps of one stage (default 1000). */
  stageSteps?: number;
  /** cram() patience of one stage (default 200). */
  stagePatience?: number;
  /**
   * geometric: patience of a bisection probe (a stage whose target lies below a failed one: expected to fail
   * about half the time, and a failed stage runs to its patience). Default: stagePatience.
   */
  probePatience?: number;
  /**
   * geometric: where a bisection probe starts: the mem of the last success (default, the anchor's rule) or
   * the best mem of the failed stage that bounds it (it already held most of a longer target).
   */
  probeStart?: 'success' | 'failure';
  /** Most stages per text (default: unlimited; the text's length bounds them anyway). */
  maxStages?: number;
  /** Called after each stage of each text with the stage's cram result (its initMem is the warm start). */
  onStage?: (textIndex: number, stage: ProgressiveStage, result: CramResult) => void;
}

export interface ProgressiveStage {
  /** Target length of this stage (tokens, first included). */
  N: number;
  status: string;
  bestAccuracy: number;
  steps: number;
  /** Longest prefix decoded after this stage (never less than after the stage before). */
  held: number;
  /** Started from a previous stage's mem (false only for the first stage). */
  warm: boolean;
  /** The stage's cram patience (probePatience for a geometric bisection probe, else stagePatience). */
  patience: number;
}

export interface ProgressiveResult {
  index: number;
  K: number;
  /** Longest prefix (tokens, first included) the final mem reproduces by greedy decoding. */
  horizon: number;
  /** True when the horizon reached the end of the searched text (the true horizon may be larger). */
  censored: boolean;
  stages: ProgressiveStage[];
  totalSteps: number;
  /** Tokens held vs cumulative cram steps, starting at (0, 1). */
  curve: { steps: number[]; held: number[] };
  /** The mem behind the horizon, K·memDim values (the random init when no stage decoded anything). */
  mem: Float32Array;
  /** Greedy decode of `horizon` tokens from `mem`, and whether it equals the text's prefix. */
  check: { ids: number[]; equal: boolean };
  /** Wall time until this text stopped growing (decode check excluded). */
  seconds: number;
}

function positiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 1))
    throw new CramError(`${name} must be a positive integer, got ${v}`);
}

/** The next stage's target length (before the clamp to the text's length). */
function nextTarget(growth: Growth, s: { held: number; failed: number[]; stages: unknown[] }, stride: number): number {
  if (growth === 'stride') return s.held + stride;
  const bound = failedAbove(s);
  if (bound === Infinity) return s.stages.length ? 2 * s.held : 1 + stride;
  return Math.floor((s.held + bound) / 2);
}

/** Shortest failed target above the held prefix (Infinity when none). */
function failedAbove(s: { held: number; failed: number[] }): number {
  return Math.min(Infinity, ...s.failed.filter((n) => n > s.held));
}

export async function progressiveCram(
  model: CausalLM,
  texts: number[][],
  opts: ProgressiveOptions = {},
): Promise<ProgressiveResult[]> {
  const K = opts.K ?? 1;
  const stride = opts.stride ?? 8;
  const growth = opts.growth ?? 'stride';
  if (!GROWTHS.includes(growth)) throw new CramError(`growth must be stride or geometric, got ${growth}`);
  for (const name of ['K', 'stride', 'maxTokens', 'stageSteps', 'stagePatience', 'probePatience', 'maxStages'] as const)
    positiveInt(name, opts[name]);
  if (opts.probeStart !== undefined && opts.probeStart !== 'success' && opts.probeStart !== 'failure')
    throw new CramError(`probeStart must be success or failure, got ${opts.probeStart}`);
  if (!Array.isArray(texts) || texts.length === 0) throw new CramError('no texts to cram');
  // low-rank: every stage warm-starts z, with each text's fixed W (seeded by the text: the same every stage)
  const d = model.info.memDim;
  if (opts.rank !== undefined && !(Number.isInteger(opts.rank) && opts.rank >= 1 && opts.rank <= d))
    throw new CramError(`rank must be an integer in [1, ${d}] (the mem width), got ${opts.rank}`);
  if (opts.rank !== undefined && (opts.rankTrain || opts.rankShared))
    throw new CramError('progressive cramming with a rank keeps W and b fixed per text (no rankTrain, rankShared)');
  if (Array.isArray(opts.seed) && opts.seed.length !== texts.length)
    throw new CramError(`seed has ${opts.seed.length} entries for ${texts.length} texts`);
  const stagePatience = opts.stagePatience ?? 200;
  const probePatience = opts.probePatience ?? stagePatience;
  const t0 = performance.now();
  const st = texts.map((ids, i) => {
    const limit = Math.min(ids.length, opts.maxTokens ?? Infinity, model.info.maxPositions - K);
    if (limit < 2)
      throw new CramError(
        `text ${i} has fewer than 2 tokens to cram (within the model's context of ${model.info.maxPositions} with ${K} mem vectors)`,
      );
    const seed = Array.isArray(opts.seed) ? opts.seed[i] : (opts.seed ?? 0) + i;
    const lr = opts.rank === undefined ? undefined : lowRankBasis(model, K, opts.rank, [seed], embeddingStd(model));
    return {
      ids: ids.slice(0, limit),
      seed,
      /** Low-rank: the z behind mem (the first stage's randn until a stage succeeds). */
      z: lr?.z0[0],
      held: 1,
      /** Targets of the failed stages (geometric growth bisects below the shortest above held). */
      failed: [] as number[],
      /** The best mem (and z) of each failed target: probeStart 'failure' starts below it from there. */
      failedMem: new Map<number, { mem: Float32Array; z?: Float32Array }>(),
      mem: lr ? expandHost(lr.z0[0], lr.W[0], lr.b, lr.rank) : initialMem(model, K, seed),
      stages: [] as ProgressiveStage[],
      curve: { steps: [0], held: [1] },
      steps: 0,
      growing: true,
      seconds: 0,
    };
  });
  const {
    stride: _s,
    maxTokens: _m,
    stageSteps: _ss,
    stagePatience: _sp,
    probePatience: _pp,
    probeStart: _ps,
    maxStages: _ms,
    growth: _g,
    onStage,
    seed: _seed,
    ...cramOpts
  } = opts;

  for (;;) {
    const todo = st.map((s, i) => ({ s, i })).filter(({ s }) => s.growing);
    if (!todo.length) break;
    const targets = todo.map(({ s }) => Math.min(s.ids.length, nextTarget(growth, s, stride)));
    // geometric: a stage below a failed target (a bisection probe) gets probePatience; one batch per patience
    const patience = todo.map(({ s }) =>
      growth === 'geometric' && failedAbove(s) < Infinity ? probePatience : stagePatience,
    );
    const results: CramResult[] = new Array(todo.length);
    for (const p of new Set(patience)) {
      const js = todo.map((_, j) => j).filter((j) => patience[j] === p);
      // each text's start: the last success, or (probeStart 'failure') the failure bounding its probe
      const part = js.map((j) => {
        const s = todo[j].s;
        const bound = s.failedMem.get(failedAbove(s));
        return opts.probeStart === 'failure' && growth === 'geometric' && bound ? bound : s;
      });
      const rs = await cram(
        model,
        js.map((j) => todo[j].s.ids.slice(0, targets[j])),
        {
          ...cramOpts,
          K,
          ...(opts.rank === undefined
            ? { initMem: part.map((s) => s.mem) }
            : { seed: js.map((j) => todo[j].s.seed), initZ: part.map((s) => s.z!) }),
          maxSteps: opts.stageSteps ?? 1000,
          patience: p,
        },
      );
      js.forEach((j, k) => (results[j] = rs[k]));
    }
    for (const [j, { s, i }] of todo.entries()) {
      const r = results[j];
      // Scored on the whole text: a mem that decodes its target often decodes a little further.
      const held = await heldPrefix(model, s.ids, r.bestMem, K);
      if (held > s.held) {
        s.held = held;
        s.mem = r.bestMem;
        s.z = r.bestZ;
      }
      s.steps += r.steps;
      const stage: ProgressiveStage = {
        N: targets[j],
        status: r.status,
        bestAccuracy: r.bestAccuracy,
        steps: r.steps,
        held: s.held,
        warm: s.stages.length > 0,
        patience: patience[j],
      };
      s.stages.push(stage);
      s.curve.steps.push(s.steps);
      s.curve.held.push(s.held);
      onStage?.(i, stage, r);
      // Decoded means the target is held; anything less is a failed stage: it ends a stride text,
      // and bounds a geometric one's bisection (a later success past it lifts the bound).
      const failed = held < targets[j];
      if (failed) (s.failed.push(targets[j]), s.failedMem.set(targets[j], { mem: r.bestMem, z: r.bestZ }));
      const stop = growth === 'stride' ? failed : failedAbove(s) <= s.held + 1;
      if (stop || s.held >= s.ids.length || s.stages.length >= (opts.maxStages ?? Infinity)) {
        s.growing = false;
        s.seconds = (performance.now() - t0) / 1000;
      }
    }
  }

  const out: ProgressiveResult[] = [];
  for (const [index, s] of st.entries()) {
    // What a reader gets back: generate from the mem, do not trust teacher forcing alone.
    const { ids } = await decode(model, { vectors: s.mem, K, tokens: s.held, firstId: s.ids[0] });
    out.push({
      index,
      K,
      horizon: s.held,
      censored: s.held === s.ids.length,
      stages: s.stages,
      totalSteps: s.steps,
      curve: s.curve,
      mem: s.mem,
      check: { ids, equal: ids.every((x, k) => x === s.ids[k]) },
      seconds: s.seconds,
    });
  }
  return out;
}
