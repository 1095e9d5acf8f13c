// cram() keeps tf.memory().numTensors flat: constant at every read-back over many steps (2000 with
// CRAMLAB_MEMORY_STEPS=2000), and back to the starting count afterwards (per-step work in tf.tidy).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { availableMemoryBytes, initBackend } from '../src/backend';
import { cram } from '../src/cram/cram';
import { cramBytes } from '../src/cram/memory';
import { nativeAddon, type Engine } from '../src/native/index';
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

test('a batch too big for the free memory is refused before anything runs, naming the estimate and the free memory', async () => {
  await initBackend();
  const config = JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8'));
  const model = modelFromTensors(config, readSafetensors(path.join(DIR, 'model.safetensors')).tensors);
  const L = config.max_position_embeddings - 1; // K + L = the whole context: allowed per text
  const text = [1, ...Array.from({ length: L - 1 }, (_, t) => 3 + ((t * 7) % 290))];
  const free = availableMemoryBytes();
  const engines: Engine[] = nativeAddon() ? ['native', 'tfjs'] : ['tfjs'];
  for (const engine of engines) {
    // twice the free memory: the same text B times (one array, so the test itself stays small)
    const B = Math.ceil((2 * free.bytes) / cramBytes(model, 1, L, 1, engine));
    assert.ok(cramBytes(model, B, L, 1, engine) > free.bytes);
    const t0 = performance.now();
    await assert.rejects(cram(model, new Array(B).fill(text), { maxSteps: 1, quiet: true, engine }), (e: Error) => {
      assert.equal(e.name, 'MemoryLimitError');
      assert.equal(e.message.split('\n').length, 1);
      // tfjs: its backend's own limit (half the machine, the wasm heap) may be the one that refuses
      const re =
        engine === 'native'
          ? new RegExp(
              `^cramming ${B} texts of up to ${L} tokens needs about [\\d.]+ GiB \\(native engine: activations of 1 \\+ ${L} positions × 2 layers, and logits\\), more than the [\\d.]+ GiB free \\(${free.source}\\): give shorter texts or a smaller batch$`,
            )
          : new RegExp(`^cramming ${B} texts of up to ${L} tokens needs about [\\d.]+ GiB`);
      assert.match(e.message, re);
      return true;
    });
    assert.ok(performance.now() - t0 < 5000, 'refused up front, not after running');
    // a normal batch of the same texts runs
    const [r] = await cram(model, [text, text], { maxSteps: 1, quiet: true, engine });
    assert.equal(r.steps, 1);
  }
  model.dispose();
});
