// Issue 5: every architecture against the shared reference vectors (an independent float64 PyTorch
// implementation following HF transformers, see test/fixtures/reference/README.md).
//   (a) full logits of cases a, b, c within 1e-4;
//   (b) the mem case: inputs_embeds = [mem; embed(ids)], text logits, loss and dL/dmem (tf.grad).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { modelFromTensors } from '../src/io/checkpoint';
import { tfjsModel } from '../src/native/model';
import { readSafetensors } from '../src/io/safetensors';
import { ARCHITECTURES } from '../src/models/index';
import type { CausalLM } from '../src/models/types';
import type { Mamba } from '../src/models/mamba';
import { selectiveScanChunked, selectiveScanSequential, type SelectiveScan } from '../src/models/mamba_scan';

const REF = path.join(__dirname, 'fixtures', 'reference');
const dirs = fs
  .readdirSync(REF)
  .filter((d) => fs.existsSync(path.join(REF, d, 'config.json')))
  .sort();

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function load(dir: string): {
  model: CausalLM;
  vectors: any;
  logits: Map<string, { shape: number[]; data: Float32Array }>;
} {
  const config = JSON.parse(fs.readFileSync(path.join(REF, dir, 'config.json'), 'utf8'));
  const { tensors } = readSafetensors(path.join(REF, dir, 'model.safetensors'));
  const model = tfjsModel(modelFromTensors(config, tensors)); // the tfjs models (the native one has its own test)
  const vectors = JSON.parse(fs.readFileSync(path.join(REF, dir, 'vectors.json'), 'utf8'));
  const logits = readSafetensors(path.join(REF, dir, 'vectors.safetensors')).tensors as any;
  return { model, vectors, logits };
}

/** Mean next-token cross-entropy of text logits [1, L, V] against ids (the authors' shifted loss). */
function textLoss(textLogits: tf.Tensor3D, ids: number[]): tf.Scalar {
  const [, L, V] = textLogits.shape;
  const logp = tf.logSoftmax(tf.reshape(tf.slice(textLogits, [0, 0, 0], [1, L - 1, V]), [L - 1, V]));
  const target = tf.oneHot(tf.tensor1d(ids.slice(1), 'int32'), V);
  return tf.neg(tf.mean(tf.sum(tf.mul(logp, target), -1))) as tf.Scalar;
}

for (const dir of dirs) {
  const type = JSON.parse(fs.readFileSync(path.join(REF, dir, 'config.json'), 'utf8')).model_type;
  const skip = type in ARCHITECTURES ? undefined : `model_type '${type}' is not implemented yet`;

  test(`${dir}: logits of cases a, b, c match the reference within 1e-4`, { skip }, async (t) => {
    await initBackend();
    const { model, vectors, logits } = load(dir);
    for (const c of vectors.cases) {
      const ids = c.input_ids as number[][];
      const ref = logits.get(c.logits_tensor)!;
      assert.deepEqual(ref.shape, c.logits_shape);
      const got = tf.tidy(() => model.forward(model.embed(tf.tensor2d(ids, undefined, 'int32'))));
      assert.deepEqual(got.shape, c.logits_shape, `case ${c.name}: logits shape`);
      const diff = maxAbsDiff(got.dataSync(), ref.data);
      got.dispose();
      t.diagnostic(`case ${c.name}: max |logit diff| ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-4, `${dir} case ${c.name}: max |logit diff| ${diff.toExponential(2)} > 1e-4`);
    }
    model.dispose();
  });

  test(`${dir}: mem case text logits, loss and dL/dmem match the reference`, { skip }, async (t) => {
    await initBackend();
    const { model, vectors, logits } = load(dir);
    const m = vectors.mem_case;
    const K: number = m.K;
    const ids: number[] = m.input_ids;
    const memWidth = m.mem[0].length;
    assert.equal(memWidth, model.info.memDim, 'mem vectors have the width memDim');
    const mem = tf.tensor2d(Float32Array.from(m.mem.flat()), [K, memWidth]);
    const tokens = tf.tidy(() => model.embed(tf.tensor2d([ids], undefined, 'int32')));
    const textLogitsOf = (memT: tf.Tensor): tf.Tensor3D => {
      const all = model.forward(tf.concat([tf.expandDims(memT, 0), tokens], 1) as tf.Tensor3D);
      return tf.slice(all, [0, K, 0], [1, ids.length, -1]);
    };

    const text = tf.tidy(() => textLogitsOf(mem));
    const ref = logits.get(m.text_logits_tensor)!;
    const dLogits = maxAbsDiff(text.dataSync(), ref.data);
    assert.ok(dLogits <= 1e-4, `${dir} mem: max |text logit diff| ${dLogits.toExponential(2)} > 1e-4`);
    // Argmax predictions: only where the reference's top-1/top-2 margin is not a near-tie.
    const preds = tf.tidy(() => tf.argMax(text, -1)).dataSync();
    if (m.min_top1_top2_margin > 1e-3) assert.deepEqual(Array.from(preds).slice(0, ids.length - 1), m.predictions);
    text.dispose();

    const lossAndGrad = tf.valueAndGrad((memT: tf.Tensor) => textLoss(textLogitsOf(memT), ids));
    const { value, grad } = tf.tidy(() => lossAndGrad(mem));
    const loss = value.dataSync()[0];
    assert.ok(Math.abs(loss - m.loss) <= 1e-4, `${dir} mem: loss ${loss} vs reference ${m.loss}`);
    const refGrad = (m.grad_mem as number[][]).flat();
    const maxGrad = Math.max(...refGrad.map(Math.abs));
    const dGrad = maxAbsDiff(grad.dataSync(), refGrad);
    assert.ok(
      dGrad <= 1e-5 || dGrad / maxGrad <= 1e-3,
      `${dir} mem: max |dL/dmem diff| ${dGrad.toExponential(2)} (max |grad| ${maxGrad.toExponential(2)})`,
    );
    t.diagnostic(
      `mem: text logits ${dLogits.toExponential(2)}, loss ${Math.abs(loss - m.loss).toExponential(2)}, dL/dmem ${dGrad.toExponential(2)} (max |grad| ${maxGrad.toExponential(2)})`,
    );
    for (const x of [value, grad, mem, tokens]) x.dispose();
    model.dispose();
  });
}

// Mamba's fast scan against the per-time-step recurrence, on the reference checkpoint: logits and
// the gradient of a loss with respect to the input embeddings (what cramming differentiates).
test('mamba: the chunked log-depth scan equals the sequential recurrence, values and gradients (≤ 1e-5)', async (t) => {
  await initBackend();
  const { model, vectors, logits } = load('mamba');
  const mamba = model as Mamba;
  // Case b: one row of 33 steps; case c: a batch of two rows of 9.
  for (const name of ['b', 'c']) {
    const ids: number[][] = vectors.cases.find((c: any) => c.name === name).input_ids;
    const embeds = tf.tidy(() => model.embed(tf.tensor2d(ids, undefined, 'int32')));
    // The cramming loss (mean next-token cross-entropy per row, summed), differentiated with respect to every input embedding.
    const lossOf = (e: tf.Tensor) => {
      const all = model.forward(e as tf.Tensor3D);
      return tf.addN(ids.map((row, b) => textLoss(tf.slice(all, [b, 0, 0], [1, -1, -1]), row))) as tf.Scalar;
    };
    const run = (scan: SelectiveScan) => {
      mamba.scan = scan;
      const { value, grad } = tf.valueAndGrad(lossOf)(embeds);
      const out = { logits: tf.tidy(() => model.forward(embeds)).dataSync(), grad: grad.dataSync() };
      value.dispose();
      grad.dispose();
      return out;
    };
    const seq = run(selectiveScanSequential);
    // The sequential scan is itself checked against the reference logits.
    assert.ok(
      maxAbsDiff(seq.logits, logits.get(`${name}.logits`)!.data) <= 1e-4,
      `case ${name}: sequential scan vs reference logits`,
    );
    let gradNonZero = 0;
    for (const g of seq.grad) if (Math.abs(g) > 1e-6) gradNonZero++;
    assert.ok(gradNonZero > seq.grad.length / 2, 'gradients reach the input embeddings');
    // Chunks of 2 and 7 (many chunks, padded tail), 32 (case b: one step in the second chunk), 64 (one chunk).
    for (const chunk of [2, 7, 32, 64]) {
      const fast = run(selectiveScanChunked(chunk));
      const dl = maxAbsDiff(fast.logits, seq.logits);
      const dg = maxAbsDiff(fast.grad, seq.grad);
      t.diagnostic(
        `case ${name}, chunk ${chunk}: max |logit diff| ${dl.toExponential(2)}, max |grad diff| ${dg.toExponential(2)} (max |grad| ${Math.max(...Array.from(seq.grad, Math.abs)).toExponential(2)})`,
      );
      assert.ok(dl <= 1e-5, `case ${name}, chunk ${chunk}: logits differ by ${dl}`);
      assert.ok(dg <= 1e-5, `case ${name}, chunk ${chunk}: gradients differ by ${dg}`);
    }
    embeds.dispose();
  }
  model.dispose();
});

test('mamba scan: chunked equals sequential with extreme decays (exactly 0 and 1), batch 2', async () => {
  await initBackend();
  const [B, T, I, N] = [2, 37, 3, 4];
  // Decays spanning full forgetting (0, as exp(Δ·A) underflows to) through none (1).
  const dA = tf.tidy(() =>
    tf.clipByValue(tf.randomUniform([B, T, I, N], -0.3, 1.3, 'float32', 11), 0, 1),
  ) as tf.Tensor4D;
  const dBu = tf.randomNormal([B, T, I, N], 0, 1, 'float32', 12) as tf.Tensor4D;
  const C = tf.randomNormal([B, T, N], 0, 1, 'float32', 13) as tf.Tensor3D;
  const w = tf.randomNormal([B, T, I], 0, 1, 'float32', 14);
  const both = (scan: SelectiveScan) => {
    const y = tf.tidy(() => scan(dA, dBu, C));
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(scan(a as tf.Tensor4D, b as tf.Tensor4D, C), w)),
    )([dA, dBu]);
    const out = [y, ...grads].map((x) => x.dataSync());
    for (const x of [y, ...grads]) x.dispose();
    return out;
  };
  const seq = both(selectiveScanSequential);
  // Independent hand loop for the forward values: h = dA·h + dBu, y = Σ_n h·C.
  const [a, b, c] = [dA.dataSync(), dBu.dataSync(), C.dataSync()];
  const yHand = new Float64Array(B * T * I);
  for (let bb = 0; bb < B; bb++)
    for (let i = 0; i < I; i++)
      for (let n = 0; n < N; n++) {
        let h = 0;
        for (let t = 0; t < T; t++) {
          const k = ((bb * T + t) * I + i) * N + n;
          h = a[k] * h + b[k];
          yHand[(bb * T + t) * I + i] += h * c[(bb * T + t) * N + n];
        }
      }
  assert.ok(maxAbsDiff(seq[0], yHand) < 1e-4, 'sequential scan vs hand loop');
  for (const chunk of [1, 4, 16, 37, 50]) {
    const fast = both(selectiveScanChunked(chunk));
    for (let j = 0; j < 3; j++)
      assert.ok(
        maxAbsDiff(fast[j], seq[j]) <= 1e-5,
        `chunk ${chunk}: ${['y', 'dL/ddA', 'dL/ddBu'][j]} differs by ${maxAbsDiff(fast[j], seq[j])}`,
      );
  }
  for (const x of [dA, dBu, C, w]) x.dispose();
});
