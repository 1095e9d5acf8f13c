// npm run exactness [-- --max-steps 600 --patience 150 --count 16 --margin M --models a,b --no-png] : teacher-forced vs exact
// greedy capacity, at fp32 and after storage at bf16/fp16/int8/int4, for stories260K (its 16 first
// shared samples) and the embedded suite (books), K = 1, 2, 4, on a small N grid per model.
// One capacity sweep per model in runs/exactness/<model> (resumable); writes figures/exactness.{md,json,html,png}.
// --margin M: cram until every position has margin ≥ M (runs/exactness-margin<M>/, figures/exactness-margin<M>.*).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadTexts } from '../src/datasets/index';
import { loadModel } from '../src/io/checkpoint';
import { table1, type Table1Row } from '../src/metrics/summary';
import { groupBy, mean } from '../src/math';
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
    margin: { type: 'string' },
    models: { type: 'string' },
    'no-png': { type: 'boolean' },
  },
});
const margin = Number(values.margin ?? 0);
const only = values.models?.split(',');
const NAME = margin ? `exactness-margin${margin}` : 'exactness';
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
  for (const r of RUNS.filter((x) => !only || only.includes(path.basename(x.model)))) {
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
      runDir: path.join(ROOT, 'runs', NAME, path.basename(r.model)),
      lengths: r.lengths,
      Ks,
      maxSteps,
      patience,
      margin,
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
  const cell = (r: Table1Row) => records.filter((x) => x.model === r.model && x.set === r.set && x.K === r.K);
  const table = rows.map((r: Table1Row) => ({
    model: r.model,
    set: r.set,
    K: r.K,
    lengths: r.lengths.join(','),
    'stopped decoded': cell(r).filter((x) => x.status === 'decoded').length + '/' + cell(r).length,
    'mean steps': cell(r).reduce((a, x) => a + x.steps, 0) / cell(r).length,
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
  // Per grid cell: how many texts come back exactly at each precision, and how close the misses came.
  const cells = [...groupBy(records, (r) => `${r.model}|${r.K}|${r.N}`).values()].map((rs) => {
    const share = (f: (r: CramRecord) => boolean) => `${rs.filter(f).length}/${rs.length}`;
    const margins = rs.map((r) => r.exactness!.minMargin ?? -Infinity).sort((a, b) => a - b);
    return {
      model: rs[0].model,
      K: rs[0].K,
      N: rs[0].N,
      'mean teacher-forced': mean(rs.map((r) => r.exactness!.teacherForced)),
      'median min margin': margins[Math.floor(margins.length / 2)],
      ...Object.fromEntries(PRECISIONS.map((p) => [`exact ${p}`, share((r) => r.exactness!.precisions[p].exact)])),
    };
  });
  const bitsRows = [...groupBy(records, (r) => `${r.model}|${r.K}`).values()].flatMap((rs) => {
    const ok = rs.filter((r) => r.bits && r.bits.vectorBits !== null);
    if (!ok.length) return [];
    const m = (f: (b: NonNullable<CramRecord['bits']>) => number) => mean(ok.map((r) => f(r.bits!)));
    return [
      {
        model: rs[0].model,
        K: rs[0].K,
        'texts exact': ok.length,
        'mean N': mean(ok.map((r) => r.N)),
        'vector bits (fewest exact)': m((b) => b.vectorBits!),
        'UTF-8': m((b) => b.utf8),
        gzip: m((b) => b.gzip),
        brotli: m((b) => b.brotli),
        xz: m((b) => b.xz),
        'arithmetic code': m((b) => b.arith),
        'token ratio': m((b) => b.tokenRatio),
        'bit ratio (UTF-8 / vector)': m((b) => b.bitRatio!),
      },
    ];
  });
  const near = records.filter((r) => r.exactness && r.exactness.teacherForced >= 0.9 && !r.exactness.greedyExact);
  const cpu = process.cpuUsage(cpu0);
  const seconds = { cpu: (cpu.user + cpu.system) / 1e6, wall: (performance.now() - t0) / 1000 };
  const perPrecision = Object.fromEntries(
    PRECISIONS.map((p) => [p, records.filter((r) => r.exactness?.precisions[p].exact).length]),
  );
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(
    path.join(OUT, `${NAME}.json`),
    JSON.stringify(
      {
        options: {
          maxSteps,
          patience,
          margin,
          count,
          Ks,
          grids: Object.fromEntries(RUNS.map((r) => [r.model, r.lengths])),
        },
        records: records.length,
        exactRecordsPerPrecision: perPrecision,
        teacherForcedButNotGreedy: tfNotGreedy.length,
        seconds,
        table,
        examples,
        cells,
        bits: bitsRows,
      },
      null,
      2,
    ),
  );
  const md =
    `# Teacher-forced vs exact capacity (npm run exactness; ${maxSteps} steps max, patience ${patience}${margin ? `, margin ${margin}` : ''}, ${count} texts)\n\n` +
    'Capacity: largest N of the grid whose mean teacher-forced accuracy is ≥ 0.99 (the paper). Exact capacity: largest N where ' +
    'every text comes back exactly by greedy decoding from its vectors (KV-cached decoder), as optimised (fp32) and after ' +
    'storing them at bf16, fp16, int8 or int4 (per-vector absmax scale).\n\n' +
    tableMarkdown(table, 0) +
    `\n\n${records.length} records; exact per precision: ${PRECISIONS.map((p) => `${p} ${perPrecision[p]}`).join(', ')}.\n\n` +
    `Records with teacher-forced accuracy ≥ 0.99 that greedy decoding does not give back exactly: ${tfNotGreedy.length}` +
    (examples.length ? `, for example:\n\n${tableMarkdown(examples, 3)}\n` : '.\n') +
    `Teacher-forced accuracy ≥ 0.9 but not exact by greedy: ${near.length} records, greedy horizon ${near.map((r) => `${r.exactness!.greedyHorizon}/${r.N}`).join(', ') || '-'}.\n\n` +
    `## Per grid cell: texts exact at each precision\n\n${tableMarkdown(cells, 3)}\n` +
    `## Bits of the texts that decode exactly (means)\n\nVector bits: K·d·bits at the fewest-bit precision that still decodes exactly ` +
    `(int8/int4 add a float32 scale per vector). The arithmetic code is the model's own, without vectors (ids[0] given).\n\n${tableMarkdown(bitsRows, 2)}\n` +
    `\nRun: ${seconds.cpu.toFixed(0)} s CPU, ${seconds.wall.toFixed(0)} s wall.\n`;
  fs.writeFileSync(path.join(OUT, `${NAME}.md`), md);
  console.log('\n' + md);
  const plotlySrc = path
    .relative(OUT, path.join(ROOT, 'node_modules', 'plotly.js-dist', 'plotly.js'))
    .split(path.sep)
    .join('/');
  const fig = exactCapacityBars(rows);
  fs.writeFileSync(path.join(OUT, `${NAME}.html`), standaloneHtml(fig, plotlySrc));
  if (!values['no-png'] && findChromium()) {
    const r = await openRenderer();
    try {
      await r.png(path.join(OUT, `${NAME}.html`), path.join(OUT, `${NAME}.png`));
    } finally {
      await r.close();
    }
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
