// Metrics: per-text numbers against hand computations, Table 1 conventions on a made-up grid,
// and the consistency of cram's bookkeeping with an independent re-scoring of the best mem.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { cram, type CramResult } from '../src/cram/cram';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import {
  capacitySummary,
  capacityTable,
  decodingCapacity,
  groupByLength,
  lengthTable,
  measure,
  textMetrics,
  theoreticalCapacity,
  type TextMetrics,
} from '../src/metrics/index';
import type { TextScore } from '../src/score';

const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

function fakeResult(over: Partial<CramResult>): CramResult {
  return {
    index: 0,
    tokens: 5,
    K: 1,
    predicted: 4,
    bestMem: new Float32Array(1),
    finalMem: new Float32Array(1),
    initMem: new Float32Array(1),
    bestCorrect: 4,
    bestAccuracy: 1,
    stepsToBest: 12,
    steps: 12,
    status: 'decoded',
    minLoss: 0.3,
    lossAtBest: 0.5,
    curve: { step: [], loss: [], correct: [] },
    seconds: 1,
    ...over,
  };
}
const score = (totalNats: number, correct: number, n: number): TextScore => ({
  tokens: n + 1,
  ceNats: [],
  totalNats,
  totalBits: totalNats / Math.LN2,
  bitsPerToken: totalNats / Math.LN2 / n,
  correct,
  accuracy: correct / n,
  predictions: [],
});

test('per-text metrics: CE in nats and bits, information and token gain, compression, the paper totals', () => {
  // N = 5 tokens, 4 predictions; without mem 10 nats and 1 right; with the best mem 2 nats, all 4 right.
  const m = textMetrics(fakeResult({ K: 2 }), score(10, 1, 4), score(2, 4, 4), 'x');
  assert.equal(m.id, 'x');
  close(m.ceWithoutMem.totalBits, 10 / Math.log(2));
  close(m.ceWithoutMem.perTokenNats, 2.5);
  close(m.ceWithMem.perTokenBits, 0.5 / Math.log(2));
  close(m.infoGainNats, 8);
  close(m.infoGainBits, 8 / Math.log(2));
  assert.equal(m.tokenGain, 3);
  assert.equal(m.compression, 2.5);
  assert.equal(m.decoded, true);
  // Authors: mean loss × N with the smallest loss seen: 2.5·5 − 0.3·5.
  close(m.paperCeWithoutMemNats, 12.5);
  close(m.paperCeWithMemNats, 1.5);
  close(m.paperInfoGainNats, 11);
});

function rec(N: number, acc: number, extra: Partial<TextMetrics> = {}): TextMetrics {
  const r = textMetrics(
    fakeResult({ tokens: N, predicted: N - 1, bestCorrect: Math.round(acc * (N - 1)), bestAccuracy: acc }),
    score(N, 0, N - 1),
    score(0, 0, N - 1),
  );
  return { ...r, ...extra };
}

test('Table 1 conventions: capacity = largest N with mean accuracy ≥ 0.99; gains averaged over texts with accuracy ≤ 0.99', () => {
  const records = [
    rec(8, 1),
    rec(8, 1),
    rec(16, 1),
    rec(16, 0.99, { tokenGain: 10, paperInfoGainNats: 30, infoGainBits: 40 }), // mean 0.995 ≥ 0.99
    rec(32, 1),
    rec(32, 0.9, { tokenGain: 20, paperInfoGainNats: 50, infoGainBits: 60 }), // mean 0.95
    rec(64, 0.995),
    rec(64, 0.99, { tokenGain: 30, paperInfoGainNats: 70, infoGainBits: 80 }), // mean 0.9925: not contiguous, still counts
  ];
  const groups = groupByLength(records);
  assert.deepEqual(
    groups.map((g) => [g.N, g.texts]),
    [
      [8, 2],
      [16, 2],
      [32, 2],
      [64, 2],
    ],
  );
  close(groups[2].meanBestAccuracy, 0.95);
  assert.equal(decodingCapacity(groups), 64);
  assert.equal(decodingCapacity([{ N: 8, meanBestAccuracy: 0.5 }]), 0);
  const [s] = capacitySummary(records, { memDim: 64, vocabSize: 512 });
  assert.equal(s.decodingCapacity, 64);
  assert.equal(s.saturatedTexts, 3); // the 0.99, 0.9 and 0.99 texts (≤ 0.99 is inclusive)
  close(s.tokenGain!, 20);
  close(s.paperInfoGainNats!, 50);
  close(s.paperInfoGainBits!, 50 / Math.LN2);
  close(s.infoGainBits!, 60);
  close(s.theoreticalCapacity, (64 * 16) / 9); // log2(512) = 9
  close(s.utilisation, 64 / ((64 * 16) / 9));
  close(theoreticalCapacity(4096, 128256), (4096 * 16) / Math.log2(128256));
  // The tables render every group and the summary.
  assert.match(lengthTable(records), /\|1\|64\|2\|0\.9925\|/);
  assert.match(capacityTable(records, { memDim: 64, vocabSize: 512 }), /\|1\|64\|113\.8\|/);
});

test('measure(): re-scoring the best mem gives the loss and accuracy cram recorded at the best step', async () => {
  await initBackend();
  const dir = path.join(__dirname, 'fixtures', 'reference', 'llama_gqa');
  const model = modelFromTensors(
    JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')),
    readSafetensors(path.join(dir, 'model.safetensors')).tensors,
  );
  const ids = [1, 5, 9, 33, 2, 7, 81, 14, 15, 200, 3, 17];
  const [r] = await cram(model, [ids], { K: 1, maxSteps: 150, patience: 50, seed: 5, quiet: true });
  const m = await measure(model, ids, r);
  assert.ok(r.lossAtBest !== null, 'the text improved at some step');
  close(m.ceWithMem.perTokenNats, r.lossAtBest!, 1e-4);
  assert.equal(m.correctWithMem, r.bestCorrect);
  assert.ok(r.minLoss <= r.lossAtBest! + 1e-7);
  assert.ok(m.paperCeWithMemNats <= m.ceWithMem.perTokenNats * m.N + 1e-4);
  await assert.rejects(() => measure(model, ids.slice(0, 5), r), /12 tokens but 5 ids/);
  model.dispose();
});
