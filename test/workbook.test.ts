// The workbook's run folders and summaries: records survive a re-run (nothing is crammed twice),
// a half-written line from a killed run is skipped, the metrics in a record agree with an
// independent scoreText, and the Table-1 conventions are checked on hand-made records.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { scoreText } from '../src/score';
import { budget, walkLengths } from '../src/workbook/budget';
import { table1 } from '../src/metrics/summary';
import { currentRecords, RecordFile } from '../src/runs/folder';
import { decodeMem, encodeMem, fromStored, type CramRecord } from '../src/runs/record';
import { accuracyTable, capacityWalk, cramAt, type WorkbookModel } from '../src/workbook/experiments';
import { gridEstimate, roughly, seconds, stepCost } from '../src/workbook/estimate';
import { cram } from '../src/cram/cram';

const FIXTURE = path.join(__dirname, 'fixtures', 'reference', 'llama_gqa');

async function tinyModel(): Promise<WorkbookModel> {
  await initBackend();
  const config = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'config.json'), 'utf8'));
  const model = modelFromTensors(config, readSafetensors(path.join(FIXTURE, 'model.safetensors')).tensors);
  // The fixture has no tokenizer: ids print as themselves.
  const tokenizer = { decode: (ids: number[]) => ids.join(' ') } as any;
  return {
    model,
    tokenizer,
    id: FIXTURE,
    dir: FIXTURE,
    config,
    generationConfig: {},
    weightsHash: 'fixture',
    name: 'llama_gqa',
  };
}

function tmpFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-wb-')), 'results.jsonl');
}

test('mem round-trips through base64 exactly', () => {
  const mem = Float32Array.from([0.1, -2.5e-8, 3e7, Math.PI]);
  assert.deepEqual(decodeMem(encodeMem(mem)), mem);
});

test('budgets: presets, env override, clear error; walk lengths grow and stop at maxLength', () => {
  assert.equal(budget('small').name, 'small');
  assert.throws(() => budget('huge'), /'huge' is not a budget; use one of ci, small, paper/);
  const ls = walkLengths(budget('ci'));
  assert.deepEqual(ls.slice(0, 6), [2, 3, 4, 5, 6, 8], 'every small N, then ~25% steps');
  assert.ok(ls.every((n, i) => i === 0 || n > ls[i - 1]) && ls[ls.length - 1] <= budget('ci').maxLength);
  assert.ok(walkLengths(budget('paper'), 100).every((n) => n <= 100));
});

test(
  'cramAt: records match scoreText, a re-run reads them back, a torn last line is redone',
  { timeout: 300_000 },
  async () => {
    const m = await tinyModel();
    const texts = [
      { id: 'a', text: '', ids: [1, 17, 42, 99, 7, 250, 3, 64, 5, 11] },
      { id: 'b', text: '', ids: [1, 200, 13, 13, 77, 150, 9, 31] },
      { id: 'short', text: '', ids: [1, 5] },
    ];
    const file = tmpFile();
    const b = { ...budget('ci'), maxSteps: 30, patience: 30 };
    const first = await cramAt(m, texts, {
      N: 8,
      K: 1,
      set: 'test',
      budget: b,
      file: new RecordFile(file),
      quiet: true,
    });
    assert.deepEqual(
      first.map((r) => r.id),
      ['a', 'b'],
      'texts shorter than N are left out',
    );
    // Independent check of the stored metrics with the stored mem.
    for (const r of first) {
      const ids = texts.find((t) => t.id === r.id)!.ids.slice(0, 8);
      const prefix = tf.tensor2d(decodeMem(r.mem!), [1, m.model.info.memDim]);
      const withMem = await scoreText(m.model, ids, prefix);
      const without = await scoreText(m.model, ids);
      prefix.dispose();
      assert.ok(Math.abs(withMem.totalBits - r.ceWithMem.totalBits) < 1e-9);
      assert.ok(Math.abs(without.totalBits - r.ceWithoutMem.totalBits) < 1e-9);
      assert.ok(Math.abs(r.infoGainBits - (without.totalBits - withMem.totalBits)) < 1e-9);
      assert.equal(r.tokenGain, withMem.correct - without.correct);
      assert.ok(Math.abs(r.bestAccuracy - withMem.accuracy) < 1e-12, 'best accuracy is what the stored mem scores');
    }
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 2);
    // Simulate a kill in the middle of writing a third record, then re-run: nothing is crammed again
    // except what is missing, and the old records come back unchanged.
    fs.appendFileSync(file, lines[0].slice(0, 40));
    const again = new RecordFile(file);
    assert.equal(again.all().length, 2);
    const tensorsBefore = tf.memory().numTensors;
    const second = await cramAt(m, texts, { N: 8, K: 1, set: 'test', budget: b, file: again, quiet: true });
    assert.deepEqual(second, first);
    assert.equal(tf.memory().numTensors, tensorsBefore);
    assert.equal(
      fs.readFileSync(file, 'utf8'),
      lines.join('\n') + '\n',
      'the torn line is cut and no record was appended on the re-run',
    );
    // The next record after the torn line starts on a line of its own.
    const third = await cramAt(m, texts, { N: 6, K: 1, set: 'test', budget: b, file: again, quiet: true });
    assert.equal(new RecordFile(file).all().length, 2 + third.length);
    assert.ok(
      first.every((r) => r.weights === m.weightsHash.slice(0, 16)),
      'records carry the weights fingerprint',
    );
    // A retrained model under the same name (other weights) does not reuse the old records.
    const linesBefore = fs.readFileSync(file, 'utf8').trim().split('\n').length;
    const retrained = { ...m, weightsHash: 'f'.repeat(64) };
    const redone = await cramAt(retrained, texts, {
      N: 8,
      K: 1,
      set: 'test',
      budget: b,
      file: new RecordFile(file),
      quiet: true,
    });
    assert.deepEqual(
      redone.map((r) => r.weights),
      ['ffffffffffffffff', 'ffffffffffffffff'],
    );
    assert.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, linesBefore + 2);
    m.model.dispose();
  },
);

test(
  'cramAt: records made with another budget, another text or no fingerprint are redone, not reused',
  { timeout: 300_000 },
  async () => {
    const m = await tinyModel();
    const texts = [{ id: 'a', text: '', ids: [1, 17, 42, 99, 7, 250, 3, 64, 5, 11] }];
    const file = tmpFile();
    const b = { ...budget('ci'), maxSteps: 3, patience: 1000 };
    const [first] = await cramAt(m, texts, {
      N: 8,
      K: 1,
      set: 'test',
      budget: b,
      file: new RecordFile(file),
      quiet: true,
    });
    assert.match(first.fingerprint!, /^[0-9a-f]{16}$/);
    const [longer] = await cramAt(m, texts, {
      N: 8,
      K: 1,
      set: 'test',
      budget: { ...b, maxSteps: 6 },
      file: new RecordFile(file),
      quiet: true,
    });
    assert.equal(longer.maxSteps, 6, 'the 3-step record was reused for a 6-step budget');
    assert.ok(longer.steps > 3 || longer.bestAccuracy === 1);
    const other = [{ ...texts[0], ids: [1, 3, 4, 5, 6, 7, 8, 9, 10] }];
    const [changed] = await cramAt(m, other, {
      N: 8,
      K: 1,
      set: 'test',
      budget: { ...b, maxSteps: 6 },
      file: new RecordFile(file),
      quiet: true,
    });
    assert.equal(changed.text, '1 3 4 5 6 7 8 9', 'the record of the old text was reused');
    // An older version's record (no fingerprint) is stale.
    const stripped = new RecordFile(file).all().map(({ fingerprint: _f, ...r }) => JSON.stringify(r));
    fs.writeFileSync(file, stripped.join('\n') + '\n');
    const [again] = await cramAt(m, other, {
      N: 8,
      K: 1,
      set: 'test',
      budget: { ...b, maxSteps: 6 },
      file: new RecordFile(file),
      quiet: true,
    });
    assert.equal(again.fingerprint, changed.fingerprint);
    assert.equal(new RecordFile(file).all()[0].fingerprint, changed.fingerprint);
    m.model.dispose();
  },
);

test(
  'capacityWalk: capacity is the longest decoded length, and walks stop at the first failure',
  { timeout: 300_000 },
  async () => {
    const m = await tinyModel();
    const texts = [
      {
        id: 'w',
        text: '',
        ids: [1, 17, 42, 99, 7, 250, 3, 64, 5, 11, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103],
      },
    ];
    const file = new RecordFile(tmpFile());
    const [row] = await capacityWalk(m, texts, {
      K: 1,
      set: 'walk',
      budget: { ...budget('ci'), maxSteps: 200, patience: 100 },
      file,
      lengths: [4, 8, 12, 16, 20, 24],
      quiet: true,
    });
    const recs = file.all().sort((a, b) => a.N - b.N);
    const firstFail = recs.find((r) => r.bestAccuracy < 1);
    const decoded = recs.filter((r) => r.bestAccuracy >= 1).map((r) => r.N);
    assert.equal(row.capacity, decoded.length ? Math.max(...decoded) : 0);
    if (firstFail)
      assert.equal(recs[recs.length - 1].N, firstFail.N, 'nothing is tried after the first length that fails');
    assert.ok(
      recs.slice(1).every((r) => r.warmStart),
      'longer lengths start from the shorter one',
    );
    m.model.dispose();
  },
);

test('table1: decoding capacity = largest N with mean accuracy ≥ 0.99; gains over texts ≤ 0.99; one row per (model, set, K)', () => {
  const rec = (id: string, N: number, bestAccuracy: number, tokenGain = 0, infoGainBits = 0, set = 's') =>
    ({
      model: 'm',
      set,
      K: 1,
      id,
      N,
      bestAccuracy,
      tokenGain,
      infoGainBits,
      paperInfoGainNats: infoGainBits * Math.LN2,
      status: 'patience',
      decoded: bestAccuracy === 1,
      stepsToBest: 1,
    }) as unknown as CramRecord;
  const rows = table1(
    [
      rec('a', 8, 1),
      rec('b', 8, 1),
      rec('a', 16, 1),
      rec('b', 16, 0.985, 10, 40), // mean 0.9925 ≥ 0.99: still counts as decoded
      rec('a', 32, 1),
      rec('b', 32, 0.5, 12, 50), // mean 0.75
      rec('a', 64, 0.995),
      rec('b', 64, 0.4, 14, 60), // 0.995 > 0.99: not a full vector
      rec('a', 8, 0.5, 3, 7, 'other'),
    ],
    (m) => (m === 'm' ? { memDim: 64, vocabSize: 256 } : undefined),
  );
  assert.equal(rows.length, 2);
  const [r] = rows.filter((x) => x.set === 's');
  assert.equal(r.decodingCapacity, 16);
  assert.equal(r.saturatedTexts, 3);
  assert.equal(r.tokenGain, 12);
  assert.equal(r.infoGainBits, 50);
  assert.equal(r.theoreticalCapacity, (64 * 16) / 8);
  const o = rows.find((x) => x.set === 'other')!;
  assert.deepEqual([o.decodingCapacity, o.saturatedTexts, o.tokenGain], [0, 1, 3]);
  assert.ok(Number.isNaN(table1([rec('a', 8, 1)])[0].theoreticalCapacity), 'no shape: no theoretical column');
});

test('old run folders still read: a 0.1 workbook line and a 0.1 CLI grid line become the same CramRecord fields', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-old-'));
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ model: { id: 'models/x', weightsHash: 'abcdef0123456789ffff' } }),
  );
  const ce = (bits: number, n: number) => ({
    totalNats: bits * Math.LN2,
    perTokenNats: (bits * Math.LN2) / n,
    totalBits: bits,
    perTokenBits: bits / n,
  });
  const grid = {
    kind: 'grid',
    id: 't1',
    N: 8,
    K: 1,
    status: 'decoded',
    stepsToBest: 9,
    steps: 9,
    seconds: 0.1,
    bestAccuracy: 1,
    decoded: true,
    correctWithMem: 7,
    correctWithoutMem: 2,
    tokenGain: 5,
    ceWithoutMem: ce(30, 7),
    ceWithMem: ce(2, 7),
    infoGainNats: 28 * Math.LN2,
    infoGainBits: 28,
    compression: 8,
    paperCeWithoutMemNats: 1,
    paperCeWithMemNats: 0.5,
    paperInfoGainNats: 0.5,
    seed: 3,
    fingerprint: '0123456789abcdef',
    bestMem: [0.5, -1],
  };
  const workbook = {
    model: 'models/x',
    weights: 'abcdef0123456789',
    set: 'natural',
    textId: 't2',
    N: 8,
    K: 1,
    text: 'hi',
    bestAccuracy: 5 / 7,
    correct: 5,
    correctWithout: 2,
    tokenGain: 3,
    ceWithoutBits: 30,
    ceWithBits: 9,
    infoGainBits: 21,
    steps: 40,
    stepsToBest: 12,
    status: 'patience',
    seconds: 0.2,
    maxSteps: 100,
    patience: 50,
    warmStart: false,
    mem: encodeMem(Float32Array.from([1, 2])),
  };
  fs.writeFileSync(
    path.join(dir, 'results.jsonl'),
    JSON.stringify(grid) + '\n' + JSON.stringify(workbook) + '\n' + '{"not": "a record"}\n',
  );
  const rs = new RecordFile(dir).all();
  assert.equal(rs.length, 2, 'the line that is no record is left out');
  const [g, w] = rs;
  assert.deepEqual(
    [g.kind, g.model, g.weights, g.set, g.id],
    ['cram', 'models/x', 'abcdef0123456789', '', 't1'],
    'model and weights from config.json',
  );
  assert.deepEqual(decodeMem(g.mem!), Float32Array.from([0.5, -1]));
  assert.deepEqual([w.kind, w.id, w.correctWithMem, w.correctWithoutMem, w.decoded], ['cram', 't2', 5, 2, false]);
  assert.ok(
    Math.abs(w.ceWithMem.totalNats - 9 * Math.LN2) < 1e-12 && Math.abs(w.ceWithoutMem.perTokenBits - 30 / 7) < 1e-12,
  );
  assert.ok(Number.isNaN(w.paperInfoGainNats), 'the old workbook kept no paper totals');
  assert.equal(fromStored({ kind: 'bisect', id: 'x' }), undefined);
  // Both feed the one Table 1 and the accuracy table.
  const [t] = table1([w]);
  assert.deepEqual([t.decodingCapacity, t.saturatedTexts, t.tokenGain, t.infoGainBits], [0, 1, 3, 21]);
  assert.deepEqual(
    accuracyTable([g]).map((a) => [a.N, a.texts, a.meanAccuracy, a.decoded]),
    [[8, 1, 1, 1]],
  );
});

test('currentRecords keeps only records of the current weights; unknown models and unfingerprinted records stay', () => {
  const rec = (model: string, weights: string | undefined, N: number) =>
    ({ model, weights, N }) as unknown as CramRecord;
  const rs = [
    rec('a', '1111111111111111', 4),
    rec('a', '2222222222222222', 8),
    rec('a', undefined, 12),
    rec('b', '3333333333333333', 4),
  ];
  const kept = currentRecords(rs, (m) => (m === 'a' ? '2222222222222222ffff' : undefined));
  assert.deepEqual(
    kept.map((r) => `${r.model}${r.N}`),
    ['a8', 'a12', 'b4'],
  );
});

test('time estimates: a probed step cost prices a grid as steps × texts × cost; durations are rounded', async () => {
  assert.deepEqual([0.2, 7.1, 44, 95, 600, 7200].map(roughly), ['1 s', '8 s', '40 s', '2 min', '10 min', '2.0 h']);
  const m = await tinyModel();
  const cost = await stepCost(m, 2, 1, 16);
  assert.ok(cost.fixed >= 0 && cost.flopsPerSecond > 0, JSON.stringify(cost));
  const b = { ...budget('ci'), maxSteps: 40 };
  const jobs = [
    { B: 2, N: 8 },
    { B: 1, N: 16 },
    { B: 0, N: 32 },
  ];
  const est = await gridEstimate(m, jobs, 1, b, 'a note');
  // The probe is cached per (model, B, K, longest N): the grid is priced with the same cost.
  const expected = seconds(m, cost, 2, 8, 1, 40) + seconds(m, cost, 1, 16, 1, 40);
  assert.ok(Math.abs(est.seconds - expected) < 1e-9 * expected, `${est.seconds} vs ${expected}`);
  assert.ok(seconds(m, cost, 2, 16, 1, 40) > seconds(m, cost, 2, 8, 1, 40), 'a longer text costs more');
  assert.equal(
    est.line,
    `at most about ${roughly(expected)} on this machine at the ci budget (3 cram(s) over 2 length(s) × ≤ 40 steps; a note)`,
  );
  // The two-point line prices a length it did not probe: 40 real steps at N = 12 take about that long
  // (a loose bound: the machine may be loaded, and a cram call has its own set-up).
  const ids = [0, 1].map((r) => Array.from({ length: 12 }, (_, i) => 1 + ((i * 37 + r * 101) % 250)));
  const t0 = performance.now();
  const [run] = await cram(m.model, ids, { K: 1, maxSteps: 40, patience: 40, quiet: true });
  const took = (performance.now() - t0) / 1000;
  const priced = seconds(m, cost, 2, 12, 1, run.steps);
  assert.ok(
    took < 4 * priced + 0.2 && priced < 4 * took + 0.2,
    `ran ${took.toFixed(3)} s, priced ${priced.toFixed(3)} s`,
  );
  m.model.dispose();
});
