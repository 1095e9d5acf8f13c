// cram() on the native engine: the addon runs `syncEvery` steps per call (forward, loss, backward to
// mem, bookkeeping, AdamW, all in C); here we only turn its state into CramResults, curves and progress.
// Same semantics as the tfjs loop in cram.ts, except that a finished text leaves the batch at once.
import type { CausalLM } from '../models/types';
import type { AdamWConfig } from '../cram/adamw';
import type { CramResult, CramStatus } from '../cram/cram';
import { progressPrinter, type ProgressInfo } from '../cram/progress';
import { nativeAddon, nativeModel } from './index';

const STATUS: CramStatus[] = ['decoded', 'patience', 'max-steps', 'nan'];

export interface NativeCramArgs {
  K: number;
  inits: Float32Array[];
  adam: AdamWConfig;
  maxSteps: number;
  patience: number;
  syncEvery: number;
  curveEvery: number;
  quiet?: boolean;
  onProgress?: (p: ProgressInfo) => void;
  onText?: (r: CramResult) => void | Promise<void>;
}

export async function cramNative(model: CausalLM, texts: number[][], a: NativeCramArgs): Promise<CramResult[]> {
  const addon = nativeAddon()!;
  const h = nativeModel(model);
  const B = texts.length;
  const Kd = a.K * model.info.memDim;
  const offsets = new Int32Array(B);
  texts.reduce((o, t, i) => ((offsets[i] = o), o + t.length), 0);
  const mem = new Float32Array(B * Kd);
  a.inits.forEach((m, i) => mem.set(m, i * Kd));
  const S = a.syncEvery;
  const st = {
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
    lossOut: new Float32Array(S * B),
    correctOut: new Int32Array(S * B),
    ...a.adam,
    maxSteps: a.maxSteps,
    patience: a.patience,
    it0: 0,
  };
  const printer = a.quiet ? undefined : progressPrinter();
  const results: CramResult[] = new Array(B);
  const curves = texts.map(() => ({ step: [] as number[], loss: [] as number[], correct: [] as number[] }));
  const t0 = performance.now();
  try {
    while (results.filter(Boolean).length < B) {
      const steps = Math.min(S, a.maxSteps - st.it0);
      if (st.lossOut.length !== steps * B) [st.lossOut, st.correctOut] = [new Float32Array(steps * B), new Int32Array(steps * B)];
      const ran = addon.cramSteps(h, st, steps);
      const seconds = (performance.now() - t0) / 1000;
      for (let k = 0; k < ran; k++) {
        const i = st.it0 + k;
        for (let b = 0; b < B; b++) {
          if (results[b] || (st.done[b] && i >= st.doneAt[b])) continue; // not live at step i
          if (i % a.curveEvery === 0 || i + 1 === st.doneAt[b]) {
            curves[b].step.push(i);
            curves[b].loss.push(st.lossOut[k * B + b]);
            curves[b].correct.push(st.correctOut[k * B + b]);
          }
        }
      }
      st.it0 += ran;
      for (let b = 0; b < B; b++) {
        if (results[b] || !st.done[b]) continue;
        const n = texts[b].length - 1;
        const r: CramResult = {
          index: b,
          tokens: texts[b].length,
          K: a.K,
          predicted: n,
          bestMem: st.bestMem.slice(b * Kd, (b + 1) * Kd),
          finalMem: st.mem.slice(b * Kd, (b + 1) * Kd),
          initMem: a.inits[b],
          bestCorrect: st.bestCorrect[b],
          bestAccuracy: st.bestCorrect[b] / n,
          stepsToBest: st.bestStep[b] + 1,
          steps: st.doneAt[b],
          status: STATUS[st.status[b]],
          minLoss: st.minLoss[b],
          lossAtBest: st.bestStep[b] >= 0 ? st.bestLoss[b] : null,
          curve: curves[b],
          seconds,
        };
        results[b] = r;
        await a.onText?.(r);
      }
      const live = texts.map((_, b) => b).filter((b) => !results[b]);
      const last = ran - 1;
      const info: ProgressInfo = {
        step: st.it0,
        maxSteps: a.maxSteps,
        loss: mean(live.map((b) => st.lossOut[last * B + b])),
        accuracy: mean(live.map((b) => st.correctOut[last * B + b] / (texts[b].length - 1))),
        bestAccuracy: mean(texts.map((t, b) => st.bestCorrect[b] / (t.length - 1))),
        done: B - live.length,
        total: B,
        active: live.length,
        stepsPerSecond: st.it0 / seconds,
        seconds,
      };
      printer?.update(info);
      a.onProgress?.(info);
    }
  } finally {
    printer?.end();
  }
  return results;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : NaN;
}
