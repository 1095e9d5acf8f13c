// Low-rank mem (cram/lowrank.ts, mem = W z + b): the gradient to z is the chain rule Wᵀ·dL/dmem on
// either engine, the native and tfjs engines agree on it and on a short trajectory, and the result's
// mem is what z gives (decode reads it), with K·rank trainable numbers per text. The native loop's
// gradients to z, W and b (cram.c) match tf.grad, a shared W gets the sum of its texts' gradients, and a
// trained-W/b trajectory matches AdamW written out in tfjs.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { cram, CramError, embeddingStd } from '../src/cram/cram';
import { batchLoss, disposeBatch, makeBatch } from '../src/cram/loss';
import { expandHost, expandMem, lowRankBasis } from '../src/cram/lowrank';
import { loadModel } from '../src/io/checkpoint';
import { nativeAddon, nativeModel, nativeUnavailable } from '../src/native/index';
import { NativeModel, tfjsModel } from '../src/native/model';
import type { CausalLM } from '../src/models/types';
import { MODELS_DIR, sharedModel } from './helpers/shared';
import { adamwStep, AUTHORS_ADAMW } from '../src/cram/adamw';
import { progressiveCram } from '../src/cram/progressive';
import { cramState } from '../src/cram/native';
import { resolveSchedule } from '../src/cram/schedule';

const s260 = sharedModel('stories260K');
const samplesFile = path.join(MODELS_DIR, '..', 'datasets', 'stories260k-samples.json');
const skip = s260.skip ?? (nativeAddon() ? undefined : `native engine not built: ${nativeUnavailable()}`);
const texts = (n: number, len: number): number[][] =>
  JSON.parse(fs.readFileSync(samplesFile, 'utf8'))
    .samples.slice(0, n)
    .map((s: { ids: number[] }) => s.ids.slice(0, len));
const rel = (a: Float32Array, b: Float32Array) => {
  let [num, den] = [0, 0];
  a.forEach((x, i) => ((num += (x - b[i]) ** 2), (den += b[i] ** 2)));
  return Math.sqrt(num / den);
};

test('low-rank: dL/dz = Wᵀ·dL/dmem on both engines, and the engines agree', { skip }, async (t) => {
  await initBackend();
  const { model } = await loadModel(s260.dir!);
  assert.ok(model instanceof NativeModel, 'stories260K loads as a NativeModel where the addon is built');
  const [K, rank, d] = [2, 8, model.info.memDim];
  const ids = texts(2, 24);
  const tfBytes = tf.memory().numBytes;
  const lr = lowRankBasis(model, K, rank, [3, 4], embeddingStd(model));
  // b is E's mean row, read in C: no tfjs copy of the embedding is made (1 GB at a 128k vocabulary)
  assert.ok(tf.memory().numBytes - tfBytes < model.info.vocabSize * d, 'a tfjs copy of E was made for b');
  const meanTf = tf.tidy(() => tf.mean(model.embedMatrix, 0)).dataSync() as Float32Array;
  assert.ok(rel(lr.b, meanTf) < 1e-6, `b vs tf.mean(E, 0): ${rel(lr.b, meanTf)}`);
  // W's spread: W·z has E's std for z ~ randn (within sampling error of 2·8·64 draws)
  const m0 = Float32Array.from([...expandHost(lr.z0[0], lr.W[0], lr.b, rank)].map((x, i) => x - lr.b[i % d]));
  const sd = Math.sqrt(m0.reduce((s, x) => s + x * x, 0) / m0.length);
  assert.ok(Math.abs(sd / embeddingStd(model) - 1) < 0.35, `W·z std ${sd} vs std(E) ${embeddingStd(model)}`);
  const z = tf.tensor3d([...lr.z0[0], ...lr.z0[1]], [2, K, rank]);
  const W = tf.tensor3d([...lr.W[0], ...lr.W[1]], [2, d, rank]);
  const b = tf.tensor1d(lr.b);
  const grads = (m: CausalLM) => {
    const batch = makeBatch(m, ids);
    const loss = (mem: tf.Tensor3D) => tf.sum(batchLoss(m, mem, batch).loss);
    const dz = tf.grad((zz: tf.Tensor) => loss(expandMem(zz as tf.Tensor3D, W, b)))(z);
    const dmem = tf.grad((mm: tf.Tensor) => loss(mm as tf.Tensor3D))(expandMem(z, W, b));
    const chain = tf.matMul(dmem, W); // [B, K, d]·[B, d, rank]: dz_j = Wᵀ dmem_j
    const out = [dz, chain].map((x) => x.dataSync() as Float32Array);
    tf.dispose([dz, dmem, chain]);
    disposeBatch(batch);
    return out;
  };
  const [natDz, natChain] = grads(model); // forward and input-gradient in the addon
  const [tfDz, tfChain] = grads(tfjsModel(model));
  const r = { nativeChain: rel(natDz, natChain), tfjsChain: rel(tfDz, tfChain), nativeVsTfjs: rel(natDz, tfDz) };
  t.diagnostic(`relative L2 differences: ${JSON.stringify(r)}`);
  assert.ok(r.nativeChain <= 1e-5 && r.tfjsChain <= 1e-5, `chain rule vs tf.grad: ${JSON.stringify(r)}`);
  assert.ok(r.nativeVsTfjs <= 1e-5, `native vs tfjs dL/dz: ${r.nativeVsTfjs}`);
  tf.dispose([z, W, b]);
  model.dispose();
});

test('low-rank cram: native and tfjs follow the same 20-step trajectory; results hold W z + b', { skip }, async (t) => {
  await initBackend();
  const { model } = await loadModel(s260.dir!);
  const batch = [...texts(2, 20), texts(3, 12)[2]];
  const opts = { K: 2, rank: 8, maxSteps: 20, patience: 20, seed: 7, quiet: true, curveEvery: 1, syncEvery: 7 };
  const nat = await cram(model, batch, { ...opts, engine: 'native' });
  const tfr = await cram(model, batch, { ...opts, engine: 'tfjs' });
  let lossDiff = 0;
  for (const [i, r] of nat.entries()) {
    assert.equal(r.trainable, 2 * 8);
    assert.equal(r.bestMem.length, 2 * model.info.memDim);
    r.curve.loss.forEach((l, k) => (lossDiff = Math.max(lossDiff, Math.abs(l - tfr[i].curve.loss[k]) / l)));
    assert.ok(rel(r.finalMem, tfr[i].finalMem) <= 1e-4, `text ${i}: final mems differ`);
    // the init is W z0 + b for this text's seed
    const lr = lowRankBasis(model, 2, 8, [opts.seed + i], embeddingStd(model));
    assert.ok(rel(r.initMem, expandHost(lr.z0[0], lr.W[0], lr.b, 8)) < 1e-7);
    // every mem it returns lies in the text's affine subspace: mem - b is in W's column space
    const Wt = tf.tensor2d(lr.W[0], [model.info.memDim, 8]);
    const x = tf.sub(tf.tensor2d(r.bestMem, [2, model.info.memDim]), tf.tensor1d(lr.b));
    const proj = tf.tidy(() => {
      const [q] = tf.linalg.qr(Wt); // orthonormal basis of W's columns [d, 8]
      return tf.sub(x, tf.matMul(tf.matMul(x, q), q, false, true)).dataSync() as Float32Array;
    });
    const off = Math.sqrt(proj.reduce((s, v) => s + v * v, 0) / proj.length);
    assert.ok(off < 1e-4, `text ${i}: best mem leaves the subspace by ${off}`);
    tf.dispose([Wt, x]);
  }
  t.diagnostic(`max rel loss diff over 20 steps, 3 texts: ${lossDiff.toExponential(2)}`);
  assert.ok(lossDiff <= 1e-4, `loss curves differ by ${lossDiff}`);
  assert.ok(
    nat.some((r, i) => r.curve.loss[19] < r.curve.loss[0] && tfr[i].curve.loss[19] < tfr[i].curve.loss[0]),
    'no loss fell',
  );
  await assert.rejects(
    cram(model, batch, { rank: 65 }),
    (e: Error) => e instanceof CramError && /rank must be an integer in \[1, 64\]/.test(e.message),
  );
  model.dispose();
});

/** cram()'s native state for B texts with a low-rank mem (src/cram/native.ts's cramState), one step's gradients out. */
function lowRankState(
  ids: number[][],
  K: number,
  z: Float32Array,
  W: Float32Array,
  bias: Float32Array,
  o: { shared: boolean; d: number; rank: number },
) {
  const split = (x: Float32Array, n: number) =>
    Array.from({ length: n }, (_, i) => x.slice((i * x.length) / n, ((i + 1) * x.length) / n));
  const lowRank = { rank: o.rank, W: split(W, o.shared ? 1 : ids.length), b: bias.slice(0, o.d) };
  const run = {
    K,
    inits: ids.map(() => new Float32Array(K * o.d)),
    adam: AUTHORS_ADAMW,
    schedule: resolveSchedule({}),
    lowRank: { ...lowRank, z0: split(z, ids.length), train: true, shared: o.shared },
    maxSteps: 5000,
    patience: 2000,
    margin: 0,
    syncEvery: 1,
  };
  const st = cramState(ids, run, o.d);
  st.bias!.set(bias); // one bias per W as given (distinct per text, so that db is tested on distinct values)
  const zeros = (n: number) => new Float32Array(n);
  const low = { z: st.z!, W: st.W!, bias: st.bias! };
  return { ...st, ...low, gradOut: zeros(z.length), gradWOut: zeros(W.length), gradBiasOut: zeros(bias.length) };
}

test(
  "native low-rank loop: dz, dW, db match tf.grad; a shared W, b gets the sum of its texts' gradients",
  { skip },
  async (t) => {
    await initBackend();
    const { model } = await loadModel(s260.dir!);
    const addon = nativeAddon()!;
    const [K, rank, d] = [2, 8, model.info.memDim];
    const ids = [...texts(2, 24), texts(3, 14)[2]];
    const B = ids.length;
    const lr = lowRankBasis(model, K, rank, [3, 4, 5], embeddingStd(model));
    const z = Float32Array.from(lr.z0.flatMap((x) => [...x]));
    const W = Float32Array.from(lr.W.flatMap((x) => [...x]));
    // per-text biases apart from E's mean row, so that db is tested on distinct values
    const bias = Float32Array.from({ length: B * d }, (_, i) => lr.b[i % d] + 0.01 * Math.sin(i));
    const tfm = tfjsModel(model);
    const batch = makeBatch(tfm, ids);
    // tf.grad through mem_b = z_b·W_bᵀ + bias_b and the tfjs model (no native code on this path)
    const lossOf = (zz: tf.Tensor, WW: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(
        batchLoss(tfm, tf.add(tf.matMul(zz as tf.Tensor3D, WW as tf.Tensor3D, false, true), bb) as tf.Tensor3D, batch)
          .loss,
      );
    const zT = tf.tensor3d(z, [B, K, rank]);
    const [gz, gW, gb] = tf.grads((a: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => lossOf(a, w, c))([
      zT,
      tf.tensor3d(W, [B, d, rank]),
      tf.tensor3d(bias, [B, 1, d]),
    ]);
    const st = lowRankState(ids, K, z, W, bias, { shared: false, d, rank });
    assert.equal(addon.cramSteps(nativeModel(model), st, 1), 1);
    const r = {
      dz: rel(st.gradOut, gz.dataSync() as Float32Array),
      dW: rel(st.gradWOut, gW.dataSync() as Float32Array),
      db: rel(st.gradBiasOut, gb.dataSync() as Float32Array),
    };
    t.diagnostic(`per-text W, b: relative L2 native vs tf.grad ${JSON.stringify(r)}`);
    // float32 rounding on both sides: 1.3e-6 to 1.1e-5 over four seed sets (a wrong index or term gives ~1)
    for (const [k, v] of Object.entries(r)) assert.ok(v <= 3e-5, `${k}: native vs tf.grad ${v}`);
    // the step's mem was W z + b, and AdamW moved z, W and b
    assert.ok(rel(st.bestMem.subarray(0, K * d), expandHost(lr.z0[0], lr.W[0], bias.subarray(0, d), rank)) < 1e-6);
    assert.ok(rel(st.W, W) > 0 && rel(st.bias, bias) > 0 && rel(st.z, z) > 0, 'W, b or z did not move');

    // shared: one W, b (text 0's) for all three texts; tf.grad through the tiled W sums over texts
    const W0 = lr.W[0];
    const b0 = bias.subarray(0, d);
    const [sW, sb] = tf.grads((w: tf.Tensor, c: tf.Tensor) => lossOf(zT, tf.tile(tf.expandDims(w, 0), [B, 1, 1]), c))([
      tf.tensor2d(W0, [d, rank]),
      tf.tensor1d(b0),
    ]);
    const sh = lowRankState(ids, K, z, W0, b0, { shared: true, d, rank });
    assert.equal(addon.cramSteps(nativeModel(model), sh, 1), 1);
    // the same W, b copied per text (unshared): the shared gradient is the sum of the per-text ones
    const each = lowRankState(
      ids,
      K,
      z,
      Float32Array.from({ length: B * d * rank }, (_, i) => W0[i % (d * rank)]),
      Float32Array.from({ length: B * d }, (_, i) => b0[i % d]),
      { shared: false, d, rank },
    );
    addon.cramSteps(nativeModel(model), each, 1);
    const sum = (g: Float32Array, n: number) =>
      Float32Array.from({ length: n }, (_, i) => ids.reduce((s, _t, b) => s + g[b * n + i], 0));
    const s = {
      dWvsTf: rel(sh.gradWOut, sW.dataSync() as Float32Array),
      dbVsTf: rel(sh.gradBiasOut, sb.dataSync() as Float32Array),
      dWvsSum: rel(sh.gradWOut, sum(each.gradWOut, d * rank)),
      dbVsSum: rel(sh.gradBiasOut, sum(each.gradBiasOut, d)),
      dz: rel(sh.gradOut, each.gradOut),
    };
    t.diagnostic(`shared W, b: ${JSON.stringify(s)}`);
    for (const [k, v] of Object.entries(s)) assert.ok(v <= 1e-5, `shared ${k}: ${v}`);
    tf.dispose([zT, gz, gW, gb, sW, sb]);
    disposeBatch(batch);
    model.dispose();
  },
);

test(
  'native low-rank loop with W, b trained: 6 steps match AdamW on z, W, b written out in tfjs',
  { skip },
  async (t) => {
    await initBackend();
    const { model } = await loadModel(s260.dir!);
    const [K, rank, d, steps] = [2, 8, model.info.memDim, 6];
    const ids = texts(2, 24);
    const seed = 11;
    const nat = await cram(model, ids, {
      K,
      rank,
      rankTrain: true,
      maxSteps: steps,
      patience: steps,
      seed,
      quiet: true,
      curveEvery: 1,
      syncEvery: 4,
    });
    for (const r of nat) {
      assert.equal(r.trainable, K * rank + d * rank + d);
      assert.equal(r.bestZ!.length, K * rank);
    }
    // reference: AdamW on (z, W, b) per text through the tfjs model
    const lr = lowRankBasis(model, K, rank, [seed, seed + 1], embeddingStd(model));
    const tfm = tfjsModel(model);
    const batch = makeBatch(tfm, ids);
    let p: tf.Tensor[] = [
      tf.tensor3d(Float32Array.from(lr.z0.flatMap((x) => [...x])), [2, K, rank]),
      tf.tensor3d(Float32Array.from(lr.W.flatMap((x) => [...x])), [2, d, rank]),
      tf.tensor3d(Float32Array.from([...lr.b, ...lr.b]), [2, 1, d]),
    ];
    let m = p.map((x) => tf.zerosLike(x));
    let v = p.map((x) => tf.zerosLike(x));
    const losses: number[][] = [];
    for (let it = 0; it < steps; it++) {
      let seen!: Float32Array;
      const g = tf.grads((zz: tf.Tensor, WW: tf.Tensor, bb: tf.Tensor) => {
        const l = batchLoss(
          tfm,
          tf.add(tf.matMul(zz as tf.Tensor3D, WW as tf.Tensor3D, false, true), bb) as tf.Tensor3D,
          batch,
        ).loss;
        seen = l.dataSync() as Float32Array;
        return tf.sum(l);
      })(p);
      losses.push([...seen]);
      const u = p.map((x, i) => adamwStep(x, g[i], m[i], v[i], it + 1, AUTHORS_ADAMW));
      tf.dispose([...p, ...m, ...v, ...g]);
      [p, m, v] = [u.map((x) => x.p), u.map((x) => x.m), u.map((x) => x.v)];
    }
    let diff = 0;
    nat.forEach((r, b) => r.curve.loss.forEach((l, k) => (diff = Math.max(diff, Math.abs(l - losses[k][b]) / l))));
    t.diagnostic(
      `max rel loss diff over ${steps} steps: ${diff.toExponential(2)}; loss ${losses[0][0].toFixed(3)} → ${losses[steps - 1][0].toFixed(3)}`,
    );
    assert.equal(nat[0].curve.loss.length, steps);
    assert.ok(diff <= 1e-4, `native vs tfjs AdamW on z, W, b: ${diff}`);
    assert.ok(losses[steps - 1][0] < losses[0][0], 'loss did not fall');
    // shared: the trainable count splits W and b over the batch
    const sh = await cram(model, ids, { K, rank, rankTrain: true, rankShared: true, maxSteps: 2, quiet: true });
    assert.equal(sh[0].trainable, K * rank + (d * rank + d) / 2);
    await assert.rejects(
      cram(model, ids, { K, rank, rankTrain: true, maxSteps: 2, quiet: true, engine: 'tfjs' }),
      (e: Error) => e instanceof CramError && /rankTrain needs the native engine/.test(e.message),
    );
    tf.dispose([...p, ...m, ...v]);
    disposeBatch(batch);
    model.dispose();
  },
);

test(
  "progressive cramming with a rank warm-starts z: every stage stays in the text's subspace, horizons decode",
  { skip },
  async (t) => {
    await initBackend();
    const { model } = await loadModel(s260.dir!);
    const [K, rank, d] = [1, 16, model.info.memDim];
    const ids = texts(3, 40);
    const r = await progressiveCram(model, ids, {
      K,
      rank,
      growth: 'geometric',
      stride: 4,
      stageSteps: 150,
      stagePatience: 40,
      seed: 5,
      quiet: true,
    });
    for (const p of r) {
      assert.ok(p.check.equal, `text ${p.index}: mem does not decode its horizon ${p.horizon}`);
      const lr = lowRankBasis(model, K, rank, [5 + p.index], embeddingStd(model));
      const off = tf.tidy(() => {
        const [q] = tf.linalg.qr(tf.tensor2d(lr.W[0], [d, rank]));
        const x = tf.sub(tf.tensor2d(p.mem, [K, d]), tf.tensor1d(lr.b));
        return Math.sqrt(tf.mean(tf.square(tf.sub(x, tf.matMul(tf.matMul(x, q), q, false, true)))).dataSync()[0]);
      });
      assert.ok(off < 1e-4, `text ${p.index}: the final mem leaves W's span by ${off}`);
    }
    t.diagnostic(`rank ${rank} horizons ${r.map((p) => p.horizon)}, steps ${r.map((p) => p.totalSteps)}`);
    assert.ok(
      r.some((p) => p.stages.length > 2 && p.horizon > 5),
      'no text grew past its first stages',
    );
    await assert.rejects(
      progressiveCram(model, ids, { K, rank, rankTrain: true, quiet: true }),
      (e: Error) => e instanceof CramError && /keeps W and b fixed/.test(e.message),
    );
    model.dispose();
  },
);
