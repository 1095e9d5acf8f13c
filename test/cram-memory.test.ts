// cram() keeps tf.memory().numTensors flat: constant at every read-back over many steps (2000 with
// CRAMLAB_MEMORY_STEPS=2000), and back to the starting count afterwards (per-step work in tf.tidy).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { cram } from '../src/cram/cram';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';

const DIR = path.join(__dirname, 'fixtures', 'reference', 'llama_gqa');
// 2000 steps (the memory target) take ~2 min on a busy 2-core box: 500 by default, 2000 on request.
const STEPS = Number(process.env.CRAMLAB_MEMORY_STEPS ?? 500);

test(`memory stays flat over ${STEPS} cram steps (two texts, one leaves the batch early)`, async () => {
  await initBackend();
  const config = JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8'));
  const model = modelFromTensors(config, readSafetensors(path.join(DIR, 'model.safetensors')).tensors);
  // A long pseudo-random text (hard to cram into 1 vector of a random model) and a short one that stops early.
  let x = 12345;
  const hard = [1, ...Array.from({ length: 24 }, () => ((x = (x * 1103515245 + 12345) % 2 ** 31), 3 + (x % 290)))];
  const texts = [hard, [1, 7, 8]];
  // Warm the model's per-length caches (rope tables, masks) for both batch shapes of the run.
  await cram(model, texts, { maxSteps: 3, quiet: true });
  await cram(model, [hard], { maxSteps: 3, quiet: true });
  const before = tf.memory().numTensors;
  const seen = new Map<number, number>(); // active batch size → tensor count at read-back
  const [r, short] = await cram(model, texts, {
    K: 1,
    maxSteps: STEPS,
    patience: 100_000,
    syncEvery: 50,
    quiet: true,
    onProgress: (p) => {
      const n = tf.memory().numTensors;
      if (!seen.has(p.active)) seen.set(p.active, n);
      assert.equal(n, seen.get(p.active), `tensor count changed at step ${p.step} (${p.active} active)`);
    },
  });
  assert.equal(tf.memory().numTensors, before, 'tensors left behind after cram');
  assert.equal(r.steps, STEPS);
  assert.equal(r.status, 'max-steps');
  assert.equal(short.status, 'decoded');
  assert.ok(short.steps < STEPS);
  model.dispose();
});
