// cram(): the authors' optimisation against the shared reference trajectories (independent PyTorch,
// torch.optim.AdamW), batched = one at a time, NaN isolation, and bad input.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { cram, CramError, embeddingStd, initialMem, type CramResult } from '../src/cram/cram';
import { modelFromTensors } from '../src/io/checkpoint';
import { tfjsModel } from '../src/native/model';
import { readSafetensors } from '../src/io/safetensors';
import { ARCHITECTURES } from '../src/models/index';
import type { CausalLM } from '../src/models/types';

const REF = path.join(__dirname, 'fixtures', 'reference');
const dirs = fs
  .readdirSync(REF)
  .filter((d) => fs.existsSync(path.join(REF, d, 'vectors.json')))
  .sort();

function loadRef(dir: string): { model: CausalLM; mem: any } {
  const config = JSON.parse(fs.readFileSync(path.join(REF, dir, 'config.json'), 'utf8'));
  const model = modelFromTensors(config, readSafetensors(path.join(REF, dir, 'model.safetensors')).tensors);
  return { model, mem: JSON.parse(fs.readFileSync(path.join(REF, dir, 'vectors.json'), 'utf8')).mem_case };
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

for (const dir of dirs) {
  const type = JSON.parse(fs.readFileSync(path.join(REF, dir, 'config.json'), 'utf8')).model_type;
  const skip = type in ARCHITECTURES ? undefined : `model_type '${type}' is not implemented yet`;
  test(`${dir}: 20 AdamW steps from the reference mem follow the reference trajectory`, { skip }, async (t) => {
    await initBackend();
    const { model, mem: m } = loadRef(dir);
    const a = m.adamw;
    // syncEvery 7 does not divide 20: the device bookkeeping must still stop exactly at step 20.
    const [r] = await cram(model, [m.input_ids], {
      initMem: Float32Array.from(m.mem.flat()),
      K: m.K,
      maxSteps: a.steps,
      patience: 10_000,
      lr: a.lr,
      beta1: a.betas[0],
      beta2: a.betas[1],
      eps: a.eps,
      weightDecay: a.weight_decay,
      curveEvery: 1,
      syncEvery: 7,
      quiet: true,
    });
    assert.equal(r.steps, 20);
    assert.equal(r.status, 'max-steps');
    assert.deepEqual(
      r.curve.step,
      m.trajectory.map((s: any) => s.step),
    );
    const dLoss = maxAbs(
      r.curve.loss,
      m.trajectory.map((s: any) => s.loss),
    );
    const dMem = maxAbs(r.finalMem, m.final.mem.flat());
    t.diagnostic(`max |loss diff| ${dLoss.toExponential(2)}, max |final mem diff| ${dMem.toExponential(2)}`);
    assert.ok(dLoss <= 1e-4, `trajectory loss differs by ${dLoss}`);
    assert.ok(dMem <= 1e-4, `final mem differs by ${dMem}`);
    // Correct counts where float32 reproduces float64's (numerics.mem says so).
    if (m.trajectory.every((s: any) => s.min_top1_top2_margin > 1e-4)) {
      assert.deepEqual(
        r.curve.correct,
        m.trajectory.map((s: any) => s.correct),
      );
    }
    // Best = first step reaching the highest count; bestMem is the mem evaluated at that step.
    const counts: number[] = m.trajectory.map((s: any) => s.correct);
    const best = Math.max(...counts);
    assert.equal(r.bestCorrect, best);
    // Strict improvement over a start of 0 correct: a text that never gets one right has no best step.
    assert.equal(r.stepsToBest, best === 0 ? 0 : counts.indexOf(best) + 1);
    assert.equal(r.minLoss.toFixed(4), Math.min(...r.curve.loss).toFixed(4));
    model.dispose();
  });
}

function gqa(): CausalLM {
  return loadRef('llama_gqa').model;
}

test('init: randn(K, d) · std(E), seeded and reproducible', async () => {
  await initBackend();
  const model = gqa();
  const E = Array.from(model.embedMatrix.dataSync());
  const mu = E.reduce((a, b) => a + b, 0) / E.length;
  const std = Math.sqrt(E.reduce((a, b) => a + (b - mu) ** 2, 0) / (E.length - 1)); // unbiased, like torch.std
  assert.ok(Math.abs(embeddingStd(model) - std) < 1e-6 * std);
  const a = initialMem(model, 50, 7);
  assert.deepEqual(a, initialMem(model, 50, 7));
  assert.notDeepEqual(a, initialMem(model, 50, 8));
  const s = Math.sqrt(a.reduce((x, y) => x + y * y, 0) / a.length);
  assert.ok(Math.abs(s / std - 1) < 0.05, `init scale ${s} vs std(E) ${std}`);
  model.dispose();
});

// Batched and alone agree up to float32 noise: a backend need not sum in the same order for every
// batch shape, and AdamW's normalised step can amplify a 1e-7 difference over hundreds of steps, so
// the horizon is kept short (40 steps) while texts still stop at different times and leave the batch.
test('batched (3 texts of different lengths) equals one at a time', async () => {
  await initBackend();
  const model = gqa();
  const texts = [
    [1, 5, 9, 33, 2, 7, 81, 14, 15, 200, 3],
    [1, 44, 45, 46, 12, 250, 7],
    [1, 9, 9, 9, 120, 121, 5, 6, 7, 8, 60, 61, 62, 63, 64, 65],
  ];
  const opts = { K: 2, maxSteps: 40, patience: 12, seed: [11, 12, 13], syncEvery: 10, curveEvery: 1, quiet: true };
  const together = await cram(model, texts, opts);
  assert.ok(new Set(together.map((r) => r.steps)).size > 1, 'texts stop at different steps (the batch shrinks)');
  const same = (a: CramResult, b: CramResult, what: string) => {
    assert.deepEqual(
      [a.steps, a.status, a.bestCorrect, a.stepsToBest],
      [b.steps, b.status, b.bestCorrect, b.stepsToBest],
      what,
    );
    assert.deepEqual(a.curve.correct, b.curve.correct, `${what}: correct counts`);
    assert.ok(
      maxAbs(a.curve.loss, b.curve.loss) <= 1e-5,
      `${what}: loss curves differ by ${maxAbs(a.curve.loss, b.curve.loss)}`,
    );
    assert.ok(maxAbs(a.bestMem, b.bestMem) <= 1e-4, `${what}: best mem differs by ${maxAbs(a.bestMem, b.bestMem)}`);
    assert.ok(
      maxAbs(a.finalMem, b.finalMem) <= 1e-4,
      `${what}: final mem differs by ${maxAbs(a.finalMem, b.finalMem)}`,
    );
  };
  for (let i = 0; i < texts.length; i++) {
    const [alone] = await cram(model, [texts[i]], { ...opts, seed: [opts.seed[i]] });
    assert.equal(together[i].index, i);
    assert.deepEqual(together[i].initMem, alone.initMem);
    same(together[i], alone, `text ${i}`);
  }
  // The read-back cadence must not change any result (bookkeeping is per step on the device).
  for (const syncEvery of [1, 37]) {
    const other = await cram(model, texts, { ...opts, syncEvery });
    for (let i = 0; i < texts.length; i++) same(other[i], together[i], `text ${i}, syncEvery ${syncEvery}`);
  }
  model.dispose();
});

test('stopping: patience counts iterations without a strictly better accuracy; 100% stops at once', async () => {
  await initBackend();
  const model = gqa();
  const text = [1, 5, 9, 33, 2, 7, 81, 14, 15, 200, 3, 17, 19, 23];
  const [r] = await cram(model, [text], { K: 1, maxSteps: 400, patience: 25, curveEvery: 1, seed: 3, quiet: true });
  // Replay the authors' Tracker on the per-step correct counts.
  let best = 0,
    counter = 0,
    bestIt = -1,
    stop = -1;
  r.curve.correct.forEach((c, it) => {
    if (stop >= 0) return;
    if (c > best) [best, counter, bestIt] = [c, 0, it];
    else counter++;
    if (best === text.length - 1 || counter >= 25) stop = it + 1;
  });
  assert.equal(r.steps, stop < 0 ? 400 : stop);
  assert.equal(r.bestCorrect, best);
  assert.equal(r.stepsToBest, bestIt + 1);
  assert.equal(r.status, best === text.length - 1 ? 'decoded' : stop < 0 ? 'max-steps' : 'patience');
  // A 2-token text decodes almost at once with a trainable vector: status decoded, accuracy 1.
  const [easy] = await cram(model, [[1, 42]], { K: 1, quiet: true, maxSteps: 500 });
  assert.equal(easy.status, 'decoded');
  assert.equal(easy.bestAccuracy, 1);
  assert.equal(easy.steps, easy.stepsToBest);
  model.dispose();
});

test('NaN in one text stops that text with status nan and leaves the others as they would be alone', async () => {
  await initBackend();
  const inner = tfjsModel(gqa()); // the wrapper's forward runs inside tf.grad: the tfjs Llama, not the native one
  // A model whose loss is NaN for any row whose first mem coordinate is below -50
  // (0·log(x+50): NaN there, an exact 0 with a zero gradient elsewhere).
  const poisoned: CausalLM = {
    info: inner.info,
    embedMatrix: inner.embedMatrix,
    numParams: inner.numParams,
    embed: (ids) => inner.embed(ids),
    forward: (x) =>
      tf.tidy(() => {
        const first = tf.slice(x, [0, 0, 0], [-1, 1, 1]);
        return tf.add(inner.forward(x), tf.mul(0, tf.log(tf.add(first, 50)))) as tf.Tensor3D;
      }),
    dispose: () => inner.dispose(),
  };
  const texts = [
    [1, 5, 9, 33, 2, 7],
    [1, 44, 45, 46, 12, 250, 7, 8],
    [1, 3, 4, 5],
  ];
  const inits = texts.map((_, i) => initialMem(inner, 1, 100 + i));
  inits[1] = Float32Array.from(inits[1]);
  inits[1][0] = -100;
  const opts = { K: 1, maxSteps: 30, patience: 30, curveEvery: 1, quiet: true };
  await cram(poisoned, texts, { ...opts, initMem: inits }); // warms the model's per-length caches
  const before = tf.memory().numTensors;
  const rs = await cram(poisoned, texts, { ...opts, initMem: inits });
  assert.equal(tf.memory().numTensors, before, 'no tensors leak when a text goes NaN');
  assert.equal(rs[1].status, 'nan');
  assert.equal(rs[1].steps, 1);
  assert.deepEqual(rs[1].bestMem, inits[1], 'a NaN text keeps its last good mem');
  for (const i of [0, 2]) {
    const [alone] = await cram(inner, [texts[i]], { ...opts, initMem: [inits[i]] });
    assert.notEqual(rs[i].status, 'nan');
    assert.equal(rs[i].steps, alone.steps);
    assert.equal(rs[i].bestCorrect, alone.bestCorrect);
    assert.ok(maxAbs(rs[i].curve.loss, alone.curve.loss) <= 1e-5);
    assert.ok(maxAbs(rs[i].bestMem, alone.bestMem) <= 1e-4);
  }
  inner.dispose();
});

test('bad input gets one clear error', async () => {
  await initBackend();
  const model = gqa();
  const ok = [1, 5, 9];
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['K = 0', () => cram(model, [ok], { K: 0 }), /K .* positive integer, got 0/],
    ['K = 1.5', () => cram(model, [ok], { K: 1.5 }), /positive integer/],
    ['no texts', () => cram(model, []), /no texts/],
    ['empty text', () => cram(model, [ok, []]), /text 1 is empty/],
    ['one token', () => cram(model, [[1]]), /at least 2/],
    ['id outside vocab', () => cram(model, [[1, 300]]), /token id 300, outside the vocabulary \[0, 300\)/],
    [
      'beyond context',
      () => cram(model, [Array.from({ length: model.info.maxPositions }, () => 1)], { K: 1 }),
      /beyond the model's context/,
    ],
    ['NaN init', () => cram(model, [ok], { initMem: new Float32Array(64).fill(NaN) }), /NaN or Infinity/],
    ['init width', () => cram(model, [ok], { K: 1, initMem: new Float32Array(10) }), /has 10 values/],
    ['negative lr', () => cram(model, [ok], { lr: -1 }), /lr must be/],
  ];
  for (const [name, run, msg] of cases)
    await assert.rejects(run, (e: Error) => e instanceof CramError && msg.test(e.message), name);
  model.dispose();
});
