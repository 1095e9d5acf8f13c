// The anchor's loss and schedule options (cram/schedule.ts): the formulas, the weighted loss the
// engines report, and the native engine following the tfjs engine's trajectory with every option on.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { cram, CramError, initialMem, type CramOptions } from '../src/cram/cram';
import { lrAt, predictionWeights, resolveSchedule, scheduleChanges, SCHEDULE_DEFAULTS } from '../src/cram/schedule';
import { loadModel } from '../src/io/checkpoint';
import { nativeAddon, nativeUnavailable } from '../src/native/index';
import { tfjsModel } from '../src/native/model';
import { recordPrint } from '../src/runs/record';
import { shiftedCE } from '../src/score';
import { MODELS_DIR, sharedModel } from './helpers/shared';

const s260 = sharedModel('stories260K');
const samplesFile = path.join(MODELS_DIR, '..', 'datasets', 'stories260k-samples.json');
const noNative = nativeAddon() ? undefined : `native engine not built: ${nativeUnavailable()}`;

test('schedule: cosine lr, leading weights, defaults and bad values', () => {
  const cos = resolveSchedule({ lrSchedule: 'cosine', minLr: 1e-3 });
  assert.ok(Math.abs(lrAt(cos, 1e-2, 0, 100) - 1e-2) < 1e-12);
  assert.ok(Math.abs(lrAt(cos, 1e-2, 50, 100) - 5.5e-3) < 1e-12);
  assert.ok(Math.abs(lrAt(cos, 1e-2, 100, 100) - 1e-3) < 1e-12);
  assert.equal(lrAt(SCHEDULE_DEFAULTS, 1e-2, 50, 100), 1e-2);
  const w = predictionWeights(resolveSchedule({ leadingWeight: 4, leadingCount: 3 }), 10);
  assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.ok(Math.abs(w[0] / w[9] - 4) < 1e-12 && w[2] === w[0] && w[3] === w[9]);
  assert.deepEqual(Array.from(predictionWeights(SCHEDULE_DEFAULTS, 4)), [0.25, 0.25, 0.25, 0.25]);
  // a count past the text weighs every prediction alike: the plain mean again
  assert.deepEqual(
    Array.from(predictionWeights(resolveSchedule({ leadingWeight: 3, leadingCount: 9 }), 2)),
    [0.5, 0.5],
  );
  assert.equal(scheduleChanges({ lrSchedule: 'constant', leadingWeight: 1 }), undefined);
  assert.deepEqual(scheduleChanges({ clipGradNorm: 1, minLr: 0 }), { clipGradNorm: 1 });
  assert.throws(() => resolveSchedule({ lrSchedule: 'linear' as 'cosine' }), CramError);
  assert.throws(() => resolveSchedule({ leadingCount: 1.5 }), /leadingCount must be an integer ≥ 0, got 1.5/);
  assert.throws(() => resolveSchedule({ leadingWeight: 0 }), /leadingWeight must be above 0/);
  assert.throws(() => resolveSchedule({ clipGradNorm: -1 }), /clipGradNorm must be a finite number ≥ 0/);
  // Fingerprints: unchanged by default values, changed by each option.
  const base = { ids: [1, 2, 3], K: 1, seed: 0, weightsHash: 'w', options: {} };
  const plain = recordPrint(base);
  assert.equal(recordPrint({ ...base, options: { lrSchedule: 'constant', clipGradNorm: 0 } }), plain);
  const prints = [{ leadingWeight: 2, leadingCount: 4 }, { lrSchedule: 'cosine' as const }, { clipGradNorm: 1 }].map(
    (o) => recordPrint({ ...base, options: o }),
  );
  assert.equal(new Set([plain, ...prints]).size, 4);
});

const texts = (n: number, len: number): number[][] =>
  JSON.parse(fs.readFileSync(samplesFile, 'utf8'))
    .samples.slice(0, n)
    .map((s: { ids: number[] }) => s.ids.slice(0, len));

test('leading weight: the reported loss is the weighted mean of the per-position CE', { skip: s260.skip }, async () => {
  await initBackend();
  const { model } = await loadModel(s260.dir!);
  const [ids] = texts(1, 24);
  const [w, n] = [5, 4];
  const mem = initialMem(model, 1, 3);
  const m = tfjsModel(model); // outside tidy: it may build the tfjs weights
  const ce = tf.tidy(() => {
    const x = tf.concat(
      [tf.tensor3d(mem, [1, 1, model.info.memDim]), m.embed(tf.tensor2d([ids], undefined, 'int32'))],
      1,
    );
    return shiftedCE(m.forward(x as tf.Tensor3D), 1, tf.tensor2d([ids.slice(1)], undefined, 'int32')).ce.dataSync();
  });
  const R = ids.length - 1;
  let want = 0;
  for (let t = 0; t < R; t++) want += ((t < n ? w : 1) * ce[t]) / (n * w + R - n);
  const engines = noNative ? (['tfjs'] as const) : (['tfjs', 'native'] as const);
  for (const engine of engines) {
    const [r] = await cram(model, [ids], {
      initMem: mem,
      maxSteps: 1,
      leadingWeight: w,
      leadingCount: n,
      engine,
      quiet: true,
      curveEvery: 1,
    });
    assert.ok(Math.abs(r.curve.loss[0] - want) <= 1e-5 * want, `${engine}: loss ${r.curve.loss[0]} vs ${want}`);
  }
  model.dispose();
});

test(
  'native and tfjs follow the same trajectory with leading weight, cosine lr and grad-norm clipping on; each option changes it',
  { skip: s260.skip ?? noNative },
  async (t) => {
    await initBackend();
    const { model } = await loadModel(s260.dir!);
    const batch = [...texts(2, 20), texts(3, 12)[2]]; // different lengths in one batch
    const base: CramOptions = { maxSteps: 20, patience: 20, seed: 5, quiet: true, curveEvery: 1, syncEvery: 7 };
    const on: CramOptions = {
      leadingWeight: 4,
      leadingCount: 3,
      lrSchedule: 'cosine',
      minLr: 1e-3,
      clipGradNorm: 0.05,
    };
    // plain mem, and low-rank mem (the clip then acts on z's gradient)
    for (const extra of [{}, { rank: 8 }]) {
      const nat = await cram(model, batch, { ...base, ...on, ...extra, engine: 'native' });
      const tfr = await cram(model, batch, { ...base, ...on, ...extra, engine: 'tfjs' });
      let lossDiff = 0;
      let memDiff = 0;
      for (const [i, r] of nat.entries()) {
        assert.deepEqual(r.curve.step, tfr[i].curve.step);
        r.curve.loss.forEach(
          (l, k) => (lossDiff = Math.max(lossDiff, Math.abs(l - tfr[i].curve.loss[k]) / Math.abs(l))),
        );
        r.finalMem.forEach((x, k) => (memDiff = Math.max(memDiff, Math.abs(x - tfr[i].finalMem[k]))));
      }
      const what = `${JSON.stringify(extra)} 20 steps, 3 texts`;
      t.diagnostic(
        `${what}: max rel loss diff ${lossDiff.toExponential(2)}, max |mem diff| ${memDiff.toExponential(2)}`,
      );
      assert.ok(lossDiff <= 1e-4, `${what}: loss curves differ by ${lossDiff}`);
      assert.ok(memDiff <= 1e-4, `${what}: final mems differ by ${memDiff}`);
    }
    // Each option alone moves the native trajectory away from the authors' defaults.
    const plain = await cram(model, batch, { ...base, engine: 'native' });
    for (const o of [
      { leadingWeight: 4, leadingCount: 3 },
      { lrSchedule: 'cosine' as const, minLr: 1e-3 },
      { clipGradNorm: 0.05 },
    ]) {
      const r = await cram(model, batch, { ...base, ...o, engine: 'native' });
      const d = Math.max(...r.flatMap((x, i) => Array.from(x.finalMem, (v, k) => Math.abs(v - plain[i].finalMem[k]))));
      assert.ok(d > 1e-3, `${JSON.stringify(o)} left the trajectory unchanged (max |mem diff| ${d})`);
    }
    model.dispose();
  },
);
