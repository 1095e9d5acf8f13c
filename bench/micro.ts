// Micro-benchmark: one forward+backward w.r.t. the [mem] rows (the cram inner step, minus AdamW),
// on stories260K (B=16, T=17/33) and the W2 shape (random Llama d=256, 4 layers, V=2048, B=8, T=129).
// Reports CPU time per step (robust on a shared machine) and wall time.
//   node --import tsx bench/micro.ts [--backend wasm|cpu] [--reps 30] [--only W1|W2]
import * as tf from '@tensorflow/tfjs-core';
import * as path from 'node:path';
import { initBackend, type BackendName } from '../src/backend';
import { readSafetensors } from '../src/io/safetensors';
import { modelFromTensors } from '../src/io/checkpoint';
import type { CausalLM } from '../src/models/types';
import { randomLlama } from './w2model';

const arg = (name: string, def?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};

function stepFn(model: CausalLM, B: number, N: number, K: number) {
  const V = model.info.vocabSize;
  const ids = tf.tensor2d(
    Array.from({ length: B * N }, (_, i) => (i * 7919) % V),
    [B, N],
    'int32',
  );
  const tokens = tf.keep(model.embed(ids));
  const labels = tf.keep(tf.oneHot(tf.reshape(tf.slice(ids, [0, 1], [B, N - 1]), [-1]), V));
  const mem = tf.keep(tf.mul(tf.randomNormal([B, K, model.info.memDim], 0, 1, 'float32', 1), 0.1));
  const g = tf.grad((m: tf.Tensor): tf.Scalar => {
    const logits = model.forward(tf.concat([m, tokens], 1) as tf.Tensor3D);
    const text = tf.reshape(tf.slice(logits, [0, K, 0], [B, N - 1, V]), [-1, V]);
    return tf.losses.softmaxCrossEntropy(labels, text) as tf.Scalar;
  });
  return () => {
    const out = tf.tidy(() => g(mem));
    const v = out.dataSync();
    out.dispose();
    return v;
  };
}

function time(label: string, fn: () => unknown, reps: number): number {
  for (let i = 0; i < 2; i++) fn();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000 / reps;
  console.log(
    `${label}: ${cpuMs.toFixed(1)} ms cpu/step, ${((performance.now() - t0) / reps).toFixed(1)} ms wall (tensors ${tf.memory().numTensors})`,
  );
  return cpuMs;
}

async function main() {
  const backend = await initBackend(arg('backend') as BackendName | undefined);
  const reps = Number(arg('reps', '20'));
  const only = arg('only');
  console.log('backend', backend);
  if (!only || only === 'W1') {
    const dir = path.join(process.env.CRAMLAB_MODELS ?? '../shared/models', 'stories260K');
    const cfg = JSON.parse(require('node:fs').readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const model = modelFromTensors(cfg, readSafetensors(path.join(dir, 'model.safetensors')).tensors);
    for (const [B, N] of [
      [1, 16],
      [16, 16],
      [16, 32],
    ])
      time(`stories260K B=${B} T=${N + 1}`, stepFn(model, B, N, 1), reps);
  }
  if (!only || only === 'W2') {
    const { config, tensors } = randomLlama();
    time('W2 B=8 T=129', stepFn(modelFromTensors(config, tensors), 8, 128, 1), Math.max(2, Math.floor(reps / 10)));
  }
}
main();
