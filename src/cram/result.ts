// What one text's cram run ends with, built the same way by both engines (cram.ts, native/cram.ts)
// from the per-text bookkeeping they keep (on the device, or in C).
import type { Schedule } from './schedule';
import type { LowRank } from './lowrank';
import { mean } from '../math';
import type { AdamWConfig } from './adamw';
import type { ProgressInfo } from './progress';

/** Why a text stopped; STATUS[code] for the codes both engines store (native/src/cram.h ST_*). */
export type CramStatus = 'decoded' | 'patience' | 'max-steps' | 'nan';
export const STATUS: readonly CramStatus[] = ['decoded', 'patience', 'max-steps', 'nan'];
export const STATUS_CODE = { decoded: 0, patience: 1, maxSteps: 2, nan: 3 } as const;

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
  /** Positions held at the best mem: argmax right, or by the run's margin when one was given. */
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
  curve: Curve;
  /** Wall time until this text's result was read back. */
  seconds: number;
  /**
   * Numbers trained for this text: K·memDim, or K·rank with a low-rank mem (W and b fixed, seeded), plus
   * memDim·rank + memDim when W and b are trained (divided by the batch's texts when they share one W, b).
   */
  trainable?: number;
  /** Low-rank mem: the z behind bestMem (K·rank values). */
  bestZ?: Float32Array;
}

export type Curve = { step: number[]; loss: number[]; correct: number[] };

/** cram()'s options with the defaults filled in, and each text's initial mem: what an engine runs. */
export interface CramRun {
  K: number;
  inits: Float32Array[];
  adam: AdamWConfig;
  schedule: Schedule;
  /** Low-rank mem (lowrank.ts): the state holds z [K, rank] per text; inits stay the expanded mems. */
  lowRank?: LowRank;
  maxSteps: number;
  patience: number;
  /** Positions count as held when target logit − best other ≥ margin (0: argmax right). */
  margin: number;
  syncEvery: number;
  curveEvery: number;
  quiet?: boolean;
  onProgress?: (p: ProgressInfo) => void;
  onText?: (r: CramResult) => void | Promise<void>;
}

export { CramError } from './error';

/** One text's bookkeeping when it stopped, as host numbers (bestStep: 0-based iteration, -1 before any). */
export interface Bookkeeping {
  bestCorrect: number;
  bestStep: number;
  doneAt: number;
  status: number;
  minLoss: number;
  bestLoss: number;
}

export function textResult(
  index: number,
  ids: number[],
  K: number,
  mems: { best: Float32Array; final: Float32Array; init: Float32Array },
  b: Bookkeeping,
  curve: Curve,
  seconds: number,
): CramResult {
  const n = ids.length - 1;
  return {
    index,
    tokens: ids.length,
    K,
    predicted: n,
    bestMem: mems.best,
    finalMem: mems.final,
    initMem: mems.init,
    bestCorrect: b.bestCorrect,
    bestAccuracy: b.bestCorrect / n,
    stepsToBest: b.bestStep + 1,
    steps: b.doneAt,
    status: STATUS[b.status],
    minLoss: b.minLoss,
    lossAtBest: b.bestStep >= 0 ? b.bestLoss : null,
    curve,
    seconds,
  };
}

/** Record iteration `it` of a text in its curve: every `every`-th, and its last one. */
export function sampleCurve(
  curve: Curve,
  it: number,
  loss: number,
  correct: number,
  every: number,
  doneAt: number,
): void {
  if (it % every === 0 || it + 1 === doneAt) {
    curve.step.push(it);
    curve.loss.push(loss);
    curve.correct.push(correct);
  }
}

/** The progress line's numbers: live texts' current loss/accuracy, every text's best so far. */
export function progressInfo(o: {
  step: number;
  maxSteps: number;
  texts: number[][];
  live: { text: number; loss: number; correct: number }[];
  best: (text: number) => number;
  /** The texts' results so far: once none is live, the line shows their kept mems' loss and accuracy. */
  results?: (CramResult | undefined)[];
  seconds: number;
}): ProgressInfo {
  const acc = (ti: number, c: number) => c / (o.texts[ti].length - 1);
  const shown = o.live.length
    ? o.live.map((l) => ({ loss: l.loss, accuracy: acc(l.text, l.correct) }))
    : (o.results ?? []).flatMap((r) => (r ? [{ loss: r.lossAtBest ?? r.minLoss, accuracy: r.bestAccuracy }] : []));
  return {
    step: o.step,
    maxSteps: o.maxSteps,
    loss: mean(shown.map((l) => l.loss)),
    accuracy: mean(shown.map((l) => l.accuracy)),
    bestAccuracy: mean(o.texts.map((_, ti) => acc(ti, o.best(ti)))),
    done: o.texts.length - o.live.length,
    total: o.texts.length,
    active: o.live.length,
    stepsPerSecond: o.step / o.seconds,
    seconds: o.seconds,
  };
}
