// The speed helpers: the fast linear and RoPE rewrites equal the plain math, FLOP counts match a hand
// count from config.json, and the optional mean-embedding init is what it says.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { embeddingStd, initialMem } from '../src/cram/cram';
import { meanEmbeddingInit } from '../src/cram/init';
import { cramStepFlops, matmulParams } from '../src/flops';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { dense, denseLinear, disposeDense, rotateHalfRows } from '../src/models/layers';

const REF = path.join(__dirname, 'fixtures', 'reference', 'llama_gqa');
const loadGqa = () => {
  const cfg = JSON.parse(fs.readFileSync(path.join(REF, 'config.json'), 'utf8'));
  return { cfg, model: modelFromTensors(cfg, readSafetensors(path.join(REF, 'model.safetensors')).tensors) };
};
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test('denseLinear: value and input gradient equal x·W^T + b and its plain tfjs gradient', async () => {
  await initBackend();
  const x = tf.randomNormal([7, 5], 0, 1, 'float32', 1) as tf.Tensor2D;
  const w = tf.randomNormal([3, 5], 0, 1, 'float32', 2);
  const b = tf.randomNormal([3], 0, 1, 'float32', 3);
  const p = dense(w, b);
  const dy = tf.randomNormal([7, 3], 0, 1, 'float32', 4);
  const fast = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(denseLinear(xi as tf.Tensor2D, p), dy)))(x);
  const plain = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.matMul(xi, w, false, true), b), dy)))(x);
  assert.ok(maxAbs(denseLinear(x, p).dataSync(), tf.add(tf.matMul(x, w, false, true), b).dataSync()) < 1e-5);
  assert.ok(maxAbs(fast.dataSync(), plain.dataSync()) < 1e-5, 'input gradients agree');
  disposeDense(p);
});

test('rotateHalfRows: x·rot(W)^T is rotate_half(x·W^T) in every head, exactly', async () => {
  await initBackend();
  const H = 3;
  const D = 4;
  const w = tf.randomNormal([H * D, 6], 0, 1, 'float32', 5);
  const x = tf.randomNormal([2, 6], 0, 1, 'float32', 6);
  const y = tf.matMul(x, w, false, true).arraySync() as number[][];
  const yr = tf.matMul(x, rotateHalfRows(w, H), false, true).arraySync() as number[][];
  for (let r = 0; r < 2; r++) {
    for (let h = 0; h < H; h++) {
      for (let j = 0; j < D; j++) {
        // rotate_half(y) = [-y2, y1] within the head
        const want = j < D / 2 ? -y[r][h * D + j + D / 2] : y[r][h * D + j - D / 2];
        assert.equal(yr[r][h * D + j], want);
      }
    }
  }
});

test('cramStepFlops: hand count from config.json (linear 2·P·T fwd, same again bwd; attention 4·T²·H·D fwd, twice bwd)', async () => {
  await initBackend();
  const { cfg, model } = loadGqa();
  const d = cfg.hidden_size;
  const D = cfg.head_dim ?? d / cfg.num_attention_heads;
  const perLayer = d * cfg.num_attention_heads * D * 2 + 2 * d * cfg.num_key_value_heads * D + 3 * d * cfg.intermediate_size;
  const lmHead = cfg.vocab_size * d;
  const norms = (2 * cfg.num_hidden_layers + 1) * d; // counted by numParams, not matmuls: a small known excess
  const P = cfg.num_hidden_layers * perLayer + lmHead;
  assert.equal(matmulParams(model), P + norms);
  const T = 9;
  const B = 2;
  const f = cramStepFlops(model, B, T);
  const attn = cfg.num_hidden_layers * 4 * T * T * cfg.num_attention_heads * D * B;
  assert.equal(f.forward, 2 * (P + norms) * B * T + attn);
  assert.equal(f.backward, 2 * (P + norms) * B * T + 2 * attn);
  model.dispose();
});

test('meanEmbeddingInit: the mean of the text token embeddings plus 0.1 × the authors\' seeded noise', async () => {
  await initBackend();
  const { model } = loadGqa();
  const ids = [1, 5, 9, 33, 2];
  const [m] = meanEmbeddingInit(model, [ids], 2, { seed: 7 });
  const E = model.embedMatrix.arraySync() as number[][];
  const d = model.info.memDim;
  const noise = initialMem(model, 2, 7);
  for (let k = 0; k < 2; k++) {
    for (let j = 0; j < d; j++) {
      const mean = ids.reduce((a, t) => a + E[t][j], 0) / ids.length;
      assert.ok(Math.abs(m[k * d + j] - (mean + 0.1 * noise[k * d + j])) < 1e-6);
    }
  }
  assert.ok(embeddingStd(model) > 0);
  model.dispose();
});
