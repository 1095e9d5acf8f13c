// cram(): optimise K [mem] vectors per text so that a frozen model, reading [mem; text], predicts
// the text. The authors' loop (hidden_capacity train.py), batched:
//   mem0 = randn(K, d) · std(E)                          (seeded; E = input embedding matrix)
//   per iteration: loss/accuracy of the current mem → AdamW update (lr 1e-2, betas .9/.9, wd .01)
//   best accuracy with strict improvement; stop at 100% or `patience` iterations without one;
//   at most `maxSteps` iterations; keep the best mem.
// Many texts run in one forward/backward, each with its own mem and AdamW state (the loss is a
// SUM of per-text means, so every text gets exactly the gradient it would get alone). The
// bookkeeping stays on the device (tf.where per step) and is read back every `syncEvery` steps:
// texts that finished in between are frozen on the device, so the result is what a
// step-by-step loop keeps. Finished texts leave the batch at the next read-back.
// The tfjs loop in named steps: initState → step (× syncEvery) → readBack → finish → shrink.
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../models/types';
import { adamwStep, AUTHORS_ADAMW, type AdamWConfig } from './adamw';
import { batchLoss, disposeBatch, makeBatch, type TextBatch } from './loss';
import { progressPrinter, type ProgressInfo } from './progress';
import { randn } from '../random';
import { concatF32 } from '../math';
import {
  CramError,
  progressInfo,
  sampleCurve,
  STATUS_CODE,
  textResult,
  type Bookkeeping,
  type CramResult,
  type CramRun,
  type Curve,
} from './result';
import { engineFor, type Engine } from '../native/index';
import { tfjsModel } from '../native/model';
import { cramNative } from './native';
import { lrAt, resolveSchedule, type ScheduleOptions } from './schedule';
import { basisOf, expandHost, expandMem, lowRankBasis, lowRankTrainable } from './lowrank';
import { assertCramFits } from './memory';
import { embeddingStd } from './embedding';

export { embeddingStd };

export { CramError, STATUS, type CramResult, type CramRun, type CramStatus } from './result';

export interface CramOptions extends Partial<AdamWConfig>, ScheduleOptions {
  /** Number of [mem] vectors per text (default 1). */
  K?: number;
  maxSteps?: number;
  patience?: number;
  /**
   * Stop only when every predicted position has target logit − best other logit ≥ margin (default 0:
   * argmax right, the authors' rule). Accuracy, best mem and patience then count positions held by that
   * margin, so the vectors kept survive rounding (bf16, int8: metrics/exactness.ts).
   */
  margin?: number;
  /** Init seed: one number (text i uses seed + i) or one seed per text. Default 0. */
  seed?: number | number[];
  /** Start from these vectors (K·memDim values; one array for all texts or one per text). */
  initMem?: Float32Array | Float32Array[];
  /** Read the device bookkeeping back every this many iterations (default 10). */
  syncEvery?: number;
  /** Keep every this-many-th loss in the result's curve (default 10; 1 keeps all). */
  curveEvery?: number;
  /** Called at every read-back. */
  onProgress?: (p: ProgressInfo) => void;
  /** Called as soon as a text's result is known (sweeps write it out at once). */
  onText?: (r: CramResult) => void | Promise<void>;
  /** No progress line on stdout. */
  quiet?: boolean;
  /** native (C addon, Llama only) or tfjs; default: CRAMLAB_ENGINE, else native where it can run. */
  engine?: Engine;
  /** Low-rank mem: train z (K·rank numbers) with mem = W z + b, W and b fixed unless rankTrain (lowrank.ts). */
  rank?: number;
  /** With rank: train W and b as well (native engine only). */
  rankTrain?: boolean;
  /** With rank: one W, b for the whole batch (trained: gradients summed over its texts). */
  rankShared?: boolean;
  /** With rank (W, b fixed): start z here, K·rank values per text, instead of randn (warm starts). */
  initZ?: Float32Array[];
}

/** The authors' init: randn(K, d) · std(E), from our seeded generator. */
export function initialMem(model: CausalLM, K: number, seed: number): Float32Array {
  const std = embeddingStd(model);
  return randn(K * model.info.memDim, seed, std);
}

function validate(model: CausalLM, texts: number[][], K: number, o: CramOptions): void {
  if (!Number.isInteger(K) || K < 1)
    throw new CramError(`K (number of mem vectors) must be a positive integer, got ${K}`);
  if (!Array.isArray(texts) || texts.length === 0) throw new CramError('no texts to cram');
  const V = model.info.vocabSize;
  texts.forEach((ids, i) => {
    if (!ids || ids.length === 0) throw new CramError(`text ${i} is empty`);
    if (ids.length < 2)
      throw new CramError(
        `text ${i} has 1 token; cramming needs at least 2 (the first one is only read, never predicted)`,
      );
    const bad = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
    if (bad !== undefined) throw new CramError(`text ${i} has token id ${bad}, outside the vocabulary [0, ${V})`);
    if (K + ids.length > model.info.maxPositions) {
      throw new CramError(
        `text ${i}: ${ids.length} tokens + ${K} mem vectors = ${ids.length + K} positions, beyond the model's context of ${model.info.maxPositions}`,
      );
    }
  });
  for (const [name, min] of [
    ['maxSteps', 1],
    ['patience', 1],
    ['syncEvery', 1],
    ['curveEvery', 1],
  ] as const) {
    const v = o[name];
    if (v !== undefined && (!Number.isInteger(v) || v < min))
      throw new CramError(`${name} must be an integer ≥ ${min}, got ${v}`);
  }
  for (const name of ['lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'margin'] as const) {
    const v = o[name];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0))
      throw new CramError(`${name} must be a finite number ≥ 0, got ${v}`);
  }
  if (Array.isArray(o.seed) && o.seed.length !== texts.length)
    throw new CramError(`seed has ${o.seed.length} entries for ${texts.length} texts`);
  if (Array.isArray(o.initMem) && o.initMem.length !== texts.length)
    throw new CramError(`initMem has ${o.initMem.length} entries for ${texts.length} texts`);
  const inits = o.initMem === undefined ? [] : Array.isArray(o.initMem) ? o.initMem : [o.initMem];
  inits.forEach((m, i) => {
    if (m.length !== K * model.info.memDim)
      throw new CramError(
        `initMem${inits.length > 1 ? ` for text ${i}` : ''} has ${m.length} values; K=${K} vectors of width ${model.info.memDim} need ${K * model.info.memDim}`,
      );
    if (!m.every(Number.isFinite))
      throw new CramError(`initMem${inits.length > 1 ? ` for text ${i}` : ''} contains NaN or Infinity`);
  });
}

/** The authors' limits (hidden_capacity train.py) and the read-back cadence; the CLI's defaults too. */
export const CRAM_DEFAULTS = { maxSteps: 5000, patience: 2000, syncEvery: 10, curveEvery: 10 } as const;

function resolve(model: CausalLM, texts: number[][], opts: CramOptions): CramRun {
  const d = model.info.memDim;
  const firstInit = Array.isArray(opts.initMem) ? opts.initMem[0] : opts.initMem;
  const K = opts.K ?? (firstInit ? firstInit.length / d : 1);
  validate(model, texts, K, opts);
  const seeds = texts.map((_, i) => (Array.isArray(opts.seed) ? opts.seed[i] : (opts.seed ?? 0) + i));
  const rank = opts.rank;
  if (rank !== undefined && !(Number.isInteger(rank) && rank >= 1 && rank <= d))
    throw new CramError(`rank must be an integer in [1, ${d}] (the mem width), got ${rank}`);
  if (rank !== undefined && opts.initMem) throw new CramError('rank does not take initMem: z starts from randn');
  if (rank === undefined && (opts.rankTrain || opts.rankShared))
    throw new CramError('rankTrain and rankShared (--rank-train, --rank-shared) need a rank (mem = W z + b)');
  if (opts.initZ && (rank === undefined || opts.rankTrain))
    throw new CramError('initZ needs a rank with W and b fixed (rankTrain off)');
  if (opts.initZ && (opts.initZ.length !== texts.length || opts.initZ.some((z) => z.length !== K * rank!)))
    throw new CramError(`initZ needs ${texts.length} arrays of K·rank = ${K * rank!} values`);
  const lowRank =
    rank === undefined
      ? undefined
      : lowRankBasis(model, K, rank, seeds, embeddingStd(model), { train: opts.rankTrain, shared: opts.rankShared });
  if (lowRank && opts.initZ) lowRank.z0 = opts.initZ.map((z) => Float32Array.from(z));
  assertCramFits(model, texts, K, engineFor(model, opts.engine)); // before the std, the copies, the batch
  const inits = texts.map((_, i) => {
    if (opts.initMem) return Float32Array.from(Array.isArray(opts.initMem) ? opts.initMem[i] : opts.initMem);
    if (lowRank) return expandHost(lowRank.z0[i], basisOf(lowRank, i), lowRank.b, lowRank.rank);
    return initialMem(model, K, seeds[i]);
  });
  return {
    K,
    inits,
    lowRank,
    adam: {
      lr: opts.lr ?? AUTHORS_ADAMW.lr,
      beta1: opts.beta1 ?? AUTHORS_ADAMW.beta1,
      beta2: opts.beta2 ?? AUTHORS_ADAMW.beta2,
      eps: opts.eps ?? AUTHORS_ADAMW.eps,
      weightDecay: opts.weightDecay ?? AUTHORS_ADAMW.weightDecay,
    },
    schedule: resolveSchedule(opts),
    maxSteps: opts.maxSteps ?? CRAM_DEFAULTS.maxSteps,
    patience: opts.patience ?? CRAM_DEFAULTS.patience,
    margin: opts.margin ?? 0,
    syncEvery: opts.syncEvery ?? CRAM_DEFAULTS.syncEvery,
    curveEvery: opts.curveEvery ?? CRAM_DEFAULTS.curveEvery,
    quiet: opts.quiet,
    onProgress: opts.onProgress,
    onText: opts.onText,
  };
}

/** Optimise K mem vectors for each text (token ids, BOS first as the tokenizer gives them). */
export async function cram(model: CausalLM, texts: number[][], opts: CramOptions = {}): Promise<CramResult[]> {
  const run = resolve(model, texts, opts);
  const native = engineFor(model, opts.engine) === 'native';
  // Low-rank on the native engine: the whole loop in C (cram.c expands z and takes the chain rule).
  // The tfjs loop (portable) trains z only: W, b fixed.
  if (run.lowRank?.train && !native)
    throw new CramError('rankTrain needs the native engine (the tfjs loop trains z only)');
  const results = native ? await cramNative(model, texts, run) : await cramTfjs(tfjsModel(model), texts, run); // the tfjs loop needs gradients through forward
  const trainable = run.lowRank
    ? lowRankTrainable(run.lowRank, run.K, model.info.memDim, texts.length)
    : run.K * model.info.memDim;
  for (const r of results) r.trainable = trainable;
  return results;
}

// ---- the tfjs loop

/** Everything that changes per iteration, one row per text still in the batch. */
type State = {
  mem: tf.Tensor3D;
  m: tf.Tensor3D;
  v: tf.Tensor3D;
  bestMem: tf.Tensor3D;
  bestCorrect: tf.Tensor1D;
  bestStep: tf.Tensor1D; // 0-based iteration of the best, -1 before any
  bestLoss: tf.Tensor1D;
  minLoss: tf.Tensor1D;
  counter: tf.Tensor1D; // iterations since the last strict improvement
  done: tf.Tensor1D; // bool
  doneAt: tf.Tensor1D; // iterations run when it stopped
  status: tf.Tensor1D; // a STATUS_CODE
  W?: tf.Tensor3D; // low-rank: each row's fixed W [memDim, rank]; mem, m, v, bestMem then hold z [K, rank] (initState d = rank)
};

/** The texts of the state's rows on the device: embeddings, targets, and N-1 per row. */
type Live = { batch: TextBatch; predicted: tf.Tensor1D };

const disposeState = (s: State) => tf.dispose(Object.values(s));

function liveTexts(model: CausalLM, texts: number[][], run: CramRun): Live {
  const batch = makeBatch(model, texts, run.schedule);
  return { batch, predicted: tf.tensor1d(batch.predicted) };
}

function disposeLive(l: Live): void {
  disposeBatch(l.batch);
  l.predicted.dispose();
}

function initState(inits: Float32Array[], K: number, d: number, W?: Float32Array[]): State {
  const B = inits.length;
  const memAll = new Float32Array(B * K * d);
  inits.forEach((m, i) => memAll.set(m, i * K * d));
  const zeros1 = () => tf.zeros([B]) as tf.Tensor1D;
  return {
    mem: tf.tensor3d(memAll, [B, K, d]),
    m: tf.zeros([B, K, d]),
    v: tf.zeros([B, K, d]),
    bestMem: tf.tensor3d(memAll, [B, K, d]),
    bestCorrect: zeros1(),
    bestStep: tf.fill([B], -1) as tf.Tensor1D,
    bestLoss: tf.fill([B], NaN) as tf.Tensor1D,
    minLoss: tf.fill([B], Infinity) as tf.Tensor1D,
    counter: zeros1(),
    done: tf.zeros([B], 'bool') as tf.Tensor1D,
    doneAt: zeros1(),
    status: zeros1(),
    ...(W ? { W: tf.tensor3d(concatF32(W), [B, W[0].length / d, d]) } : {}),
  };
}

/** Iteration `it` (0-based) on the device: loss and accuracy at the current mem, the bookkeeping, AdamW. */
function step(
  model: CausalLM,
  live: Live,
  s: State,
  it: number,
  run: CramRun,
  b?: tf.Tensor1D,
): { next: State; loss: tf.Tensor1D; correct: tf.Tensor1D } {
  return tf.tidy(() => {
    let seen!: { loss: tf.Tensor1D; correct: tf.Tensor1D };
    const { grad } = tf.valueAndGrad((p: tf.Tensor) => {
      const mem = s.W ? expandMem(p as tf.Tensor3D, s.W, b!) : (p as tf.Tensor3D);
      const r = batchLoss(model, mem, live.batch, run.margin);
      seen = { loss: tf.keep(r.loss), correct: tf.keep(r.correct) };
      return tf.sum(r.loss);
    })(s.mem);
    const { loss, correct } = seen;
    const B = s.mem.shape[0];
    const running = tf.logicalNot(s.done);
    const finite = tf.isFinite(loss);
    const improved = tf.logicalAnd(tf.logicalAnd(running, finite), tf.greater(correct, s.bestCorrect));
    const bestCorrect = tf.where(improved, correct, s.bestCorrect);
    const counter = tf.where(running, tf.where(improved, tf.zerosLike(s.counter), tf.add(s.counter, 1)), s.counter);
    const nan = tf.logicalAnd(running, tf.logicalNot(finite));
    const full = tf.greaterEqual(bestCorrect, live.predicted);
    const patient = tf.greaterEqual(counter, run.patience);
    const last = it + 1 >= run.maxSteps;
    const stopNow = tf.logicalAnd(
      running,
      tf.logicalOr(tf.logicalOr(nan, full), tf.logicalOr(patient, tf.scalar(last, 'bool'))),
    );
    // Authors' order of checks: 100% first, then patience; max-steps only when neither.
    const code = tf.where(
      nan,
      STATUS_CODE.nan,
      tf.where(full, STATUS_CODE.decoded, tf.where(patient, STATUS_CODE.patience, STATUS_CODE.maxSteps)),
    );
    const upd = adamwStep(s.mem, clipped(grad, run.schedule.clipGradNorm), s.m, s.v, it + 1, {
      ...run.adam,
      lr: lrAt(run.schedule, run.adam.lr, it, run.maxSteps),
    });
    const running3 = tf.reshape(running, [B, 1, 1]);
    const next: State = {
      mem: tf.where(running3, upd.p, s.mem) as tf.Tensor3D,
      m: tf.where(running3, upd.m, s.m) as tf.Tensor3D,
      v: tf.where(running3, upd.v, s.v) as tf.Tensor3D,
      bestMem: tf.where(tf.reshape(improved, [B, 1, 1]), s.mem, s.bestMem) as tf.Tensor3D,
      bestCorrect: bestCorrect as tf.Tensor1D,
      bestStep: tf.where(improved, tf.fill([B], it), s.bestStep) as tf.Tensor1D,
      bestLoss: tf.where(improved, loss, s.bestLoss) as tf.Tensor1D,
      minLoss: tf.where(tf.logicalAnd(running, finite), tf.minimum(s.minLoss, loss), s.minLoss) as tf.Tensor1D,
      counter: counter as tf.Tensor1D,
      done: tf.logicalOr(s.done, stopNow) as tf.Tensor1D,
      doneAt: tf.where(stopNow, tf.fill([B], it + 1), s.doneAt) as tf.Tensor1D,
      status: tf.where(stopNow, tf.cast(code, 'float32'), s.status) as tf.Tensor1D,
      ...(s.W ? { W: tf.clone(s.W) } : {}),
    };
    return { next, loss, correct };
  });
}

/** Each row's gradient scaled to L2 norm ≤ c (schedule.ts; c = 0: unchanged). */
function clipped(grad: tf.Tensor, c: number): tf.Tensor {
  if (!c) return grad;
  const norm = tf.sqrt(tf.sum(tf.square(grad), [1, 2], true));
  return tf.mul(grad, tf.minimum(1, tf.div(c, tf.add(norm, 1e-6))));
}

type Pending = { loss: tf.Tensor1D; correct: tf.Tensor1D; it: number };

/** What a read-back copies to the host: the pending steps' losses/corrects [step][row] and the bookkeeping per row. */
type Seen = {
  its: number[];
  loss: number[][];
  correct: number[][];
  done: ArrayLike<number>;
  book: (row: number) => Bookkeeping;
};

/** Copy the steps run since the last read-back and the bookkeeping to the host (frees the pending tensors). */
async function readBack(s: State, pending: Pending[]): Promise<Seen> {
  const losses = tf.stack(pending.map((p) => p.loss));
  const corrects = tf.stack(pending.map((p) => p.correct));
  const [loss, correct] = [await losses.array(), await corrects.array()] as number[][][];
  tf.dispose([losses, corrects, ...pending.flatMap((p) => [p.loss, p.correct])]);
  const its = pending.map((p) => p.it);
  pending.length = 0;
  const [done, doneAt, status, bestCorrect, bestStep, bestLoss, minLoss] = await Promise.all(
    [s.done, s.doneAt, s.status, s.bestCorrect, s.bestStep, s.bestLoss, s.minLoss].map((t) => t.data()),
  );
  const book = (row: number): Bookkeeping => ({
    bestCorrect: bestCorrect[row],
    bestStep: bestStep[row],
    doneAt: doneAt[row],
    status: status[row],
    minLoss: minLoss[row],
    bestLoss: bestLoss[row],
  });
  return { its, loss, correct, done, book };
}

/** Results of the finished rows (text indices `active[row]`), with their best and final mem. */
async function finish(
  s: State,
  rows: number[],
  active: number[],
  texts: number[][],
  run: CramRun,
  seen: Seen,
  curves: Curve[],
  seconds: number,
  b?: tf.Tensor1D,
): Promise<CramResult[]> {
  const sel = selectRows(s, rows);
  // low-rank: the results hold the mem z gives (what decode reads), not z
  const [bestT, lastT] = sel.W
    ? [expandMem(sel.bestMem, sel.W, b!), expandMem(sel.mem, sel.W, b!)]
    : [sel.bestMem, sel.mem];
  const Kd = bestT.shape[1] * bestT.shape[2];
  const [best, last] = [await bestT.data(), await lastT.data()] as Float32Array[];
  const z = sel.W ? ((await sel.bestMem.data()) as Float32Array) : undefined;
  if (sel.W) tf.dispose([bestT, lastT]);
  disposeState(sel);
  return rows.map((row, j) => {
    const ti = active[row];
    const mems = {
      best: best.slice(j * Kd, (j + 1) * Kd),
      final: last.slice(j * Kd, (j + 1) * Kd),
      init: run.inits[ti],
    };
    const r = textResult(ti, texts[ti], run.K, mems, seen.book(row), curves[ti], seconds);
    if (z) r.bestZ = z.slice((j * z.length) / rows.length, ((j + 1) * z.length) / rows.length);
    return r;
  });
}

function selectRows(s: State, rows: number[]): State {
  return tf.tidy(() => {
    const idx = tf.tensor1d(rows, 'int32');
    const out: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(s)) out[k] = tf.gather(t, idx);
    return out as unknown as State;
  });
}

async function cramTfjs(model: CausalLM, texts: number[][], run: CramRun): Promise<CramResult[]> {
  const printer = run.quiet ? undefined : progressPrinter();
  const lr = run.lowRank;
  let state = lr
    ? initState(
        lr.z0,
        run.K,
        lr.rank,
        lr.z0.map((_, i) => basisOf(lr, i)),
      )
    : initState(run.inits, run.K, model.info.memDim);
  const b = lr ? tf.tensor1d(lr.b) : undefined;
  let active = texts.map((_, i) => i); // the text of each state row
  let live: Live | undefined = liveTexts(model, texts, run);
  const results: CramResult[] = new Array(texts.length);
  const curves: Curve[] = texts.map(() => ({ step: [], loss: [], correct: [] }));
  const pending: Pending[] = [];
  const t0 = performance.now();
  try {
    for (let it = 0; live; it++) {
      const out = step(model, live, state, it, run, b);
      disposeState(state);
      state = out.next;
      pending.push({ loss: out.loss, correct: out.correct, it });
      if ((it + 1) % run.syncEvery !== 0 && it + 1 < run.maxSteps) continue;

      const seen = await readBack(state, pending);
      const seconds = (performance.now() - t0) / 1000;
      active.forEach((ti, row) => {
        const doneAt = seen.book(row).doneAt;
        seen.its.forEach((i, k) => {
          if (seen.done[row] && i >= doneAt) return; // frozen rows computed past their end
          sampleCurve(curves[ti], i, seen.loss[k][row], seen.correct[k][row], run.curveEvery, doneAt);
        });
      });
      const lastK = seen.its.length - 1;
      const liveRows = active.map((text, row) => ({
        text,
        loss: seen.loss[lastK][row],
        correct: seen.correct[lastK][row],
      }));
      const rowBest = new Map(active.map((ti, row) => [ti, seen.book(row).bestCorrect]));
      const rows = active.map((_, row) => row);
      const finished = rows.filter((row) => seen.done[row]);
      if (finished.length) {
        for (const r of await finish(state, finished, active, texts, run, seen, curves, seconds, b)) {
          results[r.index] = r;
          await run.onText?.(r);
        }
        // shrink: the rows still running become the whole state and batch
        const keep = rows.filter((row) => !seen.done[row]);
        const kept = selectRows(state, keep);
        disposeState(state);
        state = kept;
        active = keep.map((row) => active[row]);
        disposeLive(live);
        live = active.length
          ? liveTexts(
              model,
              active.map((i) => texts[i]),
              run,
            )
          : undefined;
      }
      const info = progressInfo({
        step: it + 1,
        maxSteps: run.maxSteps,
        texts,
        live: liveRows.filter((l) => !results[l.text]),
        best: (ti) => results[ti]?.bestCorrect ?? rowBest.get(ti)!,
        results,
        seconds,
      });
      printer?.update(info);
      run.onProgress?.(info);
    }
  } finally {
    printer?.end();
    tf.dispose(pending.flatMap((p) => [p.loss, p.correct]));
    if (live) disposeLive(live);
    disposeState(state);
    b?.dispose();
  }
  return results;
}
