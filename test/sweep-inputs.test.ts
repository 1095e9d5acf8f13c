// Sweeps refuse what would collide in a run folder (duplicate or non-string text ids, a grid value
// given twice), recompute stored records that fail validation (saying how many), and survive a full
// disk: one line naming the file, and the same command finishes the run once space is freed.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { readLines } from '../src/runs/folder';
import type { CramRecord } from '../src/runs/record';
import { capacitySweep } from '../src/runs/sweep';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'cramlab.js');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-inputs-'));

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
  { id: 'c', ids: [1, 4, 4, 46, 12, 20, 7, 8, 9, 10, 11, 12] },
];
const base = {
  lengths: [10],
  Ks: [1],
  model: { id: 'tiny', weightsHash: 'h1' },
  maxSteps: 3,
  patience: 1000,
  quiet: true,
};
const withoutTimes = (rs: CramRecord[]) => rs.map(({ seconds: _s, ...r }) => r);

test('duplicate or non-string text ids, and grid values given twice, are refused before anything is written', async () => {
  await initBackend();
  const model = gqa();
  const runDir = tmp();
  const refuse = (t: any[], o: object, re: RegExp) =>
    assert.rejects(capacitySweep(model, t, { ...base, ...o, runDir, log: () => {} }), re);
  await refuse([texts[0], { ...texts[1], id: 'a' }], {}, /text id 'a' appears twice: ids must be unique/);
  await refuse(
    [texts[0], { ...texts[1], id: { x: 1 } }],
    {},
    /text 1 has id \{"x":1\}: text ids must be non-empty strings/,
  );
  await refuse([texts[0], { ...texts[1], id: 7 }], {}, /text 1 has id 7: text ids must be non-empty strings/);
  await refuse(texts, { Ks: [1, 1] }, /mem counts list 1 twice \(1,1\)/);
  await refuse(texts, { lengths: [8, 8, 10] }, /lengths list 8 twice \(8,8,10\)/);
  assert.deepEqual(fs.readdirSync(runDir), [], 'a refused sweep wrote into the run folder');

  // The same through the CLI, from a samples file a user wrote.
  const file = path.join(tmp(), 'dup.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      samples: [
        { id: 's', ids: [1, 2, 3] },
        { id: 's', ids: [1, 2, 4] },
      ],
    }),
  );
  const run = (...a: string[]) =>
    spawnSync(process.execPath, [CLI, 'capacity', '--model', 'models/cram-llama-d32', '--out', tmp(), ...a], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
  const dup = run('--texts', file, '--lengths', '2');
  assert.equal(dup.status, 1);
  assert.match(dup.stderr, /dup\.json: id 's' appears twice \(samples 0 and 1\); ids must be unique/);
  fs.writeFileSync(file, JSON.stringify({ samples: [{ id: { a: 1 }, ids: [1, 2, 3] }] }));
  assert.match(
    run('--texts', file, '--lengths', '2').stderr,
    /sample 0 has id \{"a":1\}; ids must be strings or numbers/,
  );
  const twice = run('--texts', 'books', '--count', '2', '--lengths', '8,8,16');
  assert.equal(twice.status, 1);
  assert.equal(twice.stderr.trim(), 'cramlab capacity: lengths list 8 twice (8,8,16): give each value once');
  assert.match(
    run('--texts', 'books', '--count', '2', '--lengths', '8', '--mem', '1,1').stderr,
    /mem counts list 1 twice/,
  );
});

test('hand-edited records (accuracy null, a string, 7.5; a count past N) are recomputed, and the count is said', async () => {
  await initBackend();
  const model = gqa();
  const runDir = tmp();
  const file = path.join(runDir, 'results.jsonl');
  const first = await capacitySweep(model, texts, { ...base, runDir, log: () => {} });
  const edits: [string, (r: any) => void][] = [
    ['a', (r) => (r.bestAccuracy = null)],
    ['b', (r) => (r.bestAccuracy = '0.5')],
    ['c', (r) => (r.bestAccuracy = 7.5)],
  ];
  const lines = readLines<any>(file).map((r) => {
    edits.find(([id]) => id === r.id)?.[1](r);
    return JSON.stringify(r);
  });
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const log: string[] = [];
  const again = await capacitySweep(model, texts, { ...base, runDir, log: (s) => log.push(s) });
  assert.ok(
    log.some((l) =>
      /^3 records in .*results\.jsonl fail validation \(first: "a" N=10 K=1: bestAccuracy null is not a number in \[0, 1\]\): recomputing them$/.test(
        l,
      ),
    ),
    log.join('\n'),
  );
  assert.deepEqual(withoutTimes(again.grid), withoutTimes(first.grid), 'the recomputed records differ');

  // A count past N, or a status no engine writes: recomputed too; a valid NaN run (nulls) is kept.
  const rs = readLines<any>(file);
  const a = rs.filter((r) => r.id === 'a').pop();
  a.correctWithMem = 99;
  const nanRun = { ...rs.filter((r) => r.id === 'b').pop(), status: 'nan', bestAccuracy: null, infoGainBits: null };
  fs.writeFileSync(
    file,
    [a, nanRun, rs.filter((r) => r.id === 'c').pop()].map((r) => JSON.stringify(r)).join('\n') + '\n',
  );
  const log2: string[] = [];
  const third = await capacitySweep(model, texts, { ...base, runDir, log: (s) => log2.push(s) });
  assert.ok(
    log2.some((l) => /^1 records .* fail validation \(first: "a" N=10 K=1: correctWithMem 99 is not a count/.test(l)),
    log2.join('\n'),
  );
  assert.equal(third.grid.find((r) => r.id === 'b')!.status, 'nan', 'a NaN run was not kept');
});

test('a full disk: one line naming the file; after space is freed the same command resumes and finishes with the records of an uninterrupted run', async (t) => {
  const mnt = tmp();
  if (process.getuid?.() !== 0) return t.skip('needs root to mount a 64 KiB tmpfs (run as root, as CI does)');
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]).status !== 0)
    return t.skip('cannot mount a tmpfs here (no CAP_SYS_ADMIN?)');
  try {
    const sweep = (out: string) =>
      spawnSync(
        process.execPath,
        [
          CLI,
          'capacity',
          '--model',
          'models/cram-llama-d32',
          '--texts',
          'books',
          '--count',
          '6',
          '--lengths',
          '8,16',
          '--max-steps',
          '30',
          '--batch',
          '2',
          '--quiet',
          '--out',
          out,
        ],
        { cwd: ROOT, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } },
      );
    const whole = tmp();
    assert.equal(sweep(whole).status, 0);
    // Leave 16 KiB: config.json and the lock take a page each, the records (~1 KiB each) outgrow the rest.
    const run = path.join(mnt, 'run');
    fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(48 * 1024));
    const full = sweep(run);
    assert.equal(full.status, 1, full.stdout + full.stderr);
    const err = full.stderr.trim();
    assert.equal(err.split('\n').length, 1, err);
    assert.match(
      err,
      new RegExp(
        `^cramlab capacity: cannot write ${run}/results\\.jsonl: no space left on the device; free some and run the same command again to resume$`,
      ),
    );
    const kept = fs.readFileSync(path.join(run, 'results.jsonl'), 'utf8');
    assert.ok(kept.endsWith('\n') && kept.split('\n').length > 2, 'no whole record was kept, or a torn one was');
    assert.ok(!fs.existsSync(path.join(run, '.lock')), 'the lock was left behind');

    fs.rmSync(path.join(mnt, 'filler'));
    const again = sweep(run);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /resuming: \d+ records already in/);
    const recs = (dir: string) =>
      readLines<CramRecord>(path.join(dir, 'results.jsonl'))
        .map(({ seconds: _s, ...r }) => r)
        .sort((x, y) => `${x.id}|${x.N}`.localeCompare(`${y.id}|${y.N}`));
    assert.equal(recs(run).length, 12);
    assert.deepEqual(recs(run), recs(whole));
  } finally {
    spawnSync('umount', [mnt]);
  }
});
