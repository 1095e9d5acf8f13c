// Issue 7: the pieces of `cramlab train`: tokenizer, optimizer, schedule, data, init, loop, resume, saving.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { mobyDickSplit } from '../src/datasets/corpus';
import { loadModel } from '../src/io/checkpoint';
import { buildModel } from '../src/models/index';
import { Weights } from '../src/models/weights';
import { loadTokenizer } from '../src/io/tokenizer';
import { AdamW, cosineLr } from '../src/train/adamw';
import { trainBpe, writeTokenizer } from '../src/train/bpe';
import { batchAt, bookStreams, evalWindows, unigramEntropyBits } from '../src/train/data';
import { initTensors } from '../src/train/init';
import { evalLoss, modelLogits, trainModel, trainNet, type TrainOptions } from '../src/train/loop';
import { llamaConfig, mambaConfig } from '../src/train/suite';

const ROOT = path.join(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-train-'));
const TOK = path.join(tmp, 'tok300');
const { train: trainCh, heldOut: heldCh } = mobyDickSplit();

// A small (300-token) BPE keeps this file fast; the suite's 512-token one is checked in suite.test.ts.
const bpe = trainBpe(
  trainCh.map((c) => c.text),
  300,
);
writeTokenizer(TOK, bpe, 64);

test('BPE: trained on the train split, loads through transformers.js, round-trips held-out text exactly', () => {
  const tok = loadTokenizer(TOK);
  assert.equal(tok.vocabSize, 300);
  assert.equal(tok.bosTokenId, 1);
  assert.equal(tok.eosTokenId, 2);
  const held = heldCh.map((c) => c.text).join('\n\n');
  for (const ch of ['—', '\n', ';', '"', "'", '!'])
    assert.ok(held.includes(ch), `held-out text has ${JSON.stringify(ch)}`);
  for (const text of [
    ...heldCh.map((c) => c.text),
    'Ahab—“Thar she blows!”\n\n\tnaïve café 鯨 🐋  two  spaces ',
    ' leading space',
    '',
  ]) {
    const ids = tok.encode(text);
    assert.equal(ids[0], 1, 'texts start with <s>');
    assert.equal(tok.decode(ids), text);
    if (ids.length > 1) assert.equal(tok.decode(ids.slice(1)), text);
  }
  // The merges are the learned ones: the commonest word piece is one token, and BPE compresses.
  assert.equal(tok.encode(' the', { addSpecialTokens: false }).length, 1);
  const sample = heldCh[0].text;
  assert.ok(
    tok.encode(sample).length < Buffer.byteLength(sample) / 1.3,
    'fewer tokens than bytes (1.43 bytes/token at vocab 300)',
  );
});

test('BPE: merges are learned from counts (hand-checkable toy corpus) and bad sizes are refused', () => {
  const { vocab, merges } = trainBpe(['aaab aaab aaab'], 3 + 256 + 2);
  // Pieces: "aaab", " aaab" ×2 (GPT-2 regex keeps the leading space). Pair counts: (a,a) 6, (a,b) 3, (Ġ,a) 2
  // → merge "a a"; then (aa,a) 3 and (a,b) 3 tie, and the tie goes to the smaller string "a b".
  assert.deepEqual(merges, ['a a', 'a b']);
  assert.equal(vocab['aa'], 259);
  assert.throws(() => trainBpe(['x'], 100), /vocab size must be an integer ≥ 259/);
});

test('AdamW matches a hand computation: clipping, bias correction, decoupled decay on matrices only', async () => {
  await initBackend();
  const W = tf.variable(tf.tensor2d([[1, -2]]));
  const g0 = tf.variable(tf.tensor1d([0.5]));
  const opt = new AdamW([W, g0], { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1 });
  const gW = [3, 4]; // global norm 5 → scaled by 1/5
  const lr = 0.1;
  const p = [1, -2];
  const m = [0, 0];
  const v = [0, 0];
  for (let t = 1; t <= 2; t++) {
    const norm = opt.step([tf.tensor2d([gW]), tf.tensor1d([0])], lr);
    assert.ok(Math.abs(norm.dataSync()[0] - 5) < 1e-5);
    norm.dispose();
    for (let i = 0; i < 2; i++) {
      const g = gW[i] / (5 + 1e-6);
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.95 * v[i] + 0.05 * g * g;
      p[i] = p[i] * (1 - lr * 0.1) - (lr * (m[i] / (1 - 0.9 ** t))) / (Math.sqrt(v[i] / (1 - 0.95 ** t)) + 1e-8);
    }
  }
  const got = Array.from(W.dataSync());
  got.forEach((x, i) => assert.ok(Math.abs(x - p[i]) < 1e-5, `W[${i}] ${x} vs ${p[i]}`));
  assert.equal(g0.dataSync()[0], 0.5, 'a 1-D parameter with zero gradient is not decayed');
  opt.dispose();
  W.dispose();
  g0.dispose();
});

test('cosine schedule: linear warmup to the peak, then down to min ratio at the end', () => {
  assert.equal(cosineLr(0, 100, 10, 1), 0.1);
  assert.equal(cosineLr(9, 100, 10, 1), 1);
  assert.ok(Math.abs(cosineLr(10, 100, 10, 1) - 1) < 1e-12);
  assert.ok(Math.abs(cosineLr(55, 100, 10, 1, 0.1) - 0.55) < 1e-12); // halfway: (1 + 0.1) / 2
  assert.ok(Math.abs(cosineLr(100, 100, 10, 1, 0.1) - 0.1) < 1e-12);
  for (let s = 11; s < 100; s++) assert.ok(cosineLr(s, 100, 10, 1) <= cosineLr(s - 1, 100, 10, 1));
});

test('batches: seeded per step, rows are <s> + a contiguous window of the stream', () => {
  const stream = Int32Array.from({ length: 1000 }, (_, i) => 3 + (i % 97));
  const a = batchAt(stream, 1, 4, 16, 7, 3);
  assert.deepEqual(a, batchAt(stream, 1, 4, 16, 7, 3));
  assert.notDeepEqual(a, batchAt(stream, 1, 4, 16, 7, 4));
  assert.notDeepEqual(a, batchAt(stream, 1, 4, 16, 8, 3));
  for (let b = 0; b < 4; b++) {
    const row = a.subarray(b * 16, b * 16 + 16);
    assert.equal(row[0], 1);
    for (let i = 2; i < 16; i++) assert.equal(row[i], 3 + ((row[i - 1] - 3 + 1) % 97));
  }
  const w = evalWindows(stream, 1, 16);
  assert.equal(w.length, Math.floor(1000 / 15));
  assert.deepEqual(Array.from(w[1].subarray(1)), Array.from(stream.subarray(15, 30)));
  assert.throws(() => batchAt(stream.subarray(0, 5), 1, 1, 16, 0, 0), /fewer than the sequence length/);
  assert.ok(Math.abs(unigramEntropyBits([5, 5, 6, 7]) - 1.5) < 1e-12);
});

test('init: every tensor the architectures read, under HF names, with HF-style statistics', async () => {
  await initBackend();
  for (const config of [llamaConfig(32, 2, 300, 64), mambaConfig(32, 2, 300)]) {
    const raw = initTensors(config, 1);
    const names = [...raw.keys()];
    const w = new Weights(raw, 'init');
    const model = buildModel(config, w);
    assert.equal(w.tensors().length, names.length, `${config.model_type}: every initialised tensor is used`);
    assert.ok(!names.includes('lm_head.weight'), 'tied embeddings: no lm_head');
    const E = raw.get(config.model_type === 'llama' ? 'model.embed_tokens.weight' : 'backbone.embeddings.weight')!
      .data as Float32Array;
    const std = Math.sqrt(E.reduce((s, x) => s + x * x, 0) / E.length);
    assert.ok(Math.abs(std - 0.02) < 0.001, `embedding std ${std}`);
    if (config.model_type === 'mamba') {
      const A = raw.get('backbone.layers.0.mixer.A_log')!.data;
      assert.deepEqual(
        Array.from(A.slice(0, 3), (x) => Math.round(Math.exp(x))),
        [1, 2, 3],
      );
      const softplus = (x: number) => Math.log1p(Math.exp(x));
      for (const b of raw.get('backbone.layers.1.mixer.dt_proj.bias')!.data) {
        const dt = softplus(b);
        assert.ok(dt >= 0.001 - 1e-6 && dt <= 0.1 + 1e-6, `dt ${dt} within [time_step_min, time_step_max]`);
      }
    }
    const logits = model.forward(model.embed(tf.tensor2d([[1, 5, 9]], [1, 3], 'int32')));
    assert.deepEqual(logits.shape, [1, 3, 300]);
    logits.dispose();
    model.dispose();
  }
  assert.deepEqual(
    initTensors(llamaConfig(16, 1, 300), 3).get('model.layers.0.mlp.up_proj.weight')!.data,
    initTensors(llamaConfig(16, 1, 300), 3).get('model.layers.0.mlp.up_proj.weight')!.data,
  );
  assert.throws(() => initTensors({ model_type: 'opt' }, 1), /cannot initialise model_type 'opt'/);
});

test("the trainable Llama gives the frozen one's logits and its gradient reaches every named tensor (GQA)", async () => {
  await initBackend();
  const config = { ...llamaConfig(32, 2, 300, 64), num_key_value_heads: 1 }; // grouped-query too
  const raw = initTensors(config, 9);
  const net = trainNet(config, raw);
  const frozen = buildModel(config, new Weights(raw, 'init'));
  const ids = tf.tensor2d([[1, 40, 41, 200, 7, 9, 3, 100, 250, 17]], [1, 10], 'int32');
  const a = net.logits(ids);
  const b = frozen.forward(frozen.embed(ids));
  const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  assert.ok(diff < 1e-5, `max |Δlogit| ${diff}`);
  const { grads } = tf.variableGrads(() => tf.mean(net.logits(ids)) as tf.Scalar, [...net.params.values()]);
  assert.equal(Object.keys(grads).length, raw.size, 'one gradient per checkpoint tensor');
  for (const [name, g] of Object.entries(grads))
    assert.ok(tf.max(tf.abs(g)).dataSync()[0] > 0, `zero gradient for ${name}`);
  tf.dispose([a, b, ids, ...Object.values(grads)]);
  net.dispose();
  frozen.dispose();
});

function tinyOptions(runDir: string, over: Partial<TrainOptions> = {}): TrainOptions {
  const tokenizer = loadTokenizer(TOK);
  const { train, heldOut } = bookStreams(tokenizer);
  return {
    config: llamaConfig(16, 1, 300, 32),
    tokenizer,
    train: train.subarray(0, 20000),
    heldOut: heldOut.subarray(0, 2000),
    runDir,
    seqLen: 32,
    batchSize: 4,
    steps: 40,
    lr: 1e-2,
    warmup: 4,
    minLrRatio: 0.1,
    weightDecay: 0.1,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    clip: 1,
    seed: 5,
    evalEvery: 0,
    evalWindows: 4,
    checkpointEvery: 1000,
    logEvery: 1000,
    quiet: true,
    ...over,
  };
}

async function paramValues(params: Map<string, tf.Variable>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of params) out.set(k, (await v.data()) as Float32Array);
  return out;
}

test('training loop: held-out loss falls well below its start and the tensor count stays flat', async () => {
  await initBackend();
  const opts = tinyOptions(path.join(tmp, 'run-a'));
  const windows = evalWindows(opts.heldOut, 1, 32, 8);
  const before = tf.memory().numTensors;
  const short = await trainModel({ ...opts, steps: 3, runDir: path.join(tmp, 'run-short') });
  const leftShort = tf.memory().numTensors - before;
  short.net.dispose();
  const mid = tf.memory().numTensors;
  const res = await trainModel(opts);
  const leftLong = tf.memory().numTensors - mid;
  assert.equal(leftLong, leftShort, '40 steps leave exactly as many tensors as 3 steps (the model)');
  const start = Math.log(300);
  const held = await evalLoss(res.net.logits, windows);
  assert.ok(held < start - 1, `held-out ${held} nats after 40 steps vs ${start} at uniform`);
  const log = fs
    .readFileSync(path.join(opts.runDir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(log.length, 40);
  assert.equal(log[39].tokens, 40 * 4 * 31);
  res.net.dispose();
});

test('resume: a run stopped after one step and restarted ends with the same weights as an unbroken run', async () => {
  await initBackend();
  const steps = 6;
  const whole = await trainModel(tinyOptions(path.join(tmp, 'run-whole'), { steps }));
  const a = await paramValues(whole.net.params);
  whole.net.dispose();
  const dir = path.join(tmp, 'run-broken');
  const first = await trainModel(tinyOptions(dir, { steps, maxSeconds: 0 }));
  assert.equal(first.step, 1);
  assert.equal(first.done, false);
  first.net.dispose();
  // As if the process had logged a step after its last checkpoint, then died mid-line.
  fs.appendFileSync(path.join(dir, 'log.jsonl'), JSON.stringify({ step: 2, loss: 9 }) + '\n{"step": 3, "lo');
  const second = await trainModel(tinyOptions(dir, { steps }));
  assert.equal(second.step, steps);
  const b = await paramValues(second.net.params);
  second.net.dispose();
  for (const [k, x] of a) {
    const y = b.get(k)!;
    const diff = x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    assert.ok(diff < 1e-6, `${k} differs by ${diff}`);
  }
  const logged = fs
    .readFileSync(path.join(dir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    logged.map((e) => e.step),
    [1, 2, 3, 4, 5, 6],
    "each step logged once, the redone steps replacing the dead run's",
  );
  assert.ok(logged.every((e) => e.loss !== 9));
});

test('cramlab train: writes an HF folder that loadModel reads back to the recorded held-out loss', async () => {
  const out = path.join(tmp, 'models', 'tiny');
  const r = spawnSync(
    process.execPath,
    [
      path.join(ROOT, 'bin', 'cramlab.js'),
      'train',
      '--out',
      out,
      '--d',
      '16',
      '--layers',
      '1',
      '--steps',
      '6',
      '--batch',
      '2',
      '--seq-len',
      '32',
      '--tokenizer',
      TOK,
      '--vocab-size',
      '300',
      '--run-dir',
      path.join(tmp, 'run-cli'),
      '--eval-every',
      '3',
      '--quiet',
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  for (const f of [
    'config.json',
    'model.safetensors',
    'tokenizer.json',
    'tokenizer_config.json',
    'generation_config.json',
    'training.json',
    'README.md',
  ]) {
    assert.ok(fs.existsSync(path.join(out, f)), `${f} written`);
  }
  const rec = JSON.parse(fs.readFileSync(path.join(out, 'training.json'), 'utf8'));
  assert.equal(rec.steps, 6);
  assert.equal(rec.tokens_seen, 6 * 2 * 31);
  const { model, tokenizer } = await loadModel(out);
  assert.equal(model.numParams, rec.params);
  const { heldOut } = bookStreams(tokenizer);
  const slice = evalWindows(heldOut, 1, 32, rec.heldout_slice.windows);
  const loss = await evalLoss(modelLogits(model), slice);
  assert.ok(Math.abs(loss - rec.heldout_slice.loss_nats) < 1e-4, `${loss} vs recorded ${rec.heldout_slice.loss_nats}`);
  const card = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
  assert.ok(
    card.includes(rec.heldout.loss_nats.toFixed(4)) && card.includes(rec.heldout.unigram_entropy_bits.toFixed(4)),
  );
  model.dispose();
  const bad = spawnSync(
    process.execPath,
    [path.join(ROOT, 'bin', 'cramlab.js'), 'train', '--out', out, '--arch', 'gru'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--arch must be llama or mamba/);
});
