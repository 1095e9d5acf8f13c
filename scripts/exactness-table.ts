// npm run exactness [-- --max-steps 600 --patience 150 --count 16 --no-png] : teacher-forced vs exact
// greedy capacity, at fp32 and after storage at bf16/fp16/int8/int4, for stories260K (its 16 first
// shared samples) and the embedded suite (books), K = 1, 2, 4, on a small N grid per model.
// One capacity sweep per model in runs/exactness/<model> (resumable); writes figures/exactness.{md,json,html,png}.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadTexts } from '../src/datasets/index';
import { loadModel } from '../src/io/checkpoint';
import { table1, type Table1Row } from '../src/metrics/summary';
import { exactCapacityBars, findChromium, openRenderer, standaloneHtml, tableMarkdown } from '../src/plots';
import { PRECISIONS } from '../src/precision';
import { capacitySweep } from '../src/runs/sweep';
import type { CramRecord } from '../src/runs/record';
import { modelPath, repoRoot, sharedModel } from '../src/workbook/paths';

const { values } = parseArgs({
  options: {
    'max-steps': { type: 'string' },
    patience: { type: 'string' },
    count: { type: 'string' },
    out: { type: 'string' },
    'no-png': { type: 'boolean' },
  },
});
const maxSteps = Number(values['max-steps'] ?? 600);
const patience = Number(values.patience ?? 150);
const count = Number(values.count ?? 16);
const ROOT = repoRoot();
const OUT = path.resolve(values.out ?? path.join(ROOT, 'figures'));
const Ks = [1, 2, 4];

// N grids up to (about) each model's capacity at K = 4 (figures/notes.md, budget small)
const RUNS: { model: string; dir: string | undefined; set: string; texts: string; lengths: number[] }[] = [
  {
    model: 'stories260K',
    dir: sharedModel('stories260K'),
    set: 'stories260k-samples',
    texts: path.join(ROOT, '..', 'shared', 'datasets', 'stories260k-samples.json'),
    lengths: [8, 16, 32, 64],
  },
  {
    model: 'models/cram-llama-d32',
    dir: modelPath('models/cram-llama-d32'),
    set: 'books',
    texts: 'books',
    lengths: [4, 8, 16],
  },
  {
    model: 'models/cram-llama-d64',
    dir: modelPath('models/cram-llama-d64'),
    set: 'books',
    texts: 'books',
    lengths: [4, 8, 16, 32],
  },
  {
    model: 'models/cram-mamba-d32',
    dir: modelPath('models/cram-mamba-d32'),
    set: 'books',
    texts: 'books',
    lengths: [4, 8, 16],
  },
];

async function main(): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const records: CramRecord[] = [];
  const shapes = new Map<string, { memDim: number; vocabSize: number }>();
  for (const r of RUNS) {
    if (
      !r.dir ||
      !fs.existsSync(path.join(r.dir, 'config.json')) ||
      (r.texts.endsWith('.json') && !fs.existsSync(r.texts))
    ) {
      console.log(`${r.model}: not here, skipped`);
      continue;
    }
    const loaded = await loadModel(r.dir);
    shapes.set(r.model, loaded.model.info);
    const texts = await loadTexts(r.texts, { tokenizer: loaded.tokenizer, maxTokens: Math.max(...r.lengths), count });
    const { grid } = await capacitySweep(loaded.model, texts, {
      runDir: path.join(ROOT, 'runs', 'exactness', path.basename(r.model)),
      lengths: r.lengths,
      Ks,
      maxSteps,
      patience,
      quiet: true,
      model: { id: r.model, weightsHash: loaded.weightsHash },
      set: r.set,
      decode: (ids) => loaded.tokenizer.decode(ids),
      log: (l) => console.log(`${path.basename(r.model)}: ${l}`),
    });
    records.push(...grid);
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `${r.model}: ${grid.length} records; so far ${((cpu.user + cpu.system) / 1e6).toFixed(0)} s CPU, ${((performance.now() - t0) / 1000).toFixed(0)} s wall`,
    );
  }
  const rows = table1(records, (m) => shapes.get(m));
  // Records whose vectors reach ≥ 0.99 teacher-forced accuracy and still do not decode exactly by greedy.
  const tfNotGreedy = records.filter(
    (r) => r.exactness && r.exactness.teacherForced >= 0.99 && !r.exactness.greedyExact,
  );
  const table = rows.map((r: Table1Row) => ({
    model: r.model,
    set: r.set,
    K: r.K,
    lengths: r.lengths.join(','),
    'teacher-forced capacity (mean ≥ 0.99)': r.decodingCapacity,
    'greedy exact capacity': r.exactCapacity ?? NaN,
    ...Object.fromEntries(
      PRECISIONS.filter((p) => p !== 'fp32').map((p) => [`exact at ${p}`, r.exactCapacityAt?.[p] ?? NaN]),
    ),
  }));
  const examples = tfNotGreedy.slice(0, 8).map((r) => ({
    model: r.model,
    id: r.id,
    N: r.N,
    K: r.K,
    'teacher-forced': r.exactness!.teacherForced,
    'greedy horizon': r.exactness!.greedyHorizon,
    'min margin': r.exactness!.minMargin,
  }));
  const cpu = process.cpuUsage(cpu0);
  const seconds = { cpu: (cpu.user + cpu.system) / 1e6, wall: (performance.now() - t0) / 1000 };
  const perPrecision = Object.fromEntries(
    PRECISIONS.map((p) => [p, records.filter((r) => r.exactness?.precisions[p].exact).length]),
  );
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(
    path.join(OUT, 'exactness.json'),
    JSON.stringify(
      {
        options: { maxSteps, patience, count, Ks, grids: Object.fromEntries(RUNS.map((r) => [r.model, r.lengths])) },
        records: records.length,
        exactRecordsPerPrecision: perPrecision,
        teacherForcedButNotGreedy: tfNotGreedy.length,
        seconds,
        table,
        examples,
      },
      null,
      2,
    ),
  );
  const md =
    `# Teacher-forced vs exact capacity (npm run exactness; ${maxSteps} steps max, patience ${patience}, ${count} texts)\n\n` +
    'Capacity: largest N of the grid whose mean teacher-forced accuracy is ≥ 0.99 (the paper). Exact capacity: largest N where ' +
    'every text comes back exactly by greedy decoding from its vectors (KV-cached decoder), as optimised (fp32) and after ' +
    'storing them at bf16, fp16, int8 or int4 (per-vector absmax scale).\n\n' +
    tableMarkdown(table, 0) +
    `\n\n${records.length} records; exact per precision: ${PRECISIONS.map((p) => `${p} ${perPrecision[p]}`).join(', ')}.\n\n` +
    `Records with teacher-forced accuracy ≥ 0.99 that greedy decoding does not give back exactly: ${tfNotGreedy.length}` +
    (examples.length ? `, for example:\n\n${tableMarkdown(examples, 3)}\n` : '.\n') +
    `\nRun: ${seconds.cpu.toFixed(0)} s CPU, ${seconds.wall.toFixed(0)} s wall.\n`;
  fs.writeFileSync(path.join(OUT, 'exactness.md'), md);
  console.log('\n' + md);
  const plotlySrc = path
    .relative(OUT, path.join(ROOT, 'node_modules', 'plotly.js-dist', 'plotly.js'))
    .split(path.sep)
    .join('/');
  const fig = exactCapacityBars(rows);
  fs.writeFileSync(path.join(OUT, 'exactness.html'), standaloneHtml(fig, plotlySrc));
  if (!values['no-png'] && findChromium()) {
    const r = await openRenderer();
    try {
      await r.png(path.join(OUT, 'exactness.html'), path.join(OUT, 'exactness.png'));
    } finally {
      await r.close();
    }
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
