// cram() on the native engine: the addon runs `syncEvery` steps per call (forward, loss, backward to
// mem, bookkeeping, AdamW, all in C); here we only turn its state into CramResults, curves and progress.
// Same semantics as the tfjs loop in cram.ts, except that a finished text leaves the batch at once.
// Low-rank (run.lowRank): the addon holds z (and W, b with their AdamW moments) and expands mem itself.
import type { CausalLM } from '../models/types';
import { progressPrinter } from './progress';
import { progressInfo, sampleCurve, textResult, type CramResult, type CramRun, type Curve } from './result';
import { nativeAddon, nativeModel } from '../native/index';
import type { LowRank } from './lowrank';
import { concatF32 } from '../math';

export async function cramNative(model: CausalLM, texts: number[][], a: CramRun): Promise<CramResult[]> {
  const addon = nativeAddon()!;
  const h = nativeModel(model);
  const B = texts.length;
  const Kd = a.K * model.info.memDim;
  const st = cramState(texts, a, model.info.memDim);
  const low = a.lowRank && { rank: a.lowRank.rank, bestZ: st.bestZ! };
  const printer = a.quiet ? undefined : progressPrinter();
  const results: CramResult[] = new Array(B);
  const curves: Curve[] = texts.map(() => ({ step: [], loss: [], correct: [] }));
  const t0 = performance.now();
  try {
    while (results.filter(Boolean).length < B) {
      const steps = Math.min(a.syncEvery, a.maxSteps - st.it0);
      if (st.lossOut.length !== steps * B)
        [st.lossOut, st.correctOut] = [new Float32Array(steps * B), new Int32Array(steps * B)];
      const ran = addon.cramSteps(h, st, steps);
      // Let timers and sockets run between calls (a queue worker must renew its job's lock).
      await new Promise((r) => setImmediate(r));
      const seconds = (performance.now() - t0) / 1000;
      for (let k = 0; k < ran; k++) {
        const i = st.it0 + k;
        for (let b = 0; b < B; b++) {
          if (results[b] || (st.done[b] && i >= st.doneAt[b])) continue; // not live at step i
          sampleCurve(curves[b], i, st.lossOut[k * B + b], st.correctOut[k * B + b], a.curveEvery, st.doneAt[b]);
        }
      }
      st.it0 += ran;
      for (let b = 0; b < B; b++) {
        if (results[b] || !st.done[b]) continue;
        const mems = {
          best: st.bestMem.slice(b * Kd, (b + 1) * Kd),
          final: st.mem.slice(b * Kd, (b + 1) * Kd),
          init: a.inits[b],
        };
        const book = {
          bestCorrect: st.bestCorrect[b],
          bestStep: st.bestStep[b],
          doneAt: st.doneAt[b],
          status: st.status[b],
          minLoss: st.minLoss[b],
          bestLoss: st.bestLoss[b],
        };
        const r = textResult(b, texts[b], a.K, mems, book, curves[b], seconds);
        if (low) r.bestZ = low.bestZ.slice(b * a.K * low.rank, (b + 1) * a.K * low.rank);
        results[b] = r;
        await a.onText?.(r);
      }
      const live = texts.map((_, b) => b).filter((b) => !results[b]);
      const last = ran - 1;
      const info = progressInfo({
        step: st.it0,
        maxSteps: a.maxSteps,
        texts,
        live: live.map((b) => ({ text: b, loss: st.lossOut[last * B + b], correct: st.correctOut[last * B + b] })),
        best: (b) => st.bestCorrect[b],
        results,
        seconds,
      });
      printer?.update(info);
      a.onProgress?.(info);
    }
  } finally {
    printer?.end();
  }
  return results;
}

/** The addon's state for one batch: mem from run.inits with zero moments, fresh bookkeeping, read-back
 *  buffers for run.syncEvery steps; with run.lowRank also z from z0, W and b (one per W: trained in place
 *  when lr.train) and their moments. */
export function cramState(texts: number[][], a: CramStateRun, memDim: number) {
  const B = texts.length;
  const Kd = a.K * memDim;
  const offsets = new Int32Array(B);
  texts.reduce((o, t, i) => ((offsets[i] = o), o + t.length), 0);
  const mem = new Float32Array(B * Kd);
  a.inits.forEach((m, i) => mem.set(m, i * Kd));
  return {
    K: a.K,
    ids: Int32Array.from(texts.flat()),
    offsets,
    lengths: Int32Array.from(texts, (t) => t.length),
    mem,
    m: new Float32Array(B * Kd),
    v: new Float32Array(B * Kd),
    bestMem: Float32Array.from(mem),
    bestCorrect: new Int32Array(B),
    bestStep: new Int32Array(B).fill(-1),
    counter: new Int32Array(B),
    done: new Int32Array(B),
    doneAt: new Int32Array(B),
    status: new Int32Array(B),
    bestLoss: new Float32Array(B).fill(NaN),
    minLoss: new Float32Array(B).fill(Infinity),
    lossOut: new Float32Array(a.syncEvery * B),
    correctOut: new Int32Array(a.syncEvery * B),
    ...a.adam,
    ...a.schedule,
    maxSteps: a.maxSteps,
    patience: a.patience,
    margin: a.margin,
    it0: 0,
    ...(a.lowRank ? lowRankState(a.lowRank) : {}),
  };
}

export type CramStateRun = Pick<
  CramRun,
  'K' | 'inits' | 'adam' | 'schedule' | 'lowRank' | 'maxSteps' | 'patience' | 'margin' | 'syncEvery'
>;

function lowRankState(lr: LowRank) {
  const z = concatF32(lr.z0);
  const W = concatF32(lr.W);
  const bias = concatF32(lr.W.map(() => lr.b)); // one per W
  return {
    rank: lr.rank,
    rankShared: lr.shared,
    rankTrain: lr.train,
    z,
    zm: new Float32Array(z.length),
    zv: new Float32Array(z.length),
    bestZ: Float32Array.from(z),
    W,
    Wm: new Float32Array(W.length),
    Wv: new Float32Array(W.length),
    bias,
    bm: new Float32Array(bias.length),
    bv: new Float32Array(bias.length),
  };
}
