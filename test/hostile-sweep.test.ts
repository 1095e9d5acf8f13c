// Sweeps against a hostile run folder: records made with other texts or options (or with no
// fingerprint, from older versions) are recomputed, not reused; a torn last line is cut; a second
// process is kept off the folder by its .lock (a dead owner's lock is taken over); NaN runs are
// counted and left out of the summaries.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { initBackend } from '../src/backend';
import { readLines } from '../src/runs/folder';
import type { CramRecord } from '../src/runs/record';
import { capacitySweep } from '../src/runs/sweep';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { capacitySummary, groupByLength } from '../src/metrics/summary';
import { capacityTable, lengthTable } from '../src/metrics/table';

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
];
// Few steps and no early stop on patience: every run ends at maxSteps unless it decodes.
const base = {
  lengths: [10],
  Ks: [1],
  model: { id: 'tiny', weightsHash: 'h1' },
  maxSteps: 3,
  patience: 1000,
  quiet: true,
};
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-hostile-'));

test('a re-run with other options, another text, or records without a fingerprint recomputes them', async () => {
  await initBackend();
  const model = gqa();
  const runDir = tmp();
  const file = path.join(runDir, 'results.jsonl');
  const first = await capacitySweep(model, texts, { ...base, runDir, log: () => {} });
  assert.ok(first.grid.every((r) => r.steps <= 3 && /^[0-9a-f]{16}$/.test(r.fingerprint)));

  // Other maxSteps: the 3-step records must not come back as the 6-step answer.
  const lines: string[] = [];
  const second = await capacitySweep(model, texts, { ...base, maxSteps: 6, runDir, log: (s) => lines.push(s) });
  assert.equal(second.grid.length, 2);
  assert.ok(
    second.grid.every((r) => r.steps > 3 || r.decoded),
    'stale 3-step records were reused',
  );
  assert.ok(
    lines.some((l) => /2 records .* other texts or options .* recomputing/.test(l)),
    lines.join('\n'),
  );

  // Same id, other tokens: recomputed for the new text.
  const changed = [{ id: 'a', ids: [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13] }, texts[1]];
  const third = await capacitySweep(model, changed, { ...base, maxSteps: 6, runDir, log: () => {} });
  const a2 = third.grid.find((r) => r.id === 'a')!;
  const a1 = second.grid.find((r) => r.id === 'a')!;
  assert.notEqual(a2.fingerprint, a1.fingerprint);
  assert.equal(
    third.grid.find((r) => r.id === 'b')!.fingerprint,
    second.grid.find((r) => r.id === 'b')!.fingerprint,
    'the unchanged text is reused',
  );

  // Records of an older version (no fingerprint) are stale.
  const old = readLines<CramRecord>(file).map(({ fingerprint: _f, ...r }) => r);
  fs.writeFileSync(file, old.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const again: string[] = [];
  const fourth = await capacitySweep(model, changed, { ...base, maxSteps: 6, runDir, log: (s) => again.push(s) });
  assert.ok(
    fourth.grid.every((r) => r.fingerprint),
    'records without a fingerprint were reused',
  );
  assert.ok(again.some((l) => /older version\): recomputing/.test(l)));
});

test('a torn last line is cut off, so the next record starts a clean line', async () => {
  await initBackend();
  const model = gqa();
  const runDir = tmp();
  const file = path.join(runDir, 'results.jsonl');
  await capacitySweep(model, texts, { ...base, runDir, log: () => {} });
  const whole = fs.readFileSync(file, 'utf8').trim().split('\n');
  // A crash mid-write of the second record: keep the first, half of the second.
  fs.writeFileSync(file, whole[0] + '\n' + whole[1].slice(0, 40));
  const lines: string[] = [];
  await capacitySweep(model, texts, { ...base, runDir, log: (s) => lines.push(s) });
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  for (const l of text.trim().split('\n'))
    assert.doesNotThrow(() => JSON.parse(l), `a torn line is left in the file: ${l.slice(0, 60)}`);
  assert.equal(text.trim().split('\n').length, 2);
  assert.ok(lines.some((l) => /cut a torn last line/.test(l)));
});

test("a live lock refuses the folder; a dead owner's lock is taken over; the lock goes on exit and on error", async () => {
  await initBackend();
  const model = gqa();
  const runDir = tmp();
  const lock = path.join(runDir, '.lock');
  fs.writeFileSync(lock, String(process.ppid)); // a live process that is not this one
  await assert.rejects(
    capacitySweep(model, texts, { ...base, runDir, log: () => {} }),
    (e: Error) =>
      e.name === 'CramError' && new RegExp(`in use by process ${process.ppid} .*use another --out`).test(e.message),
  );
  assert.ok(!fs.existsSync(path.join(runDir, 'results.jsonl')), 'the refused run wrote records');

  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  fs.writeFileSync(lock, String(dead));
  const r = await capacitySweep(model, texts, { ...base, runDir, log: () => {} });
  assert.equal(r.grid.length, 2);
  assert.ok(!fs.existsSync(lock), 'the lock is left after the run');

  // A cram error inside the locked part still releases the lock.
  await assert.rejects(
    capacitySweep(model, [{ id: 'z', ids: [1, 2, 99999, 4, 5, 6, 7, 8, 9, 10] }], { ...base, runDir, log: () => {} }),
    /outside the vocabulary/,
  );
  assert.ok(!fs.existsSync(lock), 'the lock is left after an error');
});

test('NaN runs are counted, shown and kept out of the means', async () => {
  await initBackend();
  const model = gqa();
  const { grid } = await capacitySweep(model, texts, { ...base, runDir: tmp(), log: () => {} });
  const nan = {
    ...grid[0],
    id: 'n',
    status: 'nan',
    bestAccuracy: NaN,
    infoGainBits: NaN,
    paperInfoGainNats: NaN,
    tokenGain: NaN,
  };
  const nan2 = { ...grid[0], id: 'm', bestAccuracy: NaN };
  const recs = [...grid, nan, nan2];
  const g = groupByLength(recs)[0];
  assert.equal(g.nanRuns, 2);
  assert.equal(g.texts, 2);
  assert.ok(Number.isFinite(g.meanBestAccuracy));
  const s = capacitySummary(recs, model.info)[0];
  assert.equal(s.nanRuns, 2);
  assert.ok(s.infoGainBits === null || Number.isFinite(s.infoGainBits));
  assert.deepEqual(s, { ...capacitySummary(grid, model.info)[0], nanRuns: 2 });
  assert.match(lengthTable(recs), /2 NaN runs excluded/);
  assert.match(capacityTable(recs, model.info), /2 NaN runs excluded/);
  assert.doesNotMatch(lengthTable(recs), /NaN \|/);
});
