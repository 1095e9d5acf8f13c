// FLOP counts match a hand count from config.json, and the optional mean-embedding init is what it says.
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

test('cramStepFlops: hand count from config.json (linear 2·P·T fwd, same again bwd; attention 4·T²·H·D fwd, twice bwd)', async () => {
  await initBackend();
  const { cfg, model } = loadGqa();
  const d = cfg.hidden_size;
  const D = cfg.head_dim ?? d / cfg.num_attention_heads;
  const perLayer =
    d * cfg.num_attention_heads * D * 2 + 2 * d * cfg.num_key_value_heads * D + 3 * d * cfg.intermediate_size;
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

test("meanEmbeddingInit: the mean of the text token embeddings plus 0.1 × the authors' seeded noise", async () => {
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
