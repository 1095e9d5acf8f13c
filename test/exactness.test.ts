// What a vector really holds: storage precisions (bits and round trips through .cram files), exactness
// per precision on a constructed vector that decodes at fp32 and not after rounding, cram's margin
// target on both engines, and `encode --precision int8` → `decode --check`. Uses the committed suite
// model models/cram-llama-d64 (byte-level, d = 64), so nothing here needs ../shared.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel, type LoadedModel } from '../src/io/checkpoint';
import { cram, initialMem } from '../src/cram/cram';
import { decode } from '../src/decode';
import { greedyGenerate } from '../src/generate';
import { exactness, margins } from '../src/metrics/exactness';
import { CRAMLAB_VERSION, idsSha256, loadMem, saveMem, FILE_PRECISIONS } from '../src/mem-file';
import { bf16Bits, f16Bits, f16Value, PRECISIONS, quantise, roundTo, vectorBits } from '../src/precision';
import { nativeAddon, type Engine } from '../src/native/index';
import { capacitySummary, exactCapacity } from '../src/metrics/summary';
import type { TextMetrics } from '../src/metrics/text';

const ROOT = path.join(__dirname, '..');
const MODEL = path.join(ROOT, 'models', 'cram-llama-d64');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-exact-'));
let loaded: LoadedModel | undefined;
const suite = async () => (loaded ??= await loadModel(MODEL));

test('storage precisions: IEEE bits, per-vector int scales, bits per vector', () => {
  assert.equal(f16Bits(1), 0x3c00);
  assert.equal(f16Bits(-2), 0xc000);
  assert.equal(f16Bits(65504), 0x7bff);
  assert.equal(f16Bits(65520), 0x7c00, '65520 rounds to even: +Inf');
  assert.equal(f16Bits(2 ** -24), 1);
  assert.equal(f16Value(f16Bits(0.1)), 0.0999755859375);
  assert.equal(bf16Bits(1), 0x3f80);
  assert.equal(bf16Bits(1 + 2 ** -8), 0x3f80, 'a tie rounds to the even mantissa');
  assert.equal(bf16Bits(1 + 3 * 2 ** -8), 0x3f82);
  const v = Float32Array.from([0.5, -1, 0.25, 0, 100, -3, 7, 1e-3]);
  const q = quantise(v, 2, 'int8');
  assert.deepEqual(Array.from(q.scales), [Math.fround(1 / 127), Math.fround(100 / 127)]);
  assert.deepEqual(Array.from(q.codes), [64, -127, 32, 0, 127, -4, 9, 0]);
  for (const p of PRECISIONS) {
    const r = roundTo(v, 2, p);
    assert.deepEqual(roundTo(r, 2, p), r, `${p} rounding is idempotent`);
  }
  assert.deepEqual(
    roundTo(v, 2, 'int4').slice(0, 4),
    Float32Array.from([3, -7, 2, 0], (q) => q * Math.fround(1 / 7)),
  );
  assert.equal(vectorBits(2, 64, 'bf16'), 2 * 64 * 16);
  assert.equal(vectorBits(2, 64, 'int8'), 2 * 64 * 8 + 2 * 32, 'int codes carry a float32 scale per vector');
});

test('.cram files at bf16/fp16/int8 read back exactly the rounded vectors, in fewer bytes', () => {
  const K = 2;
  const d = 64;
  const vectors = Float32Array.from({ length: K * d }, (_, i) => Math.sin(i * 1.7) * (i % 9 === 0 ? 40 : 1));
  const base = {
    vectors,
    K,
    memDim: d,
    tokens: 5,
    firstId: 1,
    model: 'm',
    weightsHash: 'a'.repeat(64),
    tokenizerHash: 'b'.repeat(64),
    idsSha256: idsSha256([1, 2, 3, 4, 5]),
    cramlab: CRAMLAB_VERSION,
  };
  const sizes: Record<string, number> = {};
  for (const precision of FILE_PRECISIONS) {
    const file = path.join(tmp, `v-${precision}.cram`);
    saveMem(file, { ...base, precision });
    sizes[precision] = fs.statSync(file).size;
    const back = loadMem(file);
    assert.deepEqual(back.vectors, roundTo(vectors, K, precision), precision);
    assert.equal(back.precision ?? 'fp32', precision);
  }
  assert.equal(sizes.fp32 - sizes.bf16, K * d * 2);
  assert.ok(sizes.int8 < sizes.fp16 && sizes.fp16 === sizes.bf16, JSON.stringify(sizes));
});

test('a vector that decodes at fp32 but not after rounding is reported as such, per precision', async () => {
  const { model } = await suite();
  const d = model.info.memDim;
  // A component past fp16's range (65504): fp16 storage turns it into +Inf. The text is what greedy
  // decoding writes from the fp32 vector, so at fp32 it is exact by construction.
  const mem = initialMem(model, 1, 7);
  mem[3] = 1e5;
  const prefix = tf.tensor2d(mem, [1, d]);
  const first = 1;
  const ids = [first, ...(await greedyGenerate(model, [first], { prefix, maxNewTokens: 11, eosTokenIds: [] }))];
  prefix.dispose();
  const x = await exactness(model, ids, mem, 1);
  assert.equal(x.greedyExact, true);
  assert.equal(x.greedyHorizon, ids.length);
  assert.equal(x.teacherForced, 1);
  assert.ok(x.minMargin > 0, `min margin ${x.minMargin}`);
  assert.equal(x.precisions.fp16.exact, false, 'fp16 storage overflows the vector');
  assert.ok(x.precisions.fp16.horizon < ids.length);
  // every precision's verdict is what a plain greedy decode of the rounded vector says
  for (const p of PRECISIONS) {
    if (!roundTo(mem, 1, p).every(Number.isFinite)) {
      assert.equal(x.precisions[p].horizon, 1, `${p}: a vector with Inf holds nothing`);
      continue;
    }
    const back = await decode(model, { vectors: roundTo(mem, 1, p), K: 1, tokens: ids.length, firstId: first });
    const same = back.ids.every((t, i) => t === ids[i]);
    assert.equal(x.precisions[p].exact, same, p);
    if (same) assert.equal(x.precisions[p].horizon, ids.length);
    else
      assert.equal(
        x.precisions[p].horizon,
        back.ids.findIndex((t, i) => t !== ids[i]),
        `${p} horizon`,
      );
  }
  assert.equal(
    x.exactBits,
    Math.min(...PRECISIONS.filter((p) => x.precisions[p].exact).map((p) => x.precisions[p].bits)),
  );
});

const engines: Engine[] = ['tfjs', ...(nativeAddon() ? (['native'] as const) : [])];
for (const engine of engines) {
  test(`cram --margin M (${engine}): every position of a decoded text ends with margin ≥ M`, async () => {
    const { model, tokenizer } = await suite();
    const ids = tokenizer.encode('The whale').slice(0, 6);
    const opts = { K: 2, maxSteps: 1500, patience: 400, seed: 3, quiet: true, engine } as const;
    const [plain] = await cram(model, [ids], opts);
    assert.equal(plain.status, 'decoded');
    const m0 = Math.min(...(await margins(model, ids, plain.bestMem, 2)).margins);
    const M = Math.ceil(m0 + 1);
    const [r] = await cram(model, [ids], { ...opts, margin: M });
    assert.equal(r.status, 'decoded', `margin ${M}: ${r.status} at ${r.bestAccuracy}`);
    const m = await margins(model, ids, r.bestMem, 2);
    assert.ok(Math.min(...m.margins) >= M, `min margin ${Math.min(...m.margins)} < ${M} (plain run: ${m0})`);
    assert.ok(r.steps > plain.steps, 'a margin costs steps');
  });
}

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'cramlab.js'), ...args], {
    cwd: tmp,
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('encode --precision int8 → decode --check: exact, or a non-zero exit naming the precision', async () => {
  const txt = path.join(tmp, 'a.txt');
  fs.writeFileSync(txt, 'Call');
  const file = path.join(tmp, 'a.cram');
  const enc = cli(
    'encode',
    txt,
    '-o',
    file,
    '--model',
    MODEL,
    '--mem',
    '2',
    '--precision',
    'int8',
    '--margin',
    '1',
    '--max-steps',
    '800',
    '--patience',
    '300',
    '--quiet',
  );
  assert.match(enc.out, /greedy decoding from the int8 vectors/);
  assert.equal(loadMem(file).precision, 'int8');
  const dec = cli('decode', file, '--model', MODEL, '--check');
  if (/reproduces the text exactly/.test(enc.out)) {
    assert.equal(dec.code, 0, dec.err);
    assert.equal(dec.out.trim(), 'Call');
    assert.match(dec.err, /stored at int8, ids match/);
  } else {
    assert.notEqual(enc.code, 0);
    assert.notEqual(dec.code, 0);
    assert.match(dec.err, /int8/);
  }
  // vectors that do not hold the text: decode --check fails, naming the precision
  const { weightsHash, tokenizer } = await suite();
  const bad = path.join(tmp, 'bad.cram');
  const ids = tokenizer.encode('Call me Ishmael');
  saveMem(bad, {
    vectors: new Float32Array(64).fill(0.01),
    K: 1,
    memDim: 64,
    tokens: ids.length,
    firstId: ids[0],
    model: MODEL,
    weightsHash,
    tokenizerHash: tokenizer.hash,
    idsSha256: idsSha256(ids),
    cramlab: CRAMLAB_VERSION,
    precision: 'int8',
  });
  const r = cli('decode', bad, '--model', MODEL, '--check');
  assert.notEqual(r.code, 0);
  assert.match(r.err, /stored at int8 do not decode the encoded text exactly/);
});

test('Table 1: exact capacity is the largest N where every text decodes exactly, beside the ≥ 0.99 rule', () => {
  const at = (exact: boolean, horizon: number) => ({ exact, horizon, accuracy: NaN, minMargin: NaN, bits: 0 });
  const rec = (N: number, tf: number, greedy: boolean, int8: boolean) =>
    ({
      N,
      K: 1,
      status: 'decoded',
      bestAccuracy: tf,
      exactness: {
        teacherForced: tf,
        greedyHorizon: greedy ? N : N - 1,
        greedyExact: greedy,
        minMargin: 0,
        exactBits: null,
        precisions: Object.fromEntries(
          PRECISIONS.map((p) => [p, at(p === 'fp32' ? greedy : greedy && (p !== 'int8' || int8), N)]),
        ),
      },
    }) as unknown as TextMetrics;
  // N = 16: both texts ≥ 0.99 teacher-forced, but one leaves the text under greedy decoding
  const records = [rec(8, 1, true, true), rec(8, 1, true, false), rec(16, 1, true, true), rec(16, 0.995, false, false)];
  const [s] = capacitySummary(records);
  assert.equal(s.decodingCapacity, 16);
  assert.equal(s.exactCapacity, 8);
  assert.equal(s.exactCapacityAt!.bf16, 8);
  assert.equal(s.exactCapacityAt!.int8, 0);
  assert.equal(exactCapacity(records.map((r) => ({ ...r, exactness: undefined }))), null, 'old records: unknown');
});
