// Capacity search by bisection (its answer is bracketed by a success and a failure) and resumable
// sweeps (append-only records, a killed run loses nothing finished, resume redoes nothing finished).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { capacitySearch } from '../src/cram/capacity';
import { readLines } from '../src/runs/folder';
import { recordKey, type CramRecord } from '../src/runs/record';
import { capacitySweep } from '../src/runs/sweep';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { scoreText } from '../src/score';

function gqa() {
  const dir = path.join(__dirname, 'fixtures', 'reference', 'llama_gqa');
  return modelFromTensors(
    JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')),
    readSafetensors(path.join(dir, 'model.safetensors')).tensors,
  );
}
const texts = [
  { id: 'a', ids: [1, 5, 9, 33, 2, 7, 81, 14, 15, 200, 3, 17] },
  { id: 'b', ids: [1, 44, 45, 46, 12, 250, 7, 8, 9, 10, 11, 12] },
  { id: 'c', ids: [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13] },
];
const quick = { maxSteps: 80, patience: 25, quiet: true };

test('capacitySearch: the capacity decodes, the next length failed, the warm starts are used', async () => {
  await initBackend();
  const model = gqa();
  const found = await capacitySearch(
    model,
    texts.map((t) => t.ids),
    { K: 1, startN: 2, ...quick, maxSteps: 150, patience: 40 },
  );
  for (const [i, f] of found.entries()) {
    const ids = texts[i].ids;
    assert.ok(f.capacity >= 1 && f.capacity <= ids.length);
    if (f.capacity >= 2) {
      // The returned mem really decodes the first `capacity` tokens (teacher-forced = greedy).
      const s = await scoreText(model, ids.slice(0, f.capacity), tf.tensor2d(f.mem!, [1, 64]));
      assert.equal(s.correct, f.capacity - 1, `text ${i}: mem does not decode ${f.capacity} tokens`);
    }
    if (!f.censored) {
      const fail = f.attempts.find((a) => a.N === f.capacity + 1);
      assert.ok(fail && fail.decodedPrefix <= f.capacity, `text ${i}: no failed attempt at N = ${f.capacity + 1}`);
    } else assert.equal(f.capacity, ids.length);
    assert.ok(
      f.attempts.slice(1).some((a) => a.warm) || f.attempts.length === 1 || f.capacity === 1,
      'later attempts start from a found mem',
    );
    assert.equal(
      f.totalSteps,
      f.attempts.reduce((n, a) => n + a.steps, 0),
    );
  }
  // Per-text seeds (as sweeps pass them) while later rounds try only some of the texts.
  const short = await capacitySearch(
    model,
    texts.map((t) => t.ids),
    { K: 1, startN: 2, maxN: 4, seed: [3, 4, 5], ...quick, maxSteps: 40 },
  );
  assert.ok(short.every((f) => f.capacity >= 1 && f.capacity <= 4));
  model.dispose();
});

test('capacitySweep: one line per record, a cut line and lost lines are recovered, resume redoes nothing finished', async () => {
  await initBackend();
  const model = gqa();
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-sweep-'));
  const id = { id: 'tiny', weightsHash: 'h1' };
  const opts = { runDir, lengths: [3, 6], Ks: [1], model: id, log: () => {}, ...quick };
  const first = await capacitySweep(model, texts, opts);
  const file = path.join(runDir, 'results.jsonl');
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  assert.equal(lines.length, 6);
  assert.deepEqual(new Set(first.grid.map((r) => recordKey(r))).size, 6);

  // A kill mid-write leaves a cut line; a lost record must be redone, identically (seeded per text).
  const dropped = JSON.parse(lines[4]) as CramRecord;
  fs.writeFileSync(file, [...lines.slice(0, 4), lines[5]].join('\n') + '\n' + lines[4].slice(0, 30));
  const batches = new Set<number>();
  const second = await capacitySweep(model, texts, { ...opts, onProgress: (p) => void batches.add(p.total) });
  const after = readLines<CramRecord>(file);
  assert.equal(after.length, 6, 'the cut line is skipped and the lost record written again');
  assert.ok(fs.readFileSync(file, 'utf8').endsWith('\n'));
  const redone = after.find((r) => recordKey(r) === recordKey(dropped))!;
  assert.deepEqual(
    [redone.bestAccuracy, redone.steps, redone.stepsToBest, redone.seed],
    [dropped.bestAccuracy, dropped.steps, dropped.stepsToBest, dropped.seed],
  );
  assert.ok(Math.abs(redone.infoGainBits - dropped.infoGainBits) < 1e-4);
  assert.deepEqual([...batches], [1], 'only the lost record was crammed again');
  assert.equal(second.grid.length, 6);

  // Nothing left to do: no cram step at all.
  let any = false;
  await capacitySweep(model, texts, { ...opts, onProgress: () => void (any = true) });
  assert.equal(any, false);
  assert.equal(readLines(file).length, 6);
  await assert.rejects(
    () => capacitySweep(model, texts, { ...opts, model: { id: 'other', weightsHash: 'h2' } }),
    /holds a run of model 'tiny'/,
  );
  await assert.rejects(() => capacitySweep(model, texts, { ...opts, lengths: [1] }), /lengths must be integers ≥ 2/);
  model.dispose();
});
