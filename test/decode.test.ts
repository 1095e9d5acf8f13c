// Back again: greedy decoding from mem vectors agrees with cram's teacher-forced accuracy, the diff
// helper, bad input, and the CLI encode → decode round trip of a 20-token text on stories260K.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { cram } from '../src/cram/cram';
import { decode, DecodeError, diffIds, formatDiff } from '../src/decode';
import { greedyGenerate } from '../src/generate';
import { loadModel, modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { loadMem } from '../src/mem-file';
import { scoreText } from '../src/score';
import type { Tokenizer } from '../src/io/tokenizer';
import * as tf from '@tensorflow/tfjs-core';
import { sharedModel } from './helpers/shared';

const ROOT = path.join(__dirname, '..');

function gqa() {
  const dir = path.join(__dirname, 'fixtures', 'reference', 'llama_gqa');
  return modelFromTensors(
    JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')),
    readSafetensors(path.join(dir, 'model.safetensors')).tensors,
  );
}

test('diffIds and formatDiff mark the first mismatch and every differing token', () => {
  assert.deepEqual(diffIds([1, 2, 3], [1, 2, 3]), {
    equal: true,
    firstMismatch: -1,
    match: [true, true, true],
    matched: 3,
  });
  const d = diffIds([1, 2, 3, 4], [1, 9, 3]);
  assert.equal(d.equal, false);
  assert.equal(d.firstMismatch, 1);
  assert.deepEqual(d.match, [true, false, true, false]);
  const tok = { tokenStrings: (ids: number[]) => ids.map((i) => `<${i}>`) } as unknown as Tokenizer;
  assert.equal(formatDiff(tok, [1, 2, 3, 4], [1, 9, 3]), '<1>[-<2>-]{+<9>+}<3>[-<4>-]');
});

test('decode reproduces a crammed text exactly, and where it fails it fails where teacher forcing first misses', async () => {
  await initBackend();
  const model = gqa();
  // A random-weight model cannot be made to say just anything: take its own continuation of a
  // token it would not predict first, so the mem has real work (the first prediction) but can win.
  const ids = [1, 42, ...(await greedyGenerate(model, [1, 42], { maxNewTokens: 4, eosTokenIds: [] }))];
  const [r] = await cram(model, [ids], { K: 1, maxSteps: 1500, quiet: true, seed: 1 });
  assert.ok(r.stepsToBest > 1, 'the mem had to learn something');
  assert.equal(r.status, 'decoded');
  const back = await decode(model, { vectors: r.bestMem, K: 1, tokens: ids.length, firstId: ids[0] });
  assert.deepEqual(back.ids, ids);
  // An unoptimised random mem: generation runs off the text right after the teacher-forced run of hits.
  const long = [1, 5, 9, 33, 2, 7, 81, 14, 15, 200, 3, 17];
  const [weak] = await cram(model, [long], { K: 1, maxSteps: 3, quiet: true, seed: 2 });
  const s = await scoreText(model, long, tf.tensor2d(weak.bestMem, [1, 64]));
  const firstMiss = s.predictions.findIndex((p, i) => p !== long[i + 1]);
  const out = await decode(model, { vectors: weak.bestMem, K: 1, tokens: long.length, firstId: 1 });
  assert.equal(out.ids.length, long.length);
  assert.equal(diffIds(long, out.ids).firstMismatch, firstMiss < 0 ? -1 : firstMiss + 1);
  await assert.rejects(
    () => decode(model, { vectors: new Float32Array(10), K: 1, tokens: 5, firstId: 1 }),
    (e: Error) => e instanceof DecodeError && /width 64/.test(e.message),
  );
  await assert.rejects(
    () => decode(model, { vectors: r.bestMem, K: 1, tokens: 128, firstId: 1 }),
    /exceed the model's context of 128/,
  );
  model.dispose();
});

const s260 = sharedModel('stories260K');
test('CLI: encode a 20-token text (fewest vectors) and decode it back exactly', { skip: s260.skip }, async () => {
  const { tokenizer } = await loadModel(s260.dir!);
  const samples = JSON.parse(
    fs.readFileSync(path.join(ROOT, '..', 'shared', 'datasets', 'stories260k-samples.json'), 'utf8'),
  ).samples;
  // A text whose 20 tokens survive decode → encode unchanged (what a user's .txt file would be).
  const text = samples
    .map((s: any) => tokenizer.decode(s.ids.slice(0, 20)))
    .find((t: string) => tokenizer.encode(t).length === 20 && tokenizer.decode(tokenizer.encode(t)) === t);
  assert.ok(text, 'a 20-token sample text');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-enc-'));
  const file = path.join(tmp, 'story.txt');
  fs.writeFileSync(file, text);
  const cli = (...a: string[]) =>
    execFileSync(process.execPath, [path.join(ROOT, 'bin', 'cramlab.js'), ...a], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const enc = cli('encode', file, '-o', path.join(tmp, 'story.cram'), '--model', s260.dir!, '--quiet');
  assert.match(enc, /20 tokens → \d+ vectors? of 64/);
  assert.match(enc, /reproduces the text exactly/);
  const mem = loadMem(path.join(tmp, 'story.cram'));
  assert.equal(mem.tokens, 20);
  const dec = cli('decode', path.join(tmp, 'story.cram'), '--model', s260.dir!);
  assert.equal(dec.replace(/\n$/, ''), text);
});
