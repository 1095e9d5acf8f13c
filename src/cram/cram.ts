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
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../models/types';
import { adamwStep, AUTHORS_ADAMW, type AdamWConfig } from './adamw';
import { batchLoss, disposeBatch, makeBatch, type TextBatch } from './loss';
import { progressPrinter, type ProgressInfo } from './progress';
import { randn } from './random';
import { engineFor, type Engine } from '../native/index';
import { tfjsModel } from '../native/model';
import { cramNative } from '../native/cram';

export type CramStatus = 'decoded' | 'patience' | 'max-steps' | 'nan';
const STATUS: CramStatus[] = ['decoded', 'patience', 'max-steps', 'nan'];

export interface CramOptions extends Partial<AdamWConfig> {
  /** Number of [mem] vectors per text (default 1). */
  K?: number;
  maxSteps?: number;
  patience?: number;
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
}

export interface CramResult {
  /** Index of the text in the call. */
  index: number;
  tokens: number;
  K: number;
  /** N - 1: the number of scored next-token predictions. */
  predicted: number;
  /** Best mem found, K·memDim values (row-major [K, memDim]). */
  bestMem: Float32Array;
  /** Mem after the last AdamW update. */
  finalMem: Float32Array;
  initMem: Float32Array;
  bestCorrect: number;
  bestAccuracy: number;
  /** 1-based iteration whose forward pass first reached the best accuracy (0: never above 0). */
  stepsToBest: number;
  /** Iterations (forward + backward + AdamW update) run for this text. */
  steps: number;
  status: CramStatus;
  /** Smallest loss over the iterations (the authors' notebooks' "best loss"), mean nats per prediction. */
  minLoss: number;
  /** Loss at the best-accuracy iteration (null if accuracy never rose above 0). */
  lossAtBest: number | null;
  /** Sampled loss / correct-count curve (iteration index, 0-based). */
  curve: { step: number[]; loss: number[]; correct: number[] };
  /** Wall time until this text's result was read back. */
  seconds: number;
}

export class CramError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'CramError';
  }
}

const stdCache = new WeakMap<CausalLM, number>();

/** std of all entries of the input embedding matrix, unbiased (torch.std), computed once per model. */
export function embeddingStd(model: CausalLM): number {
  let s = stdCache.get(model);
  if (s === undefined) {
    const E = model.embedMatrix;
    s = tf.tidy(() => {
      const { variance } = tf.moments(E);
      return tf.sqrt(tf.mul(variance, E.size / (E.size - 1)));
    }).dataSync()[0] as number;
    stdCache.set(model, s);
  }
  return s;
}

/** The authors' init: randn(K, d) · std(E), from our seeded generator. */
export function initialMem(model: CausalLM, K: number, seed: number): Float32Array {
  const std = embeddingStd(model);
  return Float32Array.from(randn(K * model.info.memDim, seed), (x) => x * std);
}

function validate(model: CausalLM, texts: number[][], K: number, o: CramOptions): void {
  if (!Number.isInteger(K) || K < 1) throw new CramError(`K (number of mem vectors) must be a positive integer, got ${K}`);
  if (!Array.isArray(texts) || texts.length === 0) throw new CramError('no texts to cram');
  const V = model.info.vocabSize;
  texts.forEach((ids, i) => {
    if (!ids || ids.length === 0) throw new CramError(`text ${i} is empty`);
    if (ids.length < 2) throw new CramError(`text ${i} has 1 token; cramming needs at least 2 (the first one is only read, never predicted)`);
    const bad = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
    if (bad !== undefined) throw new CramError(`text ${i} has token id ${bad}, outside the vocabulary [0, ${V})`);
    if (K + ids.length > model.info.maxPositions) {
      throw new CramError(`text ${i}: ${ids.length} tokens + ${K} mem vectors = ${ids.length + K} positions, beyond the model's context of ${model.info.maxPositions}`);
    }
  });
  for (const [name, min] of [['maxSteps', 1], ['patience', 1], ['syncEvery', 1], ['curveEvery', 1]] as const) {
    const v = o[name];
    if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new CramError(`${name} must be an integer ≥ ${min}, got ${v}`);
  }
  for (const name of ['lr', 'beta1', 'beta2', 'eps', 'weightDecay'] as const) {
    const v = o[name];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new CramError(`${name} must be a finite number ≥ 0, got ${v}`);
  }
  if (Array.isArray(o.seed) && o.seed.length !== texts.length) throw new CramError(`seed has ${o.seed.length} entries for ${texts.length} texts`);
  if (Array.isArray(o.initMem) && o.initMem.length !== texts.length) throw new CramError(`initMem has ${o.initMem.length} entries for ${texts.length} texts`);
  const inits = o.initMem === undefined ? [] : Array.isArray(o.initMem) ? o.initMem : [o.initMem];
  inits.forEach((m, i) => {
    if (m.length !== K * model.info.memDim) throw new CramError(`initMem${inits.length > 1 ? ` for text ${i}` : ''} has ${m.length} values; K=${K} vectors of width ${model.info.memDim} need ${K * model.info.memDim}`);
    if (!m.every(Number.isFinite)) throw new CramError(`initMem${inits.length > 1 ? ` for text ${i}` : ''} contains NaN or Infinity`);
  });
}

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
  status: tf.Tensor1D; // index into STATUS
};

const disposeState = (s: State) => tf.dispose(Object.values(s));

function selectRows(s: State, rows: number[]): State {
  return tf.tidy(() => {
    const idx = tf.tensor1d(rows, 'int32');
    const out: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(s)) out[k] = tf.gather(t, idx);
    return out as unknown as State;
  });
}

/** Optimise K mem vectors for each text (token ids, BOS first as the tokenizer gives them). */
export async function cram(model: CausalLM, texts: number[][], opts: CramOptions = {}): Promise<CramResult[]> {
  const d = model.info.memDim;
  const firstInit = Array.isArray(opts.initMem) ? opts.initMem[0] : opts.initMem;
  const K = opts.K ?? (firstInit ? firstInit.length / d : 1);
  validate(model, texts, K, opts);
  const adam: AdamWConfig = {
    lr: opts.lr ?? AUTHORS_ADAMW.lr,
    beta1: opts.beta1 ?? AUTHORS_ADAMW.beta1,
    beta2: opts.beta2 ?? AUTHORS_ADAMW.beta2,
    eps: opts.eps ?? AUTHORS_ADAMW.eps,
    weightDecay: opts.weightDecay ?? AUTHORS_ADAMW.weightDecay,
  };
  const maxSteps = opts.maxSteps ?? 5000;
  const patience = opts.patience ?? 2000;
  const syncEvery = opts.syncEvery ?? 10;
  const curveEvery = opts.curveEvery ?? 10;

  const inits = texts.map((_, i) => {
    if (opts.initMem) return Float32Array.from(Array.isArray(opts.initMem) ? opts.initMem[i] : opts.initMem);
    const seed = Array.isArray(opts.seed) ? opts.seed[i] : (opts.seed ?? 0) + i;
    return initialMem(model, K, seed);
  });
  if (engineFor(model, opts.engine) === 'native') {
    return cramNative(model, texts, { K, inits, adam, maxSteps, patience, syncEvery, curveEvery, quiet: opts.quiet, onProgress: opts.onProgress, onText: opts.onText });
  }
  model = tfjsModel(model); // the tfjs loop needs gradients through forward

  const printer = opts.quiet ? undefined : progressPrinter();
  const B0 = texts.length;
  const memAll = new Float32Array(B0 * K * d);
  inits.forEach((m, i) => memAll.set(m, i * K * d));
  const zeros1 = () => tf.zeros([B0]) as tf.Tensor1D;
  let state: State = {
    mem: tf.tensor3d(memAll, [B0, K, d]),
    m: tf.zeros([B0, K, d]),
    v: tf.zeros([B0, K, d]),
    bestMem: tf.tensor3d(memAll, [B0, K, d]),
    bestCorrect: zeros1(),
    bestStep: tf.fill([B0], -1) as tf.Tensor1D,
    bestLoss: tf.fill([B0], NaN) as tf.Tensor1D,
    minLoss: tf.fill([B0], Infinity) as tf.Tensor1D,
    counter: zeros1(),
    done: tf.zeros([B0], 'bool') as tf.Tensor1D,
    doneAt: zeros1(),
    status: zeros1(),
  };
  let active = texts.map((_, i) => i);
  let batch: TextBatch = makeBatch(model, texts);
  let predicted = tf.tensor1d(batch.predicted);
  const results: CramResult[] = new Array(B0);
  const curves = texts.map(() => ({ step: [] as number[], loss: [] as number[], correct: [] as number[] }));
  const pending: { loss: tf.Tensor1D; correct: tf.Tensor1D; it: number }[] = [];
  const t0 = performance.now();

  const step = (it: number) =>
    tf.tidy(() => {
      const s = state;
      let seen!: { loss: tf.Tensor1D; correct: tf.Tensor1D };
      const { grad } = tf.valueAndGrad((mem: tf.Tensor) => {
        const r = batchLoss(model, mem as tf.Tensor3D, batch);
        seen = { loss: tf.keep(r.loss), correct: tf.keep(r.correct) };
        return tf.sum(r.loss);
      })(s.mem);
      const { loss, correct } = seen;
      const B = active.length;
      const live = tf.logicalNot(s.done);
      const finite = tf.isFinite(loss);
      const improved = tf.logicalAnd(tf.logicalAnd(live, finite), tf.greater(correct, s.bestCorrect));
      const bestCorrect = tf.where(improved, correct, s.bestCorrect);
      const counter = tf.where(live, tf.where(improved, tf.zerosLike(s.counter), tf.add(s.counter, 1)), s.counter);
      const nan = tf.logicalAnd(live, tf.logicalNot(finite));
      const full = tf.greaterEqual(bestCorrect, predicted);
      const patient = tf.greaterEqual(counter, patience);
      const last = it + 1 >= maxSteps;
      const stopNow = tf.logicalAnd(live, tf.logicalOr(tf.logicalOr(nan, full), tf.logicalOr(patient, tf.scalar(last, 'bool'))));
      // Authors' order of checks: 100% first, then patience; max-steps only when neither.
      const code = tf.where(nan, 3, tf.where(full, 0, tf.where(patient, 1, 2)));
      const upd = adamwStep(s.mem, grad, s.m, s.v, it + 1, adam);
      const live3 = tf.reshape(live, [B, 1, 1]);
      const next: State = {
        mem: tf.where(live3, upd.p, s.mem) as tf.Tensor3D,
        m: tf.where(live3, upd.m, s.m) as tf.Tensor3D,
        v: tf.where(live3, upd.v, s.v) as tf.Tensor3D,
        bestMem: tf.where(tf.reshape(improved, [B, 1, 1]), s.mem, s.bestMem) as tf.Tensor3D,
        bestCorrect: bestCorrect as tf.Tensor1D,
        bestStep: tf.where(improved, tf.fill([B], it), s.bestStep) as tf.Tensor1D,
        bestLoss: tf.where(improved, loss, s.bestLoss) as tf.Tensor1D,
        minLoss: tf.where(tf.logicalAnd(live, finite), tf.minimum(s.minLoss, loss), s.minLoss) as tf.Tensor1D,
        counter: counter as tf.Tensor1D,
        done: tf.logicalOr(s.done, stopNow) as tf.Tensor1D,
        doneAt: tf.where(stopNow, tf.fill([B], it + 1), s.doneAt) as tf.Tensor1D,
        status: tf.where(stopNow, tf.cast(code, 'float32'), s.status) as tf.Tensor1D,
      };
      return { next, loss, correct };
    });

  try {
    for (let it = 0; active.length > 0; it++) {
      const out = step(it);
      disposeState(state);
      state = out.next as State;
      pending.push({ loss: out.loss, correct: out.correct, it });
      if ((it + 1) % syncEvery !== 0 && it + 1 < maxSteps) continue;

      // Read-back: curves, then results of the texts that stopped since the last one.
      const losses = tf.stack(pending.map((p) => p.loss));
      const corrects = tf.stack(pending.map((p) => p.correct));
      const [L, C] = [await losses.array(), await corrects.array()] as number[][][];
      tf.dispose([losses, corrects, ...pending.flatMap((p) => [p.loss, p.correct])]);
      const its = pending.map((p) => p.it);
      pending.length = 0;
      const [done, doneAt, status, bestCorrect, bestStep, bestLoss, minLoss] = await Promise.all(
        [state.done, state.doneAt, state.status, state.bestCorrect, state.bestStep, state.bestLoss, state.minLoss].map((t) => t.data()),
      );
      const seconds = (performance.now() - t0) / 1000;
      active.forEach((ti, row) => {
        its.forEach((i, k) => {
          if (done[row] && i >= doneAt[row]) return; // frozen rows computed past their end
          if (i % curveEvery === 0 || i + 1 === doneAt[row]) {
            curves[ti].step.push(i);
            curves[ti].loss.push(L[k][row]);
            curves[ti].correct.push(C[k][row]);
          }
        });
      });
      const rowOf = new Map(active.map((ti, row) => [ti, row])); // rows of this read-back
      const finished = active.map((_, row) => row).filter((row) => done[row]);
      if (finished.length) {
        const rows = selectRows(state, finished);
        const [best, last] = [await rows.bestMem.data(), await rows.mem.data()] as Float32Array[];
        disposeState(rows);
        for (const [j, row] of finished.entries()) {
          const ti = active[row];
          const n = texts[ti].length - 1;
          const r: CramResult = {
            index: ti,
            tokens: texts[ti].length,
            K,
            predicted: n,
            bestMem: best.slice(j * K * d, (j + 1) * K * d),
            finalMem: last.slice(j * K * d, (j + 1) * K * d),
            initMem: inits[ti],
            bestCorrect: bestCorrect[row],
            bestAccuracy: bestCorrect[row] / n,
            stepsToBest: bestStep[row] + 1,
            steps: doneAt[row],
            status: STATUS[status[row]],
            minLoss: minLoss[row],
            lossAtBest: bestStep[row] >= 0 ? bestLoss[row] : null,
            curve: curves[ti],
            seconds,
          };
          results[ti] = r;
          await opts.onText?.(r);
        }
        const keep = active.map((_, row) => row).filter((row) => !done[row]);
        const kept = selectRows(state, keep);
        disposeState(state);
        state = kept;
        active = keep.map((row) => active[row]);
        disposeBatch(batch);
        predicted.dispose();
        if (active.length) {
          batch = makeBatch(model, active.map((i) => texts[i]));
          predicted = tf.tensor1d(batch.predicted);
        }
      }
      const lastLoss = L[L.length - 1];
      const lastCorrect = C[C.length - 1];
      const info: ProgressInfo = {
        step: it + 1,
        maxSteps,
        loss: mean(active.map((ti) => lastLoss[rowOf.get(ti)!])),
        accuracy: mean(active.map((ti) => lastCorrect[rowOf.get(ti)!] / (texts[ti].length - 1))),
        bestAccuracy: mean(texts.map((t, ti) => results[ti]?.bestAccuracy ?? bestCorrect[rowOf.get(ti)!] / (t.length - 1))),
        done: B0 - active.length,
        total: B0,
        active: active.length,
        stepsPerSecond: (it + 1) / seconds,
        seconds,
      };
      printer?.update(info);
      opts.onProgress?.(info);
    }
  } finally {
    printer?.end();
    tf.dispose(pending.flatMap((p) => [p.loss, p.correct]));
    if (active.length) {
      disposeBatch(batch);
      predicted.dispose();
    }
    disposeState(state);
  }
  return results;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
