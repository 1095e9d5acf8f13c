// Progressive cramming on the real stories260K: each text's final mem greedily writes exactly its
// first `horizon` tokens, the held prefix never shrinks from stage to stage, every stage after the
// first starts from the mem the stages before it kept, and bad options are one clear CramError.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { capacitySearch } from '../src/cram/capacity';
import { CramError, initialMem, type CramResult } from '../src/cram/cram';
import { progressiveCram, type ProgressiveStage } from '../src/cram/progressive';
import { decode } from '../src/decode';
import { loadModel } from '../src/io/checkpoint';
import { MODELS_DIR, sharedModel } from './helpers/shared';

const s260 = sharedModel('stories260K');
const samplesFile = path.join(MODELS_DIR, '..', 'datasets', 'stories260k-samples.json');
const budget = { K: 1, stride: 6, maxTokens: 48, stageSteps: 300, stagePatience: 60, seed: 11, quiet: true };

test(
  'progressiveCram: decode of the final mem equals the text prefix, horizons grow, warm starts are used',
  { skip: s260.skip },
  async (t) => {
    await initBackend();
    const { model } = await loadModel(s260.dir!);
    const samples: { ids: number[] }[] = JSON.parse(fs.readFileSync(samplesFile, 'utf8')).samples;
    // Later samples start mid-story (position 100 on): harder than "Once upon a time".
    const texts = samples.slice(0, 3).map((s) => s.ids.slice(100, 100 + budget.maxTokens));
    const seen = texts.map(() => [] as { stage: ProgressiveStage; r: CramResult }[]);
    const res = await progressiveCram(model, texts, {
      ...budget,
      onStage: (i, stage, r) => seen[i].push({ stage, r }),
    });

    for (const [i, p] of res.entries()) {
      const ids = texts[i];
      assert.ok(p.horizon >= 1 && p.horizon <= ids.length);
      // The check is a real greedy decode, redone here from the returned mem.
      const back = await decode(model, { vectors: p.mem, K: 1, tokens: p.horizon, firstId: ids[0] });
      assert.deepEqual(back.ids, ids.slice(0, p.horizon), `text ${i}: decode ≠ prefix of ${p.horizon}`);
      assert.deepEqual(p.check.ids, back.ids);
      assert.equal(p.check.equal, true);
      // Held prefix is monotone over stages and ends at the horizon; the curve says the same.
      const held = p.stages.map((s) => s.held);
      for (let k = 1; k < held.length; k++) assert.ok(held[k] >= held[k - 1], `text ${i}: held shrank at stage ${k}`);
      assert.equal(held[held.length - 1], p.horizon);
      assert.deepEqual(p.curve.held, [1, ...held]);
      assert.equal(
        p.totalSteps,
        p.stages.reduce((n, s) => n + s.steps, 0),
      );
      assert.equal(p.curve.steps[p.curve.steps.length - 1], p.totalSteps);
      // A text stops only by failing its stage (target not held) or reaching the end.
      const last = p.stages[p.stages.length - 1];
      assert.ok(last.held < last.N || p.censored, `text ${i}: stopped after a stage it passed`);
      for (const s of p.stages.slice(0, -1)) assert.ok(s.held >= s.N, `text ${i}: advanced past a failed stage`);

      // Warm starts: stage 1 from the seeded init, every later stage from the mem held so far.
      let mem = initialMem(model, 1, budget.seed + i);
      let prev = 1;
      for (const [k, { stage, r }] of seen[i].entries()) {
        assert.deepEqual(
          Array.from(r.initMem),
          Array.from(mem),
          `text ${i}: stage ${k + 1} did not start from the held mem`,
        );
        assert.equal(stage.warm, k > 0);
        assert.equal(stage.N, Math.min(ids.length, prev + budget.stride));
        if (stage.held > prev) mem = r.bestMem;
        prev = stage.held;
      }
    }
    assert.ok(
      res.some((p) => p.stages.length >= 2),
      'no text reached a second stage: the warm start went untested',
    );

    // The bisection baseline on the same texts and budget, reported (not asserted: both are searches).
    const cap = await capacitySearch(model, texts, {
      K: 1,
      startN: 8,
      maxSteps: budget.stageSteps,
      patience: budget.stagePatience,
      seed: budget.seed,
      quiet: true,
    });
    t.diagnostic(
      `horizon (progressive) ${res.map((p) => p.horizon).join(', ')} in ${res.map((p) => p.totalSteps).join(', ')} steps`,
    );
    t.diagnostic(
      `capacity (bisection)  ${cap.map((c) => c.capacity).join(', ')} in ${cap.map((c) => c.totalSteps).join(', ')} steps`,
    );
    model.dispose();
  },
);

test(
  'progressiveCram geometric: doubles on success, bisects on failure, warm-starts from the last success, decodes its horizon',
  { skip: s260.skip },
  async (t) => {
    await initBackend();
    const { model } = await loadModel(s260.dir!);
    const samples: { ids: number[] }[] = JSON.parse(fs.readFileSync(samplesFile, 'utf8')).samples;
    const texts = samples.slice(0, 3).map((s) => s.ids.slice(100, 100 + budget.maxTokens));
    const seen = texts.map(() => [] as { stage: ProgressiveStage; r: CramResult }[]);
    const res = await progressiveCram(model, texts, {
      ...budget,
      growth: 'geometric',
      probePatience: 40, // bisection probes: a budget of their own
      onStage: (i, stage, r) => seen[i].push({ stage, r }),
    });
    for (const [i, p] of res.entries()) {
      const ids = texts[i];
      const back = await decode(model, { vectors: p.mem, K: 1, tokens: p.horizon, firstId: ids[0] });
      assert.deepEqual(back.ids, ids.slice(0, p.horizon), `text ${i}: decode ≠ prefix of ${p.horizon}`);
      assert.equal(p.check.equal, true);
      // Replay the search: each target from the held prefix and the shortest failure above it.
      let mem = initialMem(model, 1, budget.seed + i);
      let held = 1;
      const failures: number[] = [];
      const above = () => Math.min(Infinity, ...failures.filter((n) => n > held));
      for (const [k, { stage, r }] of seen[i].entries()) {
        const want = above() === Infinity ? (k === 0 ? 1 + budget.stride : 2 * held) : Math.floor((held + above()) / 2);
        assert.equal(stage.N, Math.min(ids.length, want), `text ${i}: stage ${k + 1} target`);
        assert.ok(stage.N > held, `text ${i}: stage ${k + 1} targets no new token`);
        assert.equal(
          stage.patience,
          above() === Infinity ? budget.stagePatience : 40,
          `text ${i}: stage ${k + 1} patience`,
        );
        if (r.status === 'patience') assert.ok(r.steps >= stage.patience, `text ${i}: stage ${k + 1} stopped early`);
        assert.deepEqual(Array.from(r.initMem), Array.from(mem), `text ${i}: stage ${k + 1} not from the last success`);
        assert.ok(stage.held >= held, `text ${i}: held shrank at stage ${k + 1}`);
        if (stage.held > held) mem = r.bestMem;
        held = stage.held;
        if (held < stage.N) failures.push(stage.N);
      }
      assert.equal(held, p.horizon);
      // It stops with the horizon bracketed to one token (horizon + 1 failed) or at the text's end.
      assert.ok(
        p.censored || above() === p.horizon + 1,
        `text ${i}: stopped at ${p.horizon} with failure at ${above()}`,
      );
      assert.equal(
        p.totalSteps,
        p.stages.reduce((n, s) => n + s.steps, 0),
      );
    }
    assert.ok(
      res.some((p) => p.stages.some((s) => s.held < s.N)),
      'no stage failed: the bisection went untested',
    );
    t.diagnostic(
      `horizon (geometric) ${res.map((p) => p.horizon).join(', ')} in ${res.map((p) => p.totalSteps).join(', ')} steps, ${res.map((p) => p.stages.length).join(', ')} stages`,
    );
    await assert.rejects(
      progressiveCram(model, [texts[0]], { growth: 'linear' as 'stride' }),
      (e: Error) => e instanceof CramError && e.message === 'growth must be stride or geometric, got linear',
    );
    model.dispose();
  },
);

test(
  "progressiveCram geometric, probeStart 'failure': each bisection probe starts from the best mem of the failure bounding it",
  { skip: s260.skip },
  async () => {
    await initBackend();
    const { model } = await loadModel(s260.dir!);
    const samples: { ids: number[] }[] = JSON.parse(fs.readFileSync(samplesFile, 'utf8')).samples;
    const texts = samples.slice(3, 5).map((s) => s.ids.slice(100, 100 + budget.maxTokens));
    const seen = texts.map(() => [] as { stage: ProgressiveStage; r: CramResult }[]);
    const res = await progressiveCram(model, texts, {
      ...budget,
      growth: 'geometric',
      probeStart: 'failure',
      onStage: (i, stage, r) => seen[i].push({ stage, r }),
    });
    let probes = 0;
    for (const [i, p] of res.entries()) {
      assert.equal(p.check.equal, true, `text ${i}: mem does not decode its horizon`);
      let [held, mem] = [1, initialMem(model, 1, budget.seed + i)];
      const failed = new Map<number, Float32Array>();
      const above = () => Math.min(Infinity, ...[...failed.keys()].filter((n) => n > held));
      for (const [k, { stage, r }] of seen[i].entries()) {
        const bound = failed.get(above());
        if (bound) probes++;
        assert.deepEqual(Array.from(r.initMem), Array.from(bound ?? mem), `text ${i}: stage ${k + 1} start`);
        if (stage.held > held) mem = r.bestMem;
        held = stage.held;
        if (held < stage.N) failed.set(stage.N, r.bestMem);
      }
    }
    assert.ok(probes > 0, 'no probe ran: the failure start went untested');
    await assert.rejects(
      progressiveCram(model, [texts[0]], { probeStart: 'middle' as 'failure' }),
      (e: Error) => e instanceof CramError && e.message === 'probeStart must be success or failure, got middle',
    );
    model.dispose();
  },
);

test('progressiveCram: bad options and texts are one clear CramError', { skip: s260.skip }, async () => {
  await initBackend();
  const { model } = await loadModel(s260.dir!);
  const ids = [1, 403, 407, 261, 378];
  await assert.rejects(
    progressiveCram(model, [ids], { stride: 0 }),
    (e: Error) => e instanceof CramError && e.message === 'stride must be a positive integer, got 0',
  );
  await assert.rejects(
    progressiveCram(model, [ids], { stageSteps: 2.5 }),
    (e: Error) => e instanceof CramError && e.message === 'stageSteps must be a positive integer, got 2.5',
  );
  await assert.rejects(
    progressiveCram(model, [[1]]),
    (e: Error) => e instanceof CramError && /text 0 has fewer than 2 tokens/.test(e.message),
  );
  await assert.rejects(
    progressiveCram(model, []),
    (e: Error) => e instanceof CramError && e.message === 'no texts to cram',
  );
  await assert.rejects(
    progressiveCram(model, [ids, ids], { seed: [1] }),
    (e: Error) => e instanceof CramError && e.message === 'seed has 1 entries for 2 texts',
  );
  model.dispose();
});

test(
  'cramlab cram --progressive prints a horizon whose greedy decode is checked against the text',
  { skip: s260.skip },
  () => {
    const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
    const root = path.resolve(__dirname, '..');
    const text = 'Once upon a time, there was a big dog named Max. Max liked to run fast in the park.';
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(root, 'src', 'cli', 'main.ts'),
        'cram',
        '--model',
        s260.dir!,
        '--text',
        text,
        '--progressive',
        '--stride',
        '1',
        '--stage-steps',
        '300',
        '--stage-patience',
        '60',
        '--json',
      ],
      { cwd: root, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.ok(out.horizon >= 2 && out.horizon <= out.N, `horizon ${out.horizon} of ${out.N}`);
    assert.equal(out.check.equal, true);
    assert.equal(out.check.ids.length, out.horizon);
    const held = out.stages.map((s: ProgressiveStage) => s.held);
    assert.deepEqual(
      held,
      [...held].sort((a: number, b: number) => a - b),
      'the held prefix never shrinks',
    );
    assert.equal(out.stages[0].warm, false);
    assert.ok(
      out.stages.slice(1).every((s: ProgressiveStage) => s.warm),
      'every later stage is warm-started',
    );
  },
);

test(
  'cramlab encode --progressive writes the final mem and its horizon; decode gives back exactly that prefix',
  { skip: s260.skip },
  async () => {
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
    const os = require('node:os') as typeof import('node:os');
    const { loadMem } = await import('../src/mem-file');
    const root = path.resolve(__dirname, '..');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-prog-enc-'));
    const file = path.join(tmp, 'story.txt');
    const text = 'Once upon a time, there was a big dog named Max. Max liked to run fast in the park.';
    fs.writeFileSync(file, text);
    const cli = (...a: string[]) =>
      execFileSync(process.execPath, [path.join(root, 'bin', 'cramlab.js'), ...a], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const out = path.join(tmp, 'story.cram');
    const enc = cli(
      'encode',
      file,
      '-o',
      out,
      '--model',
      s260.dir!,
      '--progressive',
      '--mem',
      '2',
      '--stride',
      '2',
      '--stage-steps',
      '300',
      '--stage-patience',
      '60',
      '--quiet',
    );
    const m = enc.match(/horizon (\d+) of (\d+) tokens.* → 2 vectors of 64/);
    assert.ok(m, enc);
    const [horizon, N] = [Number(m[1]), Number(m[2])];
    assert.ok(horizon >= 2 && horizon <= N, `horizon ${horizon} of ${N}`);
    assert.match(enc, new RegExp(`reproduces the first ${horizon} tokens exactly`));
    const mem = loadMem(out);
    assert.equal(mem.K, 2);
    assert.equal(mem.tokens, horizon);
    assert.equal(mem.extra?.progressive, 'true');
    assert.equal(mem.extra?.horizon, String(horizon));
    assert.equal(mem.extra?.textTokens, String(N));
    // decode checks the stored ids hash: the vectors give back the horizon's prefix of the text, no more.
    const { tokenizer } = await loadModel(s260.dir!);
    const dec = cli('decode', out, '--model', s260.dir!, '--check');
    assert.equal(dec.replace(/\n$/, ''), tokenizer.decode(tokenizer.encode(text).slice(0, horizon)));
    // The shared flags are checked as in cram --progressive.
    assert.throws(
      () => cli('encode', file, '-o', out, '--model', s260.dir!, '--progressive', '--stride', '0'),
      (e: { stderr: string }) => /stride must be a positive integer/.test(e.stderr),
    );
  },
);
