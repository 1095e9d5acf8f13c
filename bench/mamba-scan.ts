// Mamba selective scan: the per-time-step recurrence vs the chunked log-depth scan (tfjs) vs the native C
// kernel (sequential, backward written out), forward and forward+backward (the gradient cramming needs),
// at a Mamba-130m layer width (I 1536, N 16).
//   node --import tsx bench/mamba-scan.ts [--backend wasm|cpu] [--T 64,128] [--I 1536] [--N 16] [--reps 3] [--layers 1]
// --layers L (default 1; 0: none) adds whole-model rows: L random Mamba-130m-width layers (d 768), loss gradient
// w.r.t. the input embeddings, on the tfjs model (sequential and chunked scan) and on the native engine
// (native/src/mamba.c: the sequential scan in C, its backward written out), where the addon is built.
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend, initBackend, type BackendName } from '../src/backend';
import { modelFromTensors } from '../src/io/checkpoint';
import type { Mamba } from '../src/models/mamba';
import type { CausalLM } from '../src/models/types';
import { nativeAddon } from '../src/native/index';
import { NativeModel, tfjsModel } from '../src/native/model';
import { selectiveScanChunked, selectiveScanSequential, type SelectiveScan } from '../src/models/mamba_scan';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

/** Wall and CPU milliseconds per call (CPU time is the steadier number on a shared machine). */
function timeMs(fn: () => void, reps: number): { wall: number; cpu: number } {
  fn(); // warm-up: kernels compiled, buffers allocated
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / reps, cpu: (c.user + c.system) / 1000 / reps };
}

async function main() {
  await initBackend(arg('backend', '') ? (arg('backend', '') as BackendName) : undefined);
  const Ts = arg('T', '64,128').split(',').map(Number);
  const I = Number(arg('I', '1536'));
  const N = Number(arg('N', '16'));
  const reps = Number(arg('reps', '3'));
  console.log(`backend ${currentBackend()}, B 1, I ${I}, N ${N}, ${reps} reps (ms per call)`);
  console.log('T     scan           forward wall/cpu ms   fwd+bwd wall/cpu ms   cpu speed-up fwd / fwd+bwd');
  for (const T of Ts) {
    // Realistic magnitudes: decays in (0, 1), inputs O(1).
    const dA = tf.keep(tf.exp(tf.mul(tf.randomUniform([1, T, I, N], 0.01, 1, 'float32', 1), -1))) as tf.Tensor4D;
    const dBu = tf.keep(tf.randomNormal([1, T, I, N], 0, 0.1, 'float32', 2)) as tf.Tensor4D;
    const C = tf.keep(tf.randomNormal([1, T, N], 0, 1, 'float32', 3)) as tf.Tensor3D;
    const scans: [string, SelectiveScan][] = [['sequential', selectiveScanSequential]];
    for (const chunk of [8, 16, 32, 64]) if (chunk <= T) scans.push([`chunked ${chunk}`, selectiveScanChunked(chunk)]);
    let base: [number, number] | undefined, chunk16: [number, number] | undefined;
    for (const [name, scan] of scans) {
      const fwd = timeMs(() => {
        const y = tf.tidy(() => scan(dA, dBu, C));
        y.dataSync();
        y.dispose();
      }, reps);
      // Gradient with respect to both inputs of the recurrence, as tf.grad through the model takes it.
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(scan(a as tf.Tensor4D, b as tf.Tensor4D, C)));
      const bwd = timeMs(() => tf.tidy(() => g([dA, dBu])).forEach((t) => (t.dataSync(), t.dispose())), reps);
      base ??= [fwd.cpu, bwd.cpu];
      if (name === 'chunked 16') chunk16 = [bwd.wall, bwd.cpu];
      const pair = (m: { wall: number; cpu: number }) =>
        `${m.wall.toFixed(0).padStart(8)} / ${m.cpu.toFixed(0).padEnd(8)}`;
      console.log(
        `${String(T).padEnd(5)} ${name.padEnd(14)} ${pair(fwd)}     ${pair(bwd)}     ${(base[0] / fwd.cpu).toFixed(1)}x / ${(base[1] / bwd.cpu).toFixed(1)}x`,
      );
    }
    for (const t of [dA, dBu, C]) t.dispose();
    const addon = nativeAddon();
    if (addon) {
      // The native kernel takes Δ, A, B, x (it forms exp(Δ·A) and Δ·B·x itself, and its backward goes back to
      // them): more work than the tfjs rows, which start from dA and dBu. Same sizes, C as above.
      const u = (n: number, lo: number, hi: number, seed: number) =>
        tf.tidy(() => tf.randomUniform([n], lo, hi, 'float32', seed).dataSync() as Float32Array);
      const [delta, A, Bm, Cm, x, D, dy] = [
        u(T * I, 0.001, 0.1, 4),
        u(I * N, -16, -1, 5),
        u(T * N, -1, 1, 6),
        u(T * N, -1, 1, 7),
        u(T * I, -1, 1, 8),
        u(I, 0.5, 1.5, 9),
        u(T * I, -1, 1, 10),
      ];
      const fwd = timeMs(() => addon.selectiveScan(1, T, I, N, delta, A, Bm, Cm, x, D), reps);
      const bwd = timeMs(() => addon.selectiveScan(1, T, I, N, delta, A, Bm, Cm, x, D, dy), reps);
      const pair = (m: { wall: number; cpu: number }) =>
        `${m.wall.toFixed(1).padStart(8)} / ${m.cpu.toFixed(1).padEnd(8)}`;
      console.log(
        `${String(T).padEnd(5)} ${`native (${addon.info().threads} thr)`.padEnd(14)} ${pair(fwd)}     ${pair(bwd)}     ${(base![0] / fwd.cpu).toFixed(1)}x / ${(base![1] / bwd.cpu).toFixed(1)}x   vs chunked 16 fwd+bwd: ${(chunk16![0] / bwd.wall).toFixed(0)}x wall, ${(chunk16![1] / bwd.cpu).toFixed(0)}x cpu`,
      );
    }
  }
  const layers = Number(arg('layers', '1'));
  if (layers > 0) await modelRows(layers, Ts, reps);
}

/** Random Mamba with mamba-130m layer shapes (d 768, I 1536, N 16, rank 48, conv 4), vocabulary 512. */
function randomMamba(layers: number): CausalLM {
  const d = 768,
    I = 1536,
    N = 16,
    R = 48,
    K = 4,
    V = 512;
  const shapes: Record<string, number[]> = { 'backbone.embeddings.weight': [V, d], 'backbone.norm_f.weight': [d] };
  for (let i = 0; i < layers; i++) {
    const p = `backbone.layers.${i}.`;
    Object.assign(shapes, {
      [p + 'norm.weight']: [d],
      [p + 'mixer.in_proj.weight']: [2 * I, d],
      [p + 'mixer.conv1d.weight']: [I, 1, K],
      [p + 'mixer.conv1d.bias']: [I],
      [p + 'mixer.x_proj.weight']: [R + 2 * N, I],
      [p + 'mixer.dt_proj.weight']: [I, R],
      [p + 'mixer.dt_proj.bias']: [I],
      [p + 'mixer.A_log']: [I, N],
      [p + 'mixer.D']: [I],
      [p + 'mixer.out_proj.weight']: [d, I],
    });
  }
  const tensors = new Map(
    Object.entries(shapes).map(([name, shape], k) => {
      const std = /norm|\.D$/.test(name) ? 0 : name.endsWith('A_log') ? 0.5 : 0.02;
      const mean = /norm|\.D$/.test(name) ? 1 : name.endsWith('dt_proj.bias') ? -4 : name.endsWith('A_log') ? 1.5 : 0;
      const data = tf
        .tidy(() => tf.add(tf.mul(tf.randomNormal(shape, 0, 1, 'float32', k + 1), std), mean))
        .dataSync() as Float32Array;
      return [name, { dtype: 'F32', shape, data }];
    }),
  );
  const config = {
    model_type: 'mamba',
    hidden_size: d,
    intermediate_size: I,
    state_size: N,
    time_step_rank: R,
    conv_kernel: K,
    vocab_size: V,
    num_hidden_layers: layers,
    layer_norm_epsilon: 1e-5,
    tie_word_embeddings: true,
  };
  return modelFromTensors(config, tensors); // a NativeModel where the addon is built, else the tfjs Mamba
}

async function modelRows(layers: number, Ts: number[], reps: number) {
  const model = randomMamba(layers);
  const twin = tfjsModel(model) as Mamba; // the tfjs engine's model (the same weights)
  const threads = nativeAddon()?.info().threads;
  console.log(
    `\nwhole model: ${layers} layer(s) at mamba-130m width, gradient of a CE-like loss w.r.t. the input embeddings`,
  );
  for (const T of Ts) {
    const embeds = tf.keep(tf.randomNormal([1, T, 768], 0, 0.5, 'float32', 5)) as tf.Tensor3D;
    const gradOf = (m: CausalLM) =>
      tf.grad((e: tf.Tensor) => tf.mean(tf.logSoftmax(m.forward(e as tf.Tensor3D))) as tf.Scalar);
    const rows: [string, CausalLM, SelectiveScan?][] = [
      ['sequential', twin, selectiveScanSequential],
      ['chunked 16', twin, selectiveScanChunked(16)],
    ];
    if (model instanceof NativeModel) rows.push([`native (${threads} thr)`, model]);
    let base: number | undefined, chunked: [number, number] | undefined;
    for (const [name, m, scan] of rows) {
      if (scan) twin.scan = scan;
      const g = gradOf(m);
      const t = timeMs(() => {
        const x = tf.tidy(() => g(embeds));
        x.dataSync();
        x.dispose();
      }, reps);
      base ??= t.cpu;
      const vs = chunked
        ? `   vs chunked 16: ${(chunked[0] / t.wall).toFixed(1)}x wall, ${(chunked[1] / t.cpu).toFixed(1)}x cpu`
        : '';
      if (name === 'chunked 16') chunked = [t.wall, t.cpu];
      console.log(
        `${String(T).padEnd(5)} ${name.padEnd(16)} fwd+bwd ${t.wall.toFixed(0)} / ${t.cpu.toFixed(0)} ms wall/cpu   ${(base / t.cpu).toFixed(1)}x${vs}`,
      );
    }
    embeds.dispose();
  }
  model.dispose();
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
