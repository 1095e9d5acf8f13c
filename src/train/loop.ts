// The training loop: next-token cross-entropy on random windows of the books train split,
// AdamW + cosine schedule, a jsonl loss log, periodic checkpoints that a restarted run resumes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend';
import { readSafetensors, writeSafetensors, type RawTensor } from '../io/safetensors';
import { writeFileAtomic } from '../io/write';
import { readJson } from '../io/files';
import { buildModel } from '../models/index';
import type { CausalLM } from '../models/types';
import { Weights } from '../models/weights';
import type { Tokenizer } from '../io/tokenizer';
import { AdamW, cosineLr } from './adamw';
import { batchAt, evalWindows } from './data';
import { initTensors } from './init';

export interface TrainOptions {
  config: Record<string, any>;
  tokenizer: Tokenizer;
  train: Int32Array;
  heldOut: Int32Array;
  /** Where checkpoint.safetensors, checkpoint.json and log.jsonl live. */
  runDir: string;
  seqLen: number;
  batchSize: number;
  steps: number;
  lr: number;
  warmup: number;
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  clip: number;
  seed: number;
  /** Held-out loss on the first evalWindows windows every evalEvery steps (0: never). */
  evalEvery: number;
  evalWindows: number;
  checkpointEvery: number;
  logEvery: number;
  /** Stop (after checkpointing) once this many seconds pass in this process; resume later. */
  maxSeconds?: number;
  /** Share of training rows that start with BOS (default 1: all). */
  bosProbability?: number;
  quiet?: boolean;
}

export interface TrainResult {
  net: TrainNet;
  step: number;
  done: boolean;
  tokensSeen: number;
  wallSeconds: number;
  /** Mean training loss (nats/token) over the last logged steps. */
  trainLoss: number;
}

/** ids [B, T] → logits [B, T, V]. */
export type LogitsFn = (ids: tf.Tensor2D) => tf.Tensor3D;

/**
 * Embedding rows as a one-hot matmul: the same numbers as a gather, but its gradient is a
 * matmul too (gather's needs UnsortedSegmentSum, which the wasm backend lacks).
 */
export function oneHotEmbed(E: tf.Tensor, ids: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, T] = ids.shape;
    const [V, d] = E.shape;
    const hot = tf.oneHot(tf.reshape(ids, [-1]) as tf.Tensor1D, V);
    return tf.reshape(tf.matMul(hot, E), [B, T, d]) as tf.Tensor3D;
  });
}

/** A frozen model's logits (inference path: the architecture class as loadModel builds it). */
export function modelLogits(model: CausalLM): LogitsFn {
  return (ids) => tf.tidy(() => model.forward(model.embed(ids)));
}

/** The parameters being trained, by HF name, and a differentiable forward over them. */
export interface TrainNet {
  params: Map<string, tf.Variable>;
  logits: LogitsFn;
  numParams: number;
  dispose(): void;
}

/** Every architecture trains through its own class, whose forward reads the Weights' variables directly. */
export function trainNet(config: Record<string, any>, raw: Map<string, RawTensor>): TrainNet {
  const weights = new Weights(raw, 'init', true);
  const model = buildModel(config, weights);
  const params = new Map((weights.tensors() as tf.Variable[]).map((v) => [v.name, v]));
  if (params.size !== raw.size)
    throw new Error(`${config.model_type}: the model read ${params.size} of ${raw.size} initialised tensors`);
  return {
    params,
    logits: (ids) => model.forward(oneHotEmbed(model.embedMatrix, ids)),
    numParams: model.numParams,
    dispose: () => model.dispose(),
  };
}

/** Mean next-token CE (nats/token) of [B, T] ids: positions 0..T-2 predict 1..T-1. */
export function lmLoss(logitsFn: LogitsFn, ids: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const [B, T] = ids.shape;
    const logits = logitsFn(ids);
    const pred = tf.reshape(tf.slice(logits, [0, 0, 0], [B, T - 1, -1]), [B * (T - 1), -1]);
    const target = tf.reshape(tf.slice(ids, [0, 1], [B, T - 1]), [-1]) as tf.Tensor1D;
    const logp = tf.logSoftmax(pred);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(target, logp.shape[1] as number)), -1);
    return tf.neg(tf.mean(picked)) as tf.Scalar;
  });
}

/** Mean CE (nats/token) over windows, batched; every predicted token weighs the same. */
export async function evalLoss(logitsFn: LogitsFn, windows: Int32Array[], batch = 8): Promise<number> {
  let total = 0;
  let count = 0;
  for (let i = 0; i < windows.length; i += batch) {
    const rows = windows.slice(i, i + batch);
    const T = rows[0].length;
    const flat = new Int32Array(rows.length * T);
    rows.forEach((r, j) => flat.set(r, j * T));
    const loss = tf.tidy(() => lmLoss(logitsFn, tf.tensor2d(flat, [rows.length, T], 'int32')));
    total += (await loss.data())[0] * rows.length * (T - 1);
    count += rows.length * (T - 1);
    loss.dispose();
  }
  return total / count;
}

async function tensorData(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

/** Params (HF names) and the optimizer state, written atomically. */
async function saveCheckpoint(
  runDir: string,
  params: Map<string, tf.Variable>,
  opt: AdamW,
  meta: Record<string, any>,
): Promise<void> {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  let i = 0;
  for (const [name, p] of params) {
    tensors[name] = { shape: p.shape, data: await tensorData(p) };
    tensors['adam.m.' + name] = { shape: p.shape, data: await tensorData(opt.m[i]) };
    tensors['adam.v.' + name] = { shape: p.shape, data: await tensorData(opt.v[i]) };
    i++;
  }
  const tmp = path.join(runDir, 'checkpoint.tmp');
  writeSafetensors(tmp, tensors, { step: String(meta.step) });
  fs.renameSync(tmp, path.join(runDir, 'checkpoint.safetensors'));
  writeFileAtomic(path.join(runDir, 'checkpoint.json'), JSON.stringify(meta, null, 2) + '\n');
}

function log(opts: TrainOptions, line: string): void {
  if (!opts.quiet) console.log(line);
}

/**
 * A run killed between checkpoints has logged steps that the resumed run will redo: drop them, so
 * the log holds each step once (the card's train loss averages the last logged steps).
 */
function dropLogAfter(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  const kept = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => {
      if (!l.trim()) return false;
      try {
        return JSON.parse(l).step <= step;
      } catch {
        return false; // a torn last line
      }
    });
  fs.writeFileSync(file, kept.map((l) => l + '\n').join(''));
}

/** Train (or resume) a model; returns it with its trainable variables. */
export async function trainModel(opts: TrainOptions): Promise<TrainResult> {
  const backend = await initBackend();
  fs.mkdirSync(opts.runDir, { recursive: true });
  const ckptFile = path.join(opts.runDir, 'checkpoint.safetensors');
  const metaFile = path.join(opts.runDir, 'checkpoint.json');
  const resume = fs.existsSync(ckptFile) && fs.existsSync(metaFile);
  const meta: Record<string, any> = resume ? readJson(metaFile, 'checkpoint.json') : { step: 0, wallSeconds: 0 };
  let ckpt: Map<string, RawTensor> | undefined;
  let raw: Map<string, RawTensor>;
  if (resume) {
    ckpt = readSafetensors(ckptFile).tensors;
    raw = new Map([...ckpt].filter(([k]) => !k.startsWith('adam.')));
  } else raw = initTensors(opts.config, opts.seed);

  const net = trainNet(opts.config, raw);
  const params = net.params;
  const vars = [...params.values()];
  const opt = new AdamW(vars, {
    beta1: opts.beta1,
    beta2: opts.beta2,
    eps: opts.eps,
    weightDecay: opts.weightDecay,
    clip: opts.clip,
  });
  if (ckpt) {
    vars.forEach((v, i) => {
      for (const [kind, store] of [
        ['m', opt.m],
        ['v', opt.v],
      ] as const) {
        const t = ckpt!.get(`adam.${kind}.${v.name}`);
        if (!t) throw new Error(`${ckptFile}: optimizer state for '${v.name}' is missing`);
        tf.tidy(() => store[i].assign(tf.tensor(t.data as Float32Array, t.shape)));
      }
    });
    opt.t = meta.step;
    dropLogAfter(path.join(opts.runDir, 'log.jsonl'), meta.step);
    log(opts, `resuming ${opts.runDir} at step ${meta.step}/${opts.steps}`);
  } else {
    fs.writeFileSync(path.join(opts.runDir, 'log.jsonl'), '');
  }
  raw.clear();

  const { seqLen: T, batchSize: B } = opts;
  const bos = opts.tokenizer.bosTokenId ?? 1;
  const heldWindows = evalWindows(opts.heldOut, bos, T, opts.evalWindows);
  const logFile = path.join(opts.runDir, 'log.jsonl');
  log(
    opts,
    `training ${opts.config.model_type} d=${opts.config.hidden_size ?? opts.config.d_model} (${net.numParams} params) on ${opts.train.length} tokens, backend ${backend}, ${opts.steps} steps × ${B}×${T}`,
  );

  let step: number = meta.step;
  const t0 = performance.now();
  let lastLog = performance.now();
  let lastStep = step;
  const elapsed = () => meta.wallSeconds + (performance.now() - t0) / 1000;
  while (step < opts.steps) {
    const lr = cosineLr(step, opts.steps, opts.warmup, opts.lr, opts.minLrRatio);
    const ids = batchAt(opts.train, bos, B, T, opts.seed, step, opts.bosProbability ?? 1);
    const { value, grads } = tf.variableGrads(
      () => tf.tidy(() => lmLoss(net.logits, tf.tensor2d(ids, [B, T], 'int32'))),
      vars,
    );
    const norm = opt.step(
      vars.map((v) => grads[v.name]),
      lr,
    );
    const loss = (await value.data())[0];
    const gnorm = (await norm.data())[0];
    tf.dispose([value, norm, ...Object.values(grads)]);
    if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} at step ${step}: lower --lr or check the data`);
    step++;
    const entry: Record<string, number> = {
      step,
      loss,
      lr,
      gradNorm: gnorm,
      tokens: step * B * (T - 1),
      seconds: elapsed(),
    };
    if (opts.evalEvery > 0 && (step % opts.evalEvery === 0 || step === opts.steps))
      entry.heldOutLoss = await evalLoss(net.logits, heldWindows);
    fs.appendFileSync(logFile, JSON.stringify(entry) + '\n');
    if (step % opts.logEvery === 0 || step === opts.steps || entry.heldOutLoss !== undefined) {
      const now = performance.now();
      const tps = ((step - lastStep) * B * (T - 1)) / ((now - lastLog) / 1000);
      const eta = ((opts.steps - step) * B * (T - 1)) / tps;
      const held = entry.heldOutLoss !== undefined ? ` held-out ${entry.heldOutLoss.toFixed(4)}` : '';
      log(
        opts,
        `step ${step}/${opts.steps} loss ${loss.toFixed(4)}${held} lr ${lr.toExponential(2)} |g| ${gnorm.toFixed(3)} ${tps.toFixed(0)} tok/s eta ${(eta / 60).toFixed(1)} min`,
      );
      lastLog = now;
      lastStep = step;
    }
    const outOfTime = opts.maxSeconds !== undefined && (performance.now() - t0) / 1000 > opts.maxSeconds;
    if (step % opts.checkpointEvery === 0 || step === opts.steps || outOfTime) {
      await saveCheckpoint(opts.runDir, params, opt, {
        step,
        wallSeconds: elapsed(),
        seed: opts.seed,
        steps: opts.steps,
        backend,
      });
    }
    if (outOfTime) break;
  }
  opt.dispose();
  // From the log, not this process's steps: a run resumed at its last step still reports its train loss.
  const logged = fs
    .readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; loss: number });
  const last = logged.filter((e) => e.step <= step).slice(-50);
  const trainLoss = last.length ? last.reduce((a, e) => a + e.loss, 0) / last.length : NaN;
  return { net, step, done: step >= opts.steps, tokensSeen: step * B * (T - 1), wallSeconds: elapsed(), trainLoss };
}
