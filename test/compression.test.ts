// Compression baselines: the integer arithmetic coder gives its symbols back and costs what the
// probabilities say (plus at most a few bits); under stories260K it decodes a real sample back to
// its ids, within a few bits of the model's cross-entropy; gzip/brotli/xz sizes are those of
// streams that decompress to the text.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { loadModel } from '../src/io/checkpoint';
import { ArithDecoder, ArithEncoder, interval, MAX_TOTAL, quantise, symbolAt } from '../src/metrics/arith';
import { arithDecode, arithEncode, classicBits, CODECS, compressionRow, memBits } from '../src/metrics/compression';
import { ModelError } from '../src/models/types';
import { mulberry32 } from '../src/random';
import { scoreText } from '../src/score';
import { MODELS_DIR, sharedModel } from './helpers/shared';

test('arithmetic coder: random streams round-trip, and cost between -log2 q and -log2 q + 2 bits', () => {
  const rnd = mulberry32(7);
  for (const [V, skew, n] of [
    [2, 1, 500],
    [7, 3, 800],
    [300, 8, 400],
    [512, 40, 300],
  ] as const) {
    // A different, peaked distribution per position, as a model gives.
    const dists = Array.from({ length: n }, () => {
      const w = Array.from({ length: V }, () => Math.pow(rnd(), skew));
      const z = w.reduce((a, b) => a + b, 0);
      return quantise(w.map((x) => x / z));
    });
    const symbols = dists.map((f) => symbolAt(f, Math.floor(rnd() * MAX_TOTAL)).s); // drawn from q itself
    const enc = new ArithEncoder();
    let ideal = 0;
    symbols.forEach((s, i) => {
      const [lo, hi] = interval(dists[i], s);
      enc.encode(lo, hi, MAX_TOTAL);
      ideal -= Math.log2((hi - lo) / MAX_TOTAL);
    });
    const code = enc.finish();
    assert.equal(code.bytes.length, Math.ceil(code.bits / 8));
    const dec = new ArithDecoder(code);
    const back = dists.map((f) => {
      const { s, lo, hi } = symbolAt(f, dec.target(MAX_TOTAL));
      dec.consume(lo, hi, MAX_TOTAL);
      return s;
    });
    assert.deepEqual(back, symbols, `V=${V}: decoded symbols differ`);
    assert.ok(code.bits >= ideal - 1e-6, `V=${V}: ${code.bits} bits < ideal ${ideal.toFixed(2)}`);
    assert.ok(code.bits <= ideal + 2 + 1e-3 * n, `V=${V}: ${code.bits} bits, ideal ${ideal.toFixed(2)}`);
  }
});

test('quantise: every symbol ≥ 1, exact total, close to the probabilities', () => {
  const p = [0.7, 0.2, 0.0999, 0.0001, 0];
  const f = quantise(p);
  assert.equal(
    f.reduce((a, b) => a + b, 0),
    MAX_TOTAL,
  );
  assert.ok(f.every((x) => x >= 1));
  p.forEach((x, i) => assert.ok(Math.abs(f[i] / MAX_TOTAL - x) < 1e-4, `symbol ${i}: ${f[i] / MAX_TOTAL} vs ${x}`));
  assert.throws(() => quantise(new Array(MAX_TOTAL).fill(1 / MAX_TOTAL)), RangeError);
});

test('gzip, brotli and xz bits are those of streams that decompress to the text', async () => {
  const text =
    'Once upon a time, there was a little girl named Lily. She loved to play. Lily loved to play — «ünïcode» too. '.repeat(
      4,
    );
  const bits = await classicBits(text);
  const raw = Buffer.from(text, 'utf8');
  for (const c of CODECS) {
    const packed = await c.compress(raw);
    assert.ok((await c.decompress(packed)).equals(raw), `${c.name} round trip`);
    assert.equal(bits[c.name], packed.length * 8, c.name);
    assert.ok(bits[c.name] < raw.length * 8, `${c.name} does not compress a repetitive text`);
  }
  assert.deepEqual(memBits(2, 64), { fp16: 2 * 64 * 16, fp32: 2 * 64 * 32 });
});

const s260 = sharedModel('stories260K');
test(
  'arithmetic coding under stories260K: a sample decodes back, costing its cross-entropy plus a few bits',
  { skip: s260.skip },
  async () => {
    await initBackend();
    const { model, tokenizer } = await loadModel(s260.dir!);
    const samples = JSON.parse(
      fs.readFileSync(path.join(MODELS_DIR, '..', 'datasets', 'stories260k-samples.json'), 'utf8'),
    ).samples;
    const ids: number[] = samples[3].ids.slice(0, 60);
    const code = arithEncode(model, ids);
    assert.deepEqual(arithDecode(model, code, ids[0], ids.length), ids);
    // The CE the coder saw is the model's CE of the text (scored in one teacher-forced pass).
    const ce = (await scoreText(model, ids)).totalBits;
    assert.ok(Math.abs(code.ceBits - ce) < 1e-3 * ids.length, `coder CE ${code.ceBits} vs scored ${ce}`);
    assert.ok(
      Math.abs(code.idealBits - code.ceBits) < 0.01 * code.coded,
      'quantisation costs more than 0.01 bit per token',
    );
    // ≥ ideal always holds; ≥ CE holds on text the model knows (the floor of 1 per symbol favours only
    // tokens below p = 1/V, which can make out-of-domain codes a few bits shorter than the CE).
    assert.ok(
      code.bits >= code.idealBits && code.bits >= code.ceBits,
      `${code.bits} bits below the CE ${code.ceBits.toFixed(2)}`,
    );
    assert.ok(code.bits <= code.ceBits + 2 + 0.01 * code.coded, `${code.bits} bits vs CE ${code.ceBits.toFixed(2)}`);
    // A single flipped bit decodes to other ids (the code carries the text, not the model alone).
    const flipped = { bits: code.bits, bytes: Uint8Array.from(code.bytes) };
    flipped.bytes[0] ^= 0x80;
    assert.notDeepEqual(arithDecode(model, flipped, ids[0], ids.length), ids);

    const row = await compressionRow(model, ids, tokenizer.decode(ids, { skipSpecialTokens: true }), 1, 's3');
    assert.equal(row.arithBits, code.bits);
    assert.equal(row.memFp16Bits, 64 * 16);
    assert.equal(row.tokensPerVector, 60);
    assert.ok(Math.abs(row.bpc.arith * row.chars - row.arithBits) < 1e-9);

    assert.throws(
      () => arithEncode(model, [1, 9999]),
      (e: Error) => e instanceof ModelError && e.message === 'token id 9999 is outside the vocabulary [0, 512)',
    );
    assert.throws(
      () => arithDecode(model, code, 1, 0),
      (e: Error) => e instanceof ModelError && e.message === 'token count must be a positive integer, got 0',
    );
    model.dispose();
  },
);
