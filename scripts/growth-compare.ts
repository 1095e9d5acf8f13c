// node --import tsx scripts/growth-compare.ts [--count 16] [--Ks 1,2,4] [--tokens 128] [--stride 4] [--steps 300] [--patience 60] [--no-bisection]
//   [--leading-weight w --leading-count n] [--name growth]
// Progressive cramming's two growth rules on the same stories260K sample stories, per K: stride (+stride
// tokens per stage, stop at the first failure) vs geometric (double on success, bisect on failure; the
// 2026 anchor's search), with the bisection capacity search (capacitySearch) as the reference. Same
// per-stage budget (steps, patience) and seeds for all. Every horizon is checked by greedy decoding from
// the final mem (the script fails otherwise). Writes figures/growth.{json,md}.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backend';
import { capacitySearch } from '../src/cram/capacity';
import { progressiveCram, type Growth, type ProgressiveResult } from '../src/cram/progressive';
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
  'no-bisection': { type: 'boolean' },
  'leading-weight': { type: 'string' },
  'leading-count': { type: 'string' },
  name: { type: 'string' },
} as const;
const { values } = parseArgs({ options: opt });
const COUNT = Number(values.count ?? 16);
const KS = (values.Ks ?? '1,2,4').split(',').map(Number);
const TOKENS = Number(values.tokens ?? 128);
const STRIDE = Number(values.stride ?? 4);
const STEPS = Number(values.steps ?? 300);
const PATIENCE = Number(values.patience ?? 60);
const BISECTION = !values['no-bisection'];
const LEADING = {
  leadingWeight: Number(values['leading-weight'] ?? 1),
  leadingCount: Number(values['leading-count'] ?? 0),
};
const NAME = values.name ?? 'growth';
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
  const grow = async (K: number, growth: Growth) => {
    const t0 = performance.now();
    const r = await progressiveCram(model, ids, {
      K,
      growth,
      stride: STRIDE,
      stageSteps: STEPS,
      stagePatience: PATIENCE,
      seed: 0,
      quiet: true,
      ...LEADING,
    });
    const bad = r.find((p) => !p.check.equal);
    if (bad) throw new Error(`K=${K} ${growth}: text ${bad.index}'s mem does not decode its horizon ${bad.horizon}`);
    return { r, seconds: (performance.now() - t0) / 1000 };
  };
  const rows = [];
  const perText = [];
  for (const K of KS) {
    const stride = await grow(K, 'stride');
    const geo = await grow(K, 'geometric');
    let cap: Awaited<ReturnType<typeof capacitySearch>> | undefined;
    let capSeconds = NaN;
    if (BISECTION) {
      const t0 = performance.now();
      cap = await capacitySearch(model, ids, {
        K,
        startN: 8,
        maxSteps: STEPS,
        patience: PATIENCE,
        seed: 0,
        quiet: true,
        ...LEADING,
      });
      capSeconds = (performance.now() - t0) / 1000;
    }
    const h = (r: ProgressiveResult[]) => r.map((p) => p.horizon);
    const failedSteps = (p: ProgressiveResult) => p.stages.reduce((n, s) => n + (s.held < s.N ? s.steps : 0), 0);
    const [hs, hg] = [h(stride.r), h(geo.r)];
    rows.push({
      K,
      texts: ids.length,
      'horizon (stride)': mean(hs),
      'horizon (geometric)': mean(hg),
      ...(cap ? { 'capacity (bisection)': mean(cap.map((c) => c.capacity)) } : {}),
      'geometric > / = / < stride': `${hg.filter((x, i) => x > hs[i]).length}/${hg.filter((x, i) => x === hs[i]).length}/${hg.filter((x, i) => x < hs[i]).length}`,
      'steps (stride)': mean(stride.r.map((p) => p.totalSteps)),
      'steps (geometric)': mean(geo.r.map((p) => p.totalSteps)),
      ...(cap ? { 'steps (bisection)': mean(cap.map((c) => c.totalSteps)) } : {}),
      'steps in failed stages (str/geo)': `${mean(stride.r.map(failedSteps)).toFixed(1)}/${mean(geo.r.map(failedSteps)).toFixed(1)}`,
      'stages (stride/geometric)': `${mean(stride.r.map((p) => p.stages.length)).toFixed(2)}/${mean(geo.r.map((p) => p.stages.length)).toFixed(2)}`,
      's (stride)': stride.seconds,
      's (geometric)': geo.seconds,
      ...(cap ? { 's (bisection)': capSeconds } : {}),
      'censored (str/geo)': `${stride.r.filter((p) => p.censored).length}/${geo.r.filter((p) => p.censored).length}`,
    });
    perText.push(
      ...ids.map((_, i) => ({
        K,
        id: texts[i].id,
        stride: { horizon: hs[i], steps: stride.r[i].totalSteps, curve: stride.r[i].curve, stages: stride.r[i].stages },
        geometric: {
          horizon: hg[i],
          steps: geo.r[i].totalSteps,
          curve: geo.r[i].curve,
          stages: geo.r[i].stages,
        },
        ...(cap ? { bisection: { capacity: cap[i].capacity, steps: cap[i].totalSteps } } : {}),
      })),
    );
    console.error(
      `K=${K}: stride ${stride.seconds.toFixed(0)} s, geometric ${geo.seconds.toFixed(0)} s, bisection ${capSeconds.toFixed(0)} s`,
    );
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
    bisection: BISECTION,
    ...LEADING,
  };
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, `${NAME}.json`), JSON.stringify({ budget, rows, perText }, null, 1) + '\n');
  const md = [
    '# Progressive cramming: stride vs geometric growth (stories260K)',
    '',
    `${COUNT} sample stories (shared/datasets/stories260k-samples.json), first ${TOKENS} tokens, seed 0, at most ${STEPS} steps /`,
    `patience ${PATIENCE} per stage. Stride: the target grows ${STRIDE} tokens per stage, a text stops at its first failed stage.`,
    `Geometric: first target ${1 + STRIDE}, then 2·held on success, bisection between held and the shortest failure on`,
    'failure, until they are one token apart. Both warm-start every stage from the mem of the last success; every',
    'horizon is checked by greedy decoding from the final mem.' +
      (BISECTION
        ? ' Bisection: capacitySearch (doubling from 8, then bisecting, warm starts), same budget per attempt.'
        : ''),
    (LEADING.leadingCount && LEADING.leadingWeight !== 1
      ? `Loss: the first ${LEADING.leadingCount} predictions weigh ${LEADING.leadingWeight} (cram/schedule.ts).\n`
      : "Loss: the authors' plain mean CE.\n") +
      'Lengths are tokens, the first (BOS) included; steps are cram steps per text (mean), those in failed stages (target not held: each runs to its patience or the step cap) apart; seconds are wall time for all texts on this machine (shared CPU).',
    '',
    tableMarkdown(rows, 2),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(OUT, `${NAME}.md`), md);
  console.log(md);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
