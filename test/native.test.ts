// The native cram engine (native/, a C addon for Llama) against the reference vectors, against the
// tfjs engine, and under bad input. Skipped, with the reason, when the addon is not built.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { loadModel, modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { buildModel } from '../src/models/index';
import { Weights } from '../src/models/weights';
import { cram } from '../src/cram/cram';
import { greedyGenerate } from '../src/generate';
import { selectiveScanSequential } from '../src/models/mamba_scan';
import type { CausalLM } from '../src/models/types';
import { engineFor, nativeAddon, nativeModel, nativeUnavailable } from '../src/native/index';
import { NativeLlama, tfjsModel } from '../src/native/model';
import { NATIVE_SPECS } from '../src/native/specs';
import { MODELS_DIR, sharedModel } from './helpers/shared';

const REF = path.join(__dirname, 'fixtures', 'reference');
const addon = nativeAddon();
const skip = addon ? undefined : `native engine not built: ${nativeUnavailable()}`;
const stories = sharedModel('stories260K');
const SAMPLES = path.join(MODELS_DIR, '..', 'datasets', 'stories260k-samples.json');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function loadRef(dir: string) {
  const config = JSON.parse(fs.readFileSync(path.join(REF, dir, 'config.json'), 'utf8'));
  const model = modelFromTensors(config, readSafetensors(path.join(REF, dir, 'model.safetensors')).tensors);
  const vectors = JSON.parse(fs.readFileSync(path.join(REF, dir, 'vectors.json'), 'utf8'));
  const logits = readSafetensors(path.join(REF, dir, 'vectors.safetensors')).tensors;
  return { model, vectors, logits };
}

/** Token embeddings of ids, flattened [rows·T, d], looked up from the model's own matrix. */
function embedRows(model: CausalLM, ids: number[][]): Float32Array {
  const E = model.embedMatrix.dataSync() as Float32Array;
  const d = model.info.memDim;
  const x = new Float32Array(ids.flat().length * d);
  ids.flat().forEach((id, i) => x.set(E.subarray(id * d, (id + 1) * d), i * d));
  return x;
}

/** A one-text cramSteps state (what src/native/cram.ts builds), for driving the addon directly. */
function oneTextState(ids: number[], mem: Float32Array, K: number, S: number) {
  const Kd = mem.length;
  return {
    K,
    ids: Int32Array.from(ids),
    offsets: new Int32Array(1),
    lengths: Int32Array.from([ids.length]),
    mem: Float32Array.from(mem),
    m: new Float32Array(Kd),
    v: new Float32Array(Kd),
    bestMem: Float32Array.from(mem),
    bestCorrect: new Int32Array(1),
    bestStep: new Int32Array(1).fill(-1),
    counter: new Int32Array(1),
    done: new Int32Array(1),
    doneAt: new Int32Array(1),
    status: new Int32Array(1),
    bestLoss: new Float32Array(1).fill(NaN),
    minLoss: new Float32Array(1).fill(Infinity),
    lossOut: new Float32Array(S),
    correctOut: new Int32Array(S),
    gradOut: new Float32Array(Kd),
    lr: 1e-2,
    beta1: 0.9,
    beta2: 0.9,
    eps: 1e-8,
    weightDecay: 0.01,
    maxSteps: 5000,
    patience: 2000,
    it0: 0,
  };
}

/** Every reference model whose architecture has a native spec (src/native/specs.ts). */
const NATIVE_REFS = fs
  .readdirSync(REF)
  .filter((dir) => fs.existsSync(path.join(REF, dir, 'config.json')))
  .filter((dir) => JSON.parse(fs.readFileSync(path.join(REF, dir, 'config.json'), 'utf8')).model_type in NATIVE_SPECS)
  .sort();

for (const dir of NATIVE_REFS) {
  test(
    `native ${dir}: logits of cases a, b, c and the mem case's loss and dL/dmem match the reference`,
    { skip },
    async (t) => {
      await initBackend();
      const { model, vectors, logits } = loadRef(dir);
      assert.ok(
        model instanceof NativeLlama,
        `modelFromTensors gives a NativeModel for ${model.info.modelType} when the addon loads`,
      );
      const h = nativeModel(model);
      for (const c of vectors.cases) {
        const ids = c.input_ids as number[][];
        const got = addon!.forwardLogits(h, embedRows(model, ids), ids.length, ids[0].length);
        const diff = maxAbsDiff(got, logits.get(c.logits_tensor)!.data);
        t.diagnostic(`case ${c.name}: max |logit diff| ${diff.toExponential(2)}`);
        assert.ok(diff <= 1e-4, `case ${c.name}: max |logit diff| ${diff}`);
      }
      const m = vectors.mem_case;
      // [mem; embed(ids)] through forwardLogits: the text positions' logits (mem vectors are memDim wide)
      const memX = Float32Array.from([...m.mem.flat(), ...embedRows(model, [m.input_ids])]);
      const memLogits = addon!.forwardLogits(h, memX, 1, m.K + m.input_ids.length);
      const V = model.info.vocabSize;
      const memDiff = maxAbsDiff(memLogits.subarray(m.K * V), logits.get('mem.text_logits')!.data);
      t.diagnostic(`mem case: max |text logit diff| ${memDiff.toExponential(2)}`);
      assert.ok(memDiff <= 1e-4, `mem case: max |text logit diff| ${memDiff}`);
      const st = oneTextState(m.input_ids, Float32Array.from(m.mem.flat()), m.K, 1);
      assert.equal(addon!.cramSteps(h, st, 1), 1);
      assert.ok(Math.abs(st.lossOut[0] - m.loss) <= 1e-4, `loss ${st.lossOut[0]} vs ${m.loss}`);
      assert.equal(st.correctOut[0], m.correct);
      const ref = (m.grad_mem as number[][]).flat();
      const rel = maxAbsDiff(st.gradOut, ref) / Math.max(...ref.map(Math.abs));
      t.diagnostic(`dL/dmem max rel diff ${rel.toExponential(2)}`);
      assert.ok(rel <= 1e-4, `dL/dmem relative diff ${rel}`);
      model.dispose();
    },
  );

  test(
    `native ${dir}: cram() follows the reference 20-step AdamW trajectory (losses ≤ 1e-4, same correct counts)`,
    { skip },
    async (t) => {
      await initBackend();
      const { model, vectors } = loadRef(dir);
      const m = vectors.mem_case;
      const [r] = await cram(model, [m.input_ids], {
        engine: 'native',
        initMem: Float32Array.from(m.mem.flat()),
        maxSteps: 21,
        patience: 1000,
        curveEvery: 1,
        quiet: true,
      });
      // curve step s = evaluation before update s+1; step 20 = after all 20 updates (the reference's final)
      const refLoss = [...m.trajectory.map((e: any) => e.loss), m.final.loss];
      const refCorrect = [...m.trajectory.map((e: any) => e.correct), m.final.correct];
      assert.deepEqual(r.curve.step, [...Array(21).keys()]);
      const d = maxAbsDiff(r.curve.loss, refLoss);
      t.diagnostic(`max |trajectory loss diff| ${d.toExponential(2)}`);
      assert.ok(d <= 1e-4, `trajectory loss diff ${d}`);
      assert.deepEqual(r.curve.correct, refCorrect);
      model.dispose();
    },
  );
}

for (const dir of NATIVE_REFS.filter((d) => !d.startsWith('llama'))) {
  test(
    `native ${dir}: tf.grad through NativeModel.forward equals the tfjs gradient; KV-cache decode equals the tfjs decode`,
    { skip },
    async (t) => {
      await initBackend();
      const { model } = loadRef(dir);
      const twin = tfjsModel(model);
      assert.notEqual(twin, model);
      const [B, T, V] = [2, 6, model.info.vocabSize];
      const x = tf.randomNormal([B, T, model.info.memDim], 0, 0.5, 'float32', 7) as tf.Tensor3D;
      const w = tf.randomNormal([B, T, V], 0, 1, 'float32', 8);
      const gradOf = (m: CausalLM) =>
        tf.tidy(() =>
          tf
            .grad((e: tf.Tensor) => tf.sum(tf.mul(m.forward(e as tf.Tensor3D), w)))(x)
            .dataSync(),
        );
      const [a, b] = [gradOf(model), gradOf(twin)];
      const rel = maxAbsDiff(a, b) / Math.max(...Array.from(b, Math.abs));
      t.diagnostic(`max rel |dL/dx| diff native vs tfjs ${rel.toExponential(2)}`);
      assert.ok(rel <= 1e-4, `relative diff ${rel}`);
      tf.dispose([x, w]);
      const prefix = tf.tensor2d(
        Float32Array.from({ length: 2 * model.info.memDim }, (_, i) => Math.sin(i) * 0.3),
        [2, model.info.memDim],
      );
      for (const p of [undefined, prefix]) {
        const opts = { maxNewTokens: 40, eosTokenIds: [], prefix: p };
        const nat = await greedyGenerate(model, [1, 5, 9, 13], { ...opts, engine: 'native' });
        const ref = await greedyGenerate(model, [1, 5, 9, 13], { ...opts, engine: 'tfjs' });
        assert.equal(nat.length, 40);
        assert.deepEqual(nat, ref);
      }
      prefix.dispose();
      model.dispose();
    },
  );

  test(
    `native ${dir}: native and tfjs cram() give the same statuses, best accuracies and steps on 6 texts`,
    { skip },
    async (t) => {
      await initBackend();
      const { model, vectors } = loadRef(dir);
      const ids: number[] = vectors.mem_case.input_ids;
      // the reference text, pieces and a rotation of it (random weights: the short ones decode, the long ones run out of patience)
      const texts = [
        ids,
        [...ids.slice(5), ...ids.slice(0, 5)],
        ids.slice(0, 10),
        [1, ...ids.slice(8)],
        ids.slice(0, 3),
        ids.slice(4, 7),
      ];
      const opts = { maxSteps: 120, patience: 40, quiet: true };
      const nat = await cram(model, texts, { ...opts, engine: 'native' });
      const tfr = await cram(model, texts, { ...opts, engine: 'tfjs' });
      t.diagnostic(`native: ${nat.map((r) => `${r.status[0]}${r.bestCorrect}@${r.stepsToBest}/${r.steps}`).join(' ')}`);
      t.diagnostic(`tfjs:   ${tfr.map((r) => `${r.status[0]}${r.bestCorrect}@${r.stepsToBest}/${r.steps}`).join(' ')}`);
      assert.deepEqual(
        nat.map((r) => r.status),
        tfr.map((r) => r.status),
      );
      assert.deepEqual(
        nat.map((r) => r.bestCorrect),
        tfr.map((r) => r.bestCorrect),
      );
      assert.deepEqual(
        nat.map((r) => r.steps),
        tfr.map((r) => r.steps),
      );
      for (const [i, r] of nat.entries())
        assert.ok(Math.abs(r.curve.loss[0] - tfr[i].curve.loss[0]) <= 1e-4, `text ${i}: first loss`);
      model.dispose();
    },
  );
}

// [2, 37, 5, 4]: T over 3 chunks of SCAN_CHUNK = 16 (the backward recomputes inside each), one channel group;
// [2, 21, 150, 3]: 3 channel groups of 50 (kernels.c scan_groups), their dB/dC partial sums added up
for (const [B, T, I, N] of [
  [2, 37, 5, 4],
  [2, 21, 150, 3],
])
  test(
    `native Mamba selective scan kernel (B ${B}, T ${T}, I ${I}, N ${N}): y and dL/d(Δ, x, B, C) equal tfjs autodiff through the sequential scan`,
    { skip },
    async (t) => {
      await initBackend();
      const r = (shape: number[], seed: number, lo: number, hi: number) =>
        tf.randomUniform(shape, lo, hi, 'float32', seed);
      const delta = r([B, T, I], 1, 0.01, 0.5),
        x = r([B, T, I], 2, -1, 1),
        Bm = r([B, T, N], 3, -1, 1),
        Cm = r([B, T, N], 4, -1, 1);
      const A = tf.neg(tf.exp(r([I, N], 5, -1, 1))),
        D = r([I], 6, 0.5, 1.5),
        dy = r([B, T, I], 7, -1, 1);
      const scan = (dl: tf.Tensor, xx: tf.Tensor, bb: tf.Tensor, cc: tf.Tensor) => {
        const d4 = tf.reshape(dl, [B, T, I, 1]);
        const dA = tf.exp(tf.mul(d4, A)) as tf.Tensor4D;
        const dBu = tf.mul(tf.mul(d4, tf.reshape(bb, [B, T, 1, N])), tf.reshape(xx, [B, T, I, 1])) as tf.Tensor4D;
        return tf.add(selectiveScanSequential(dA, dBu, cc as tf.Tensor3D), tf.mul(xx, D));
      };
      const yRef = tf.tidy(() => scan(delta, x, Bm, Cm));
      const gRef = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
        tf.sum(tf.mul(scan(a, b, c, d), dy)),
      )([delta, x, Bm, Cm]);
      const f = (v: tf.Tensor) => v.dataSync() as Float32Array;
      const got = addon!.selectiveScan(B, T, I, N, f(delta), f(A), f(Bm), f(Cm), f(x), f(D), f(dy));
      const rel = (a: ArrayLike<number>, b: tf.Tensor) => maxAbsDiff(a, f(b)) / Math.max(...Array.from(f(b), Math.abs));
      const diffs = {
        y: rel(got.y, yRef),
        ddelta: rel(got.ddelta!, gRef[0]),
        dx: rel(got.dx!, gRef[1]),
        dB: rel(got.dB!, gRef[2]),
        dC: rel(got.dC!, gRef[3]),
      };
      t.diagnostic(
        `max rel diff ${Object.entries(diffs)
          .map(([k, v]) => `${k} ${v.toExponential(2)}`)
          .join(', ')}`,
      );
      for (const [k, v] of Object.entries(diffs)) assert.ok(v <= 1e-5, `${k}: ${v}`);
      tf.dispose([delta, x, Bm, Cm, A, D, dy, yRef, ...gRef]);
    },
  );

test('native opt: a Hub file naming tensors decoder.* (no model. prefix) gives the same logits', { skip }, async () => {
  await initBackend();
  const config = JSON.parse(fs.readFileSync(path.join(REF, 'opt_350m_style', 'config.json'), 'utf8'));
  const tensors = readSafetensors(path.join(REF, 'opt_350m_style', 'model.safetensors')).tensors;
  const renamed = new Map([...tensors].map(([k, v]) => [k.replace(/^model\./, ''), v]));
  const [a, b] = [modelFromTensors(config, tensors), modelFromTensors(config, renamed)];
  assert.ok(b instanceof NativeLlama);
  const x = embedRows(a, [[1, 7, 42, 9]]);
  assert.deepEqual(addon!.forwardLogits(nativeModel(b), x, 1, 4), addon!.forwardLogits(nativeModel(a), x, 1, 4));
  a.dispose();
  b.dispose();
});

test(
  'tf.grad through NativeLlama.forward equals the tfjs Llama gradient (llama_gqa, weighted logits)',
  { skip },
  async (t) => {
    await initBackend();
    const { model } = loadRef('llama_gqa');
    assert.ok(model instanceof NativeLlama, 'modelFromTensors gives a NativeLlama when the addon loads');
    const twin = tfjsModel(model);
    const [B, T, V] = [2, 5, model.info.vocabSize];
    const x = tf.randomNormal([B, T, model.info.hiddenSize], 0, 0.5, 'float32', 7) as tf.Tensor3D;
    const w = tf.randomNormal([B, T, V], 0, 1, 'float32', 8);
    const gradOf = (m: CausalLM) =>
      tf.tidy(() =>
        tf
          .grad((e: tf.Tensor) => tf.sum(tf.mul(m.forward(e as tf.Tensor3D), w)))(x)
          .dataSync(),
      );
    const [a, b] = [gradOf(model), gradOf(twin)];
    const rel = maxAbsDiff(a, b) / Math.max(...Array.from(b, Math.abs));
    t.diagnostic(`max rel |dL/dx| diff native vs tfjs ${rel.toExponential(2)}`);
    assert.ok(
      Array.from(a).some((v) => v !== 0),
      'non-zero gradient',
    );
    assert.ok(rel <= 1e-4, `relative diff ${rel}`);
    tf.dispose([x, w]);
    model.dispose();
  },
);

test('native engine: bad input to the addon throws an Error with a message (no crash)', { skip }, async () => {
  await initBackend();
  const { model, vectors } = loadRef('llama_gqa');
  const h = nativeModel(model);
  const m = vectors.mem_case;
  const mem = Float32Array.from(m.mem.flat());
  const d = model.info.memDim;
  const bad = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: Error) => e instanceof Error && re.test(e.message));
  bad(() => addon!.forwardLogits(h, new Float32Array(5), 1, 3), /embeds has 5 values, expected 192/);
  bad(() => addon!.forwardLogits(h, new Float32Array(3 * d), 1, 100000), /T must be an integer in/);
  bad(() => addon!.forwardLogits(h, [1, 2, 3] as unknown as Float32Array, 1, 3), /embeds must be a Float32Array/);
  const nanMem = Float32Array.from(mem);
  nanMem[3] = NaN;
  bad(() => addon!.cramSteps(h, oneTextState(m.input_ids, nanMem, m.K, 1), 1), /mem of text 0 contains NaN/);
  bad(
    () => addon!.cramSteps(h, oneTextState([1, 2, 99999], mem, m.K, 1), 1),
    /token id 99999 is outside the vocabulary \[0, 300\)/,
  );
  bad(() => addon!.cramSteps(h, oneTextState([1, -4], mem, m.K, 1), 1), /token id -4 is outside/);
  bad(
    () => addon!.cramSteps(h, oneTextState(m.input_ids, mem.subarray(1), m.K, 1), 1),
    /mem has 127 values, expected 128/,
  );
  bad(
    () => addon!.cramSteps(h, { ...oneTextState(m.input_ids, mem, m.K, 1), lossOut: new Float32Array(1) }, 4),
    /lossOut has 1 values, expected 4/,
  );
  bad(
    () => addon!.cramSteps(h, { ...oneTextState(m.input_ids, mem, m.K, 1), lr: NaN }, 1),
    /lr must be a finite number/,
  );
  bad(
    () => addon!.generate(h, new Float32Array(d), 1, 5, new Float32Array(1) as unknown as Int32Array),
    /eos must be an Int32Array/,
  );
  bad(() => addon!.createLlama({ hidden_size: 64 } as any, new Float32Array(4), {}), /vocab_size must be a number/);
  bad(() => addon!.createModel('llama', { hidden_size: 64 } as any, {}), /vocab_size must be a number/);
  bad(() => addon!.createModel('gpt2', {}, {}), /model_type 'gpt2' has no native engine \(native: llama/);
  // a 1M-position request: a one-line Error, nothing allocated
  const oneLine = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: Error) => e instanceof Error && re.test(e.message) && !e.message.includes('\n'));
  oneLine(
    () => addon!.forwardLogits(h, new Float32Array(d), 1, 1 << 20),
    /^native engine: T must be an integer in \[1, \d+\], got 1048576$/,
  );
  oneLine(
    () => addon!.generate(h, new Float32Array(d), 1, 1 << 20, new Int32Array(0)),
    /^native engine: maxNew must be an integer in \[0, \d+\], got 1048576$/,
  );
  oneLine(
    () =>
      addon!.cramSteps(
        h,
        oneTextState(
          Array.from({ length: 1 << 20 }, () => 1),
          mem,
          m.K,
          1,
        ),
        1,
      ),
    /^native engine: text 0: 1048576 tokens \+ K mem exceed the context of \d+$/,
  );
  bad(() => addon!.cramSteps({} as any, {}, 1), /first argument must be a model handle/);
  bad(() => addon!.createModel('opt', { hidden_size: 64, word_embed_proj_dim: 32 }, {}), /vocab_size must be a number/);
  bad(
    () =>
      addon!.createModel(
        'gpt_neox',
        {
          hidden_size: 64,
          vocab_size: 10,
          num_hidden_layers: 1,
          num_attention_heads: 3,
          intermediate_size: 8,
          max_position_embeddings: 8,
          layer_norm_eps: 1e-5,
          rotary_dim: 4,
        },
        {},
      ),
    /hidden_size 64 is not a multiple of num_attention_heads 3/,
  );
  const olmoCfg = {
    hidden_size: 8,
    vocab_size: 10,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    head_dim: 4,
    intermediate_size: 8,
    max_position_embeddings: 8,
    clip_qkv: 0,
  };
  bad(() => addon!.createModel('olmo', olmoCfg, {}), /tensor 'model.embed_tokens.weight' is missing/);
  bad(
    () => addon!.createModel('olmo', olmoCfg, { 'model.embed_tokens.weight': new Float32Array(3) }),
    /tensor 'model.embed_tokens.weight' has 3 values, expected 80/,
  );
  bad(
    () => addon!.createModel('olmo', olmoCfg, { 'model.embed_tokens.weight': new Float32Array(80).fill(NaN) }),
    /tensor 'model.embed_tokens.weight' holds NaN at flat index 0 \(weights must be finite\)/,
  );
  bad(() => addon!.createModel('olmo', { ...olmoCfg, clip_qkv: -1 }, {}), /clip_qkv must be ≥ 0/);
  bad(() => addon!.modelInfo({} as any), /first argument must be a model handle/);
  const x = embedRows(model, [[1, 2]]);
  model.dispose(); // frees the native copy too
  bad(() => addon!.forwardLogits(h, x, 1, 2), /the model handle was disposed/);
  bad(() => addon!.cramSteps(h, oneTextState(m.input_ids, mem, m.K, 1), 1), /the model handle was disposed/);
});

test('CRAMLAB_ENGINE=native for a model the native engine cannot run is a one-line ModelError', { skip }, async () => {
  await initBackend();
  // every architecture runs natively now: a model_type without a native spec, and a tfjs model built
  // without loadModel/modelFromTensors (no checkpoint tensors to copy)
  const gpt2 = { info: { modelType: 'gpt2' } } as unknown as CausalLM;
  assert.equal(engineFor(gpt2), 'tfjs');
  assert.throws(() => engineFor(gpt2, 'native'), {
    name: 'ModelError',
    message:
      /native engine was requested \(CRAMLAB_ENGINE=native\) but model_type 'gpt2' has no native engine \(native: .*mamba/,
  });
  const config = JSON.parse(fs.readFileSync(path.join(REF, 'mamba', 'config.json'), 'utf8'));
  const w = new Weights(readSafetensors(path.join(REF, 'mamba', 'model.safetensors')).tensors, 'checkpoint');
  const bare = buildModel(config, w);
  assert.equal(engineFor(bare), 'tfjs');
  assert.throws(
    () => engineFor(bare, 'native'),
    (e: Error) =>
      e.name === 'ModelError' &&
      /but the model was not built by loadModel\/modelFromTensors/.test(e.message) &&
      !e.message.includes('\n'),
  );
  bare.dispose();
});

// Shapes the reference model does not have: kernel 1 and 3, in/out_proj biases without a conv bias, an
// untied head, time_step_rank 'auto', I = 70 (two channel groups in the scan's backward), N = 5.
for (const K of [1, 3])
  test(
    `native mamba, conv_kernel ${K}, biases, untied head, I 70: logits, dL/dx and the recurrent decode equal the tfjs Mamba`,
    { skip },
    async (t) => {
      await initBackend();
      const [d, I, N, V, layers] = [12, 70, 5, 40, 2];
      const R = Math.ceil(d / 16);
      let seed = 11;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.8;
      const shapes: Record<string, number[]> = {
        'backbone.embeddings.weight': [V, d],
        'backbone.norm_f.weight': [d],
        'lm_head.weight': [V, d],
      };
      for (let i = 0; i < layers; i++) {
        const p = `backbone.layers.${i}.`;
        Object.assign(shapes, {
          [p + 'norm.weight']: [d],
          [p + 'mixer.in_proj.weight']: [2 * I, d],
          [p + 'mixer.in_proj.bias']: [2 * I],
          [p + 'mixer.conv1d.weight']: [I, 1, K],
          [p + 'mixer.x_proj.weight']: [R + 2 * N, I],
          [p + 'mixer.dt_proj.weight']: [I, R],
          [p + 'mixer.dt_proj.bias']: [I],
          [p + 'mixer.A_log']: [I, N],
          [p + 'mixer.D']: [I],
          [p + 'mixer.out_proj.weight']: [d, I],
          [p + 'mixer.out_proj.bias']: [d],
        });
      }
      const tensors = new Map(
        Object.entries(shapes).map(([name, shape]) => {
          const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, j) =>
            name.endsWith('A_log')
              ? Math.log(1 + (j % N)) + rnd()
              : name.endsWith('norm.weight') || name.endsWith('norm_f.weight')
                ? 1 + rnd()
                : 2 * rnd(),
          );
          return [name, { dtype: 'F32' as const, shape, data }];
        }),
      );
      const config = {
        model_type: 'mamba',
        hidden_size: d,
        intermediate_size: I,
        state_size: N,
        time_step_rank: 'auto',
        conv_kernel: K,
        vocab_size: V,
        num_hidden_layers: layers,
        layer_norm_epsilon: 1e-5,
        tie_word_embeddings: false,
      };
      const model = modelFromTensors(config, tensors as any);
      assert.ok(model instanceof NativeLlama);
      const twin = tfjsModel(model);
      const [B, T] = [2, 23];
      const x = tf.randomNormal([B, T, d], 0, 1, 'float32', 3) as tf.Tensor3D;
      const w = tf.randomNormal([B, T, V], 0, 1, 'float32', 4);
      const logits = (m: CausalLM) => tf.tidy(() => m.forward(x).dataSync());
      const [la, lb] = [logits(model), logits(twin)];
      const gradOf = (m: CausalLM) =>
        tf.tidy(() =>
          tf
            .grad((e: tf.Tensor) => tf.sum(tf.mul(m.forward(e as tf.Tensor3D), w)))(x)
            .dataSync(),
        );
      const [ga, gb] = [gradOf(model), gradOf(twin)];
      const logitDiff = maxAbsDiff(la, lb),
        rel = maxAbsDiff(ga, gb) / Math.max(...Array.from(gb, Math.abs));
      t.diagnostic(
        `max |logit diff| ${logitDiff.toExponential(2)} (max |logit| ${Math.max(...Array.from(lb, Math.abs)).toFixed(1)}), max rel |dL/dx| diff ${rel.toExponential(2)}`,
      );
      assert.ok(logitDiff <= 1e-4, `logits ${logitDiff}`);
      assert.ok(rel <= 1e-4, `dL/dx ${rel}`);
      const prefix = tf.tensor2d(
        Float32Array.from({ length: 2 * d }, (_, i) => Math.cos(i) * 0.5),
        [2, d],
      );
      for (const p of [undefined, prefix]) {
        const opts = { maxNewTokens: 30, eosTokenIds: [], prefix: p };
        assert.deepEqual(
          await greedyGenerate(model, [1, 2, 3], { ...opts, engine: 'native' }),
          await greedyGenerate(model, [1, 2, 3], { ...opts, engine: 'tfjs' }),
        );
      }
      tf.dispose([x, w, prefix]);
      model.dispose();
    },
  );

const MAMBA32 = path.join(__dirname, '..', 'models', 'cram-mamba-d32');

test(
  'cram-mamba-d32, 6 texts: native and tfjs cram() give the same statuses and best accuracies',
  { skip },
  async (t) => {
    await initBackend();
    const { model, tokenizer } = await loadModel(MAMBA32);
    assert.ok(model instanceof NativeLlama, 'a Mamba checkpoint loads as a NativeModel');
    // two short ones the model holds (status 'decoded'), the others run out of patience or steps
    const texts = [
      'Th',
      'The',
      'Once upon a time there was a little girl named Lily.',
      'The cat sat on the mat and looked at the bird in the tree.',
      'Tom liked to play with his red ball in the park every day after school.',
      'She said hello.',
    ].map((s) => tokenizer.encode(s));
    const opts = { maxSteps: 150, patience: 60, quiet: true };
    const nat = await cram(model, texts, { ...opts, engine: 'native' });
    const tfr = await cram(model, texts, { ...opts, engine: 'tfjs' });
    t.diagnostic(`native: ${nat.map((r) => `${r.status[0]}${r.bestCorrect}@${r.stepsToBest}/${r.steps}`).join(' ')}`);
    t.diagnostic(`tfjs:   ${tfr.map((r) => `${r.status[0]}${r.bestCorrect}@${r.stepsToBest}/${r.steps}`).join(' ')}`);
    assert.deepEqual(
      nat.map((r) => r.status),
      tfr.map((r) => r.status),
    );
    assert.deepEqual(
      nat.map((r) => r.bestCorrect),
      tfr.map((r) => r.bestCorrect),
    );
    for (const [i, r] of nat.entries())
      assert.ok(
        Math.abs(r.curve.loss[0] - tfr[i].curve.loss[0]) <= 1e-4,
        `text ${i}: first loss ${r.curve.loss[0]} vs ${tfr[i].curve.loss[0]}`,
      );
    model.dispose();
  },
);

function w1Texts(n: number, N: number): number[][] {
  const samples: number[][] = JSON.parse(fs.readFileSync(SAMPLES, 'utf8')).samples.map((s: any) => s.ids);
  return samples.slice(0, n).map((ids) => ids.slice(0, N));
}

test(
  'stories260K, 16 texts of 16 tokens: native and tfjs cram() give the same statuses and best accuracies',
  { skip: skip ?? stories.skip },
  async (t) => {
    await initBackend();
    const { model } = await loadModel(stories.dir!);
    const texts = w1Texts(16, 16);
    const opts = { maxSteps: 300, patience: 100, quiet: true };
    const nat = await cram(model, texts, { ...opts, engine: 'native' });
    const tfr = await cram(model, texts, { ...opts, engine: 'tfjs' });
    t.diagnostic(`native: ${nat.map((r) => `${r.status[0]}${r.bestCorrect}@${r.stepsToBest}`).join(' ')}`);
    t.diagnostic(`tfjs:   ${tfr.map((r) => `${r.status[0]}${r.bestCorrect}@${r.stepsToBest}`).join(' ')}`);
    assert.deepEqual(
      nat.map((r) => r.status),
      tfr.map((r) => r.status),
    );
    assert.deepEqual(
      nat.map((r) => r.bestCorrect),
      tfr.map((r) => r.bestCorrect),
    );
    assert.ok(new Set(nat.map((r) => r.status)).size >= 2, 'the run exercises more than one stopping rule');
    for (const [i, r] of nat.entries()) {
      assert.ok(
        Math.abs(r.curve.loss[0] - tfr[i].curve.loss[0]) <= 1e-4,
        `text ${i}: first loss ${r.curve.loss[0]} vs ${tfr[i].curve.loss[0]}`,
      );
      assert.equal(r.steps, tfr[i].steps, `text ${i}: steps`);
    }
    model.dispose();
  },
);

test(
  'native cram(): 2000 steps keep memory flat (RSS bounded, no tfjs tensors made)',
  { skip: skip ?? stories.skip },
  async () => {
    await initBackend();
    const { model } = await loadModel(stories.dir!);
    const texts = w1Texts(2, 32);
    const opts = {
      engine: 'native' as const,
      maxSteps: 2000,
      patience: 5000,
      quiet: true,
      initMem: texts.map(() => new Float32Array(model.info.memDim)),
    };
    await cram(model, texts, { ...opts, maxSteps: 200 }); // warm-up: buffers at their size
    const tensors = tf.memory().numTensors;
    const rss = process.memoryUsage().rss;
    const r = await cram(model, texts, opts);
    assert.ok(r.every((x) => x.steps === 2000 || x.status === 'decoded'));
    const grown = (process.memoryUsage().rss - rss) / 2 ** 20;
    assert.equal(tf.memory().numTensors, tensors, 'tfjs tensors');
    assert.ok(grown < 32, `RSS grew by ${grown.toFixed(1)} MiB over 2000 steps`);
    model.dispose();
  },
);

test(
  'stories260K: KV-cache greedy decoding (native) equals the no-cache tfjs decode, with and without a mem prefix',
  { skip: skip ?? stories.skip },
  async () => {
    await initBackend();
    const { model } = await loadModel(stories.dir!);
    const ids = w1Texts(1, 8)[0];
    const prefix = tf.tensor2d(
      Float32Array.from({ length: 2 * model.info.memDim }, (_, i) => Math.sin(i) * 0.3),
      [2, model.info.memDim],
    );
    for (const p of [undefined, prefix]) {
      const opts = { maxNewTokens: 120, eosTokenIds: [], prefix: p };
      const nat = await greedyGenerate(model, ids, { ...opts, engine: 'native' });
      const ref = await greedyGenerate(model, ids, { ...opts, engine: 'tfjs' });
      assert.equal(nat.length, 120);
      assert.deepEqual(nat, ref);
    }
    prefix.dispose();
    model.dispose();
  },
);
