// node --import tsx scripts/progressive-compare.ts [--count 16] [--Ks 1,2,4] [--tokens 96] [--stride 4] [--steps 500] [--patience 100]
// Progressive cramming (grow the target `stride` tokens per stage, warm-started) vs the bisection
// capacity search (capacitySearch) on the same stories260K sample stories, per K: mean horizon vs
// mean capacity (tokens, first included), total cram steps, wall time. Both searches use the same
// per-attempt budget (steps, patience) and seeds. Writes figures/progressive.{json,md}.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backend';
import { capacitySearch } from '../src/cram/capacity';
import { progressiveCram } from '../src/cram/progressive';
import { loadTexts } from '../src/datasets/index';
import { loadModel } from '../src/io/checkpoint';
import { tableMarkdown } from '../src/plots';
import { repoRoot, sharedModel } from '../src/workbook/paths';

const opt = {
  count: { type: 'string' },
  Ks: { type: 'string' },
  tokens: { type: 'string' },
  stride: { type: 'string' },
  steps: { type: 'string' },
  patience: { type: 'string' },
  out: { type: 'string' },
} as const;
const { values } = parseArgs({ options: opt });
const COUNT = Number(values.count ?? 16);
const KS = (values.Ks ?? '1,2,4').split(',').map(Number);
const TOKENS = Number(values.tokens ?? 96);
const STRIDE = Number(values.stride ?? 4);
const STEPS = Number(values.steps ?? 500);
const PATIENCE = Number(values.patience ?? 100);
const OUT = path.resolve(values.out ?? path.join(repoRoot(), 'figures'));

async function main() {
  await initBackend();
  const dir = sharedModel('stories260K');
  if (!dir) throw new Error('stories260K not found (set CRAMLAB_MODELS or put it in ../shared/models)');
  const { model, tokenizer } = await loadModel(dir);
  const texts = await loadTexts(path.join(dir, '..', '..', 'datasets', 'stories260k-samples.json'), {
    tokenizer,
    count: COUNT,
    maxTokens: TOKENS,
  });
  const ids = texts.map((t) => t.ids);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rows = [];
  const perText = [];
  for (const K of KS) {
    let t0 = performance.now();
    const prog = await progressiveCram(model, ids, {
      K,
      stride: STRIDE,
      stageSteps: STEPS,
      stagePatience: PATIENCE,
      seed: 0,
      quiet: true,
    });
    const progSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const cap = await capacitySearch(model, ids, {
      K,
      startN: 8,
      maxSteps: STEPS,
      patience: PATIENCE,
      seed: 0,
      quiet: true,
    });
    const capSeconds = (performance.now() - t0) / 1000;
    if (!prog.every((p) => p.check.equal)) throw new Error(`K=${K}: a progressive mem does not decode its horizon`);
    rows.push({
      K,
      texts: ids.length,
      'horizon (progressive)': mean(prog.map((p) => p.horizon)),
      'capacity (bisection)': mean(cap.map((c) => c.capacity)),
      'progressive ≥ bisection': prog.filter((p, i) => p.horizon >= cap[i].capacity).length,
      'steps (progressive)': mean(prog.map((p) => p.totalSteps)),
      'steps (bisection)': mean(cap.map((c) => c.totalSteps)),
      'stages (progressive)': mean(prog.map((p) => p.stages.length)),
      'attempts (bisection)': mean(cap.map((c) => c.attempts.length)),
      's (progressive)': progSeconds,
      's (bisection)': capSeconds,
      'censored (prog/bis)': `${prog.filter((p) => p.censored).length}/${cap.filter((c) => c.censored).length}`,
    });
    perText.push(
      ...prog.map((p, i) => ({
        K,
        id: texts[i].id,
        horizon: p.horizon,
        capacity: cap[i].capacity,
        progSteps: p.totalSteps,
        bisSteps: cap[i].totalSteps,
        curve: p.curve,
      })),
    );
    console.error(`K=${K}: progressive ${progSeconds.toFixed(0)} s, bisection ${capSeconds.toFixed(0)} s`);
  }
  model.dispose();
  const budget = {
    count: COUNT,
    Ks: KS,
    maxTokens: TOKENS,
    stride: STRIDE,
    stageSteps: STEPS,
    stagePatience: PATIENCE,
    seed: 0,
  };
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'progressive.json'), JSON.stringify({ budget, rows, perText }, null, 1) + '\n');
  const md = [
    '# Progressive cramming vs bisection capacity search (stories260K)',
    '',
    `${COUNT} sample stories (shared/datasets/stories260k-samples.json), first ${TOKENS} tokens. Progressive: target grows`,
    `${STRIDE} tokens per stage, each stage warm-started from the held mem, at most ${STEPS} steps / patience ${PATIENCE} per stage; a text`,
    'stops at its first failed stage; horizon = longest prefix the final mem greedily decodes (checked by decoding).',
    `Bisection: capacitySearch (doubling from 8, then bisecting, warm starts), ${STEPS} steps / patience ${PATIENCE} per attempt.`,
    'Lengths are tokens, the first (BOS) included; seconds are wall time on this machine (shared CPU).',
    '',
    tableMarkdown(rows, 2),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(OUT, 'progressive.md'), md);
  console.log(md);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
