// Low-rank mem (cram/lowrank.ts, mem = W z + b): the gradient to z is the chain rule Wᵀ·dL/dmem on
// either engine, the native and tfjs engines agree on it and on a short trajectory, and the result's
// mem is what z gives (decode reads it), with K·rank trainable numbers per text.
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
import { nativeAddon, nativeUnavailable } from '../src/native/index';
import { NativeModel, tfjsModel } from '../src/native/model';
import type { CausalLM } from '../src/models/types';
import { MODELS_DIR, sharedModel } from './helpers/shared';

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
  const lr = lowRankBasis(model, K, rank, [3, 4], embeddingStd(model));
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
