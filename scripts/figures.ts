// npm run figures [-- --budget small] : regenerate figures/ from the workbook's run folders
// (runs/workbook/<budget>/{grid,walk}/results.jsonl, written by the notebooks):
// each figure as standalone HTML and PNG (headless Chromium), the tables as CSV and Markdown,
// and figures/README.md with the key numbers next to the paper's.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  accuracyVsN,
  figureColours,
  layout,
  shortName,
  capacityVsK,
  ceScatter,
  compareSets,
  findChromium,
  linearFit,
  openRenderer,
  standaloneHtml,
  tableCsv,
  tableMarkdown,
  theoryVsMeasured,
  type Figure,
  type Trace,
} from '../src/plots';
import { accuracyTable, pointRows, setComparison, textCapacities } from '../src/workbook/experiments';
import { table1 } from '../src/metrics/summary';
import { mean } from '../src/math';
import { currentRecords, readRunRecords } from '../src/runs/folder';
import type { CramRecord } from '../src/runs/record';
import { weightsHashOf } from '../src/io/checkpoint';
import { modelPath, repoRoot, sharedModel } from '../src/workbook/paths';
import { REGISTRY, theoreticalCapacity } from '../src/models/registry';

const { values } = parseArgs({
  options: { budget: { type: 'string' }, out: { type: 'string' }, 'no-png': { type: 'boolean' } },
});
const BUDGET = values.budget ?? process.env.CRAMLAB_BUDGET ?? 'small';
const ROOT = repoRoot();
const RUNS = path.join(ROOT, 'runs', 'workbook', BUDGET);
const OUT = path.resolve(values.out ?? path.join(ROOT, 'figures'));

type Row = Record<string, unknown>;
const figures: { name: string; fig: Figure; caption: string }[] = [];
/** Models with records of their current weights (what the figures show). */
const shownModels: string[] = [];
const tables: { name: string; rows: Row[]; digits: number }[] = [];

function modelShape(name: string): { d: number; V: number } {
  const dir = name === 'stories260K' ? sharedModel('stories260K') : modelPath(name);
  const cfg =
    dir && fs.existsSync(path.join(dir, 'config.json'))
      ? JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))
      : {};
  return { d: cfg.word_embed_proj_dim ?? cfg.hidden_size ?? cfg.d_model ?? NaN, V: cfg.vocab_size ?? NaN };
}

const byModelOrder = (a: string, b: string) => {
  const w = (n: string) =>
    (n.includes('mamba') ? 1e6 : 0) + Number(/d(\d+)/.exec(n)?.[1] ?? (n === 'stories260K' ? 1e5 : 0));
  return w(a) - w(b);
};

function build(): void {
  // Records of a model's current weights only (a retrained model leaves its predecessor's behind);
  // a suite folder that is gone (a model dropped from models/) keeps none.
  const fingerprint = (name: string) => {
    const dir = name === 'stories260K' ? sharedModel('stories260K') : modelPath(name);
    if (dir && fs.existsSync(path.join(dir, 'config.json'))) return weightsHashOf(dir);
    return name.startsWith('models/') ? 'model-folder-removed' : undefined;
  };
  const grid = currentRecords(readRunRecords(path.join(RUNS, 'grid')), fingerprint);
  const walk = currentRecords(readRunRecords(path.join(RUNS, 'walk')), fingerprint);
  shownModels.push(...new Set([...grid, ...walk].map((r) => r.model)));
  if (!grid.length && !walk.length)
    throw new Error(
      `no run records under ${RUNS}: run the notebooks first (CRAMLAB_BUDGET=${BUDGET} node --import tsx scripts/run-notebooks.ts)`,
    );
  const llamaLike = (r: CramRecord) => !r.model.includes('mamba');

  const natural = grid.filter((r) => r.set === 'natural' && r.K === 1);
  if (natural.length) {
    const rows = pointRows(natural.filter(llamaLike)).sort((a, b) => byModelOrder(a.model, b.model));
    figures.push({
      name: 'accuracy-vs-n',
      fig: accuracyVsN(rows, 'One [mem] vector: accuracy vs text length (paper Fig. 1)'),
      caption:
        'Mean best reconstruction accuracy against text length N, one vector, natural text (Moby-Dick train chapters; stories260K: its own stories). Faint points: single texts.',
    });
    figures.push({
      name: 'ce-scatter',
      fig: ceScatter(rows, 'CE with the vector vs without, per text (paper Fig. 3)'),
      caption:
        'Cross-entropy of each (text, N) with the vector against without it, bits. Circles: decoded exactly; crosses: not. Dashed: least-squares line over the texts not fully decoded.',
    });
    tables.push({ name: 'accuracy-by-n', rows: accuracyTable(natural), digits: 3 });
  }
  const shapeOf = (m: string) => {
    const { d, V } = modelShape(m);
    return Number.isFinite(d) && Number.isFinite(V) ? { memDim: d, vocabSize: V } : undefined;
  };
  const t1 = table1(
    grid.filter((r) => r.K === 1),
    shapeOf,
  ).sort((a, b) => byModelOrder(a.model, b.model) || a.set.localeCompare(b.set));
  if (t1.length)
    tables.push({
      name: 'table1',
      rows: t1.map((r) => ({
        model: r.model,
        set: r.set,
        decoding_capacity: r.decodingCapacity,
        exact_capacity: r.exactCapacity ?? NaN,
        token_gain: r.tokenGain ?? NaN,
        info_gain_bits: r.infoGainBits ?? NaN,
        full_texts: r.saturatedTexts,
      })),
      digits: 1,
    });

  const withRandom = new Set(grid.filter((r) => r.set === 'random').map((r) => r.model));
  if (withRandom.size) {
    const rows = setComparison(
      grid.filter((r) => r.K === 1 && withRandom.has(r.model) && (r.set === 'natural' || r.set === 'random')),
    ).sort((a, b) => byModelOrder(a.model, b.model) || a.set.localeCompare(b.set));
    figures.push({
      name: 'natural-vs-random',
      fig: compareSets(rows, 'Natural vs random text: tokens decoded and information gain'),
      caption:
        'Left: longest grid length decoded exactly, mean over texts. Right: information gain in bits, mean over the texts the vector could not fully hold (accuracy ≤ 0.99).',
    });
    tables.push({
      name: 'natural-vs-random',
      rows: rows.map((r) => ({
        model: r.model,
        set: r.set,
        mean_decoded_tokens: r.tokens,
        info_gain_bits: r.infoGainBits,
      })),
      digits: 1,
    });
  }
  const unseenModels = new Set(grid.filter((r) => r.set === 'unseen').map((r) => r.model));
  if (unseenModels.size) {
    const rs = grid.filter(
      (r) => unseenModels.has(r.model) && (r.set === 'natural' || r.set === 'unseen') && r.K === 1,
    );
    const rows = pointRows(rs).map((r, i) => ({
      ...r,
      model: `${r.model} · ${rs[i].set === 'natural' ? 'seen' : 'unseen'}`,
    }));
    figures.push({
      name: 'seen-vs-unseen',
      fig: accuracyVsN(rows, 'Seen (train chapters) vs unseen (held-out chapters) text'),
      caption: 'Accuracy against length on text the suite models trained on vs held-out chapters.',
    });
  }
  // Each Mamba with the Transformer closest to it in size (weights file size: all float32 here).
  const natModels = [...new Set(grid.filter((r) => r.K === 1 && r.set === 'natural').map((r) => r.model))];
  const mambas = natModels.filter((m) => m.includes('mamba'));
  if (mambas.length) {
    const size = (m: string) => {
      const f = path.join(modelPath(m), 'model.safetensors');
      return fs.existsSync(f) ? fs.statSync(f).size : NaN;
    };
    const others = natModels.filter((m) => !m.includes('mamba') && Number.isFinite(size(m)));
    const pair = new Set([
      ...mambas,
      ...mambas
        .map((mb) => [...others].sort((a, b) => Math.abs(size(a) - size(mb)) - Math.abs(size(b) - size(mb)))[0])
        .filter(Boolean),
    ]);
    const rows = pointRows(grid.filter((r) => r.K === 1 && r.set === 'natural' && pair.has(r.model)));
    figures.push({
      name: 'mamba-vs-llama',
      fig: accuracyVsN(rows, 'Mamba vs a Transformer of similar size'),
      caption: `${[...pair].join(' vs ')}: same tokenizer, data and tokens seen, same texts.`,
    });
  }

  const caps = textCapacities(walk);
  const perK = new Map<string, number[]>();
  for (const c of caps) perK.set(`${c.model}|${c.K}`, [...(perK.get(`${c.model}|${c.K}`) ?? []), c.capacity]);
  const kModels = [...new Set(caps.map((c) => c.model))]
    .filter((m) => new Set(caps.filter((c) => c.model === m).map((c) => c.K)).size >= 2)
    .sort(byModelOrder);
  if (kModels.length) {
    figures.push({
      name: 'capacity-vs-k',
      fig: capacityVsK(
        caps.filter((c) => kModels.includes(c.model)),
        'Tokens decoded vs number of [mem] vectors (paper Fig. 4)',
      ),
      caption:
        'Capacity (longest prefix decoded exactly, capacity walk with warm starts) against K, mean ± std over texts, with least-squares lines.',
    });
    tables.push({
      name: 'capacity-vs-k',
      rows: kModels.flatMap((m) => {
        const ks = [...new Set(caps.filter((c) => c.model === m).map((c) => c.K))].sort((a, b) => a - b);
        const f = linearFit(
          ks,
          ks.map((k) => mean(perK.get(`${m}|${k}`)!)),
        );
        return ks.map((k) => ({
          model: m,
          K: k,
          mean_capacity: mean(perK.get(`${m}|${k}`)!),
          texts: perK.get(`${m}|${k}`)!.length,
          slope_tokens_per_vector: f.slope,
          r2: f.r2,
        }));
      }),
      digits: 2,
    });
  }
  // Models whose shape is unknown here (a Hub id not in the cache) have no theoretical bound to show.
  const shapes = new Map(
    [...new Set(caps.filter((c) => c.K === 1).map((c) => c.model))].map((m) => [m, modelShape(m)] as const),
  );
  const k1 = [...shapes]
    .filter(([, sh]) => Number.isFinite(sh.d) && Number.isFinite(sh.V))
    .map(([m]) => m)
    .sort(byModelOrder);
  if (k1.length) {
    const rows = k1.map((m) => {
      const { d, V } = shapes.get(m)!;
      const measured = mean(perK.get(`${m}|1`)!);
      const theoretical = theoreticalCapacity(d, V);
      return { model: m, d, V, theoretical, measured, utilisation: measured / theoretical };
    });
    figures.push({
      name: 'theory-vs-measured',
      fig: theoryVsMeasured(rows, 'Theoretical d·16/log₂V vs measured capacity (paper Fig. 5)'),
      caption:
        'Upper bound d·16/log₂V tokens per vector against the measured single-vector capacity (mean of capacity walks).',
    });
    tables.push({ name: 'theory-vs-measured', rows, digits: 3 });
  }
}

/** Methods of figures/compression.json's summary (scripts/compression-table.ts), in the figure's order. */
const COMPRESSION_METHODS: { key: (K: number) => string; label: (K: number) => string }[] = [
  { key: () => 'raw bpc', label: () => 'raw UTF-8' },
  { key: () => 'gzip bpc', label: () => 'gzip -9' },
  { key: () => 'brotli bpc', label: () => 'brotli q11' },
  { key: () => 'xz bpc', label: () => 'xz -9' },
  { key: () => 'CE bpc', label: () => 'model CE' },
  { key: () => 'arith bpc', label: () => 'arith. code' },
  { key: (K) => `${K} mem fp16 bpc`, label: (K) => `${K} mem fp16` },
  { key: (K) => `${K} mem fp32 bpc`, label: (K) => `${K} mem fp32` },
];

/**
 * Bits per character by method per model (and text set), from compression.json: the table
 * scripts/compression-table.ts writes (in the output folder, else figures/). No runs needed; skipped without it.
 */
function compressionFigure(): void {
  const file = [path.join(OUT, 'compression.json'), path.join(ROOT, 'figures', 'compression.json')].find((f) =>
    fs.existsSync(f),
  );
  if (!file) return;
  const { summary, K, count, maxTokens } = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    summary: Row[];
    K: number;
    count: number;
    maxTokens: number;
  };
  if (!Array.isArray(summary) || !summary.length) return;
  const series = summary.map((r) => `${shortName(String(r.model))} · ${r.set}`);
  const colours = figureColours(series);
  const x = COMPRESSION_METHODS.map((m) => m.label(K));
  const data: Trace[] = summary.map((r, i) => {
    const y = COMPRESSION_METHODS.map((m) => (typeof r[m.key(K)] === 'number' ? (r[m.key(K)] as number) : null));
    return {
      type: 'bar',
      name: series[i],
      x,
      y,
      marker: { color: colours.get(series[i]) },
      text: y.map(
        (v, j) =>
          `${series[i]}<br>${x[j]}: ${v === null ? '—' : v.toFixed(2)} bits/char<br>${r.passages} passages, ${Number(r.tokens).toFixed(0)} tokens, ${Number(r.chars).toFixed(0)} chars (means)`,
      ),
      textposition: 'none',
      hovertemplate: '%{text}<extra></extra>',
    };
  });
  figures.push({
    name: 'compression',
    fig: {
      data,
      layout: layout(
        'Bits per character by method: classic compressors, the model, [mem] vectors',
        'method',
        'bits per character (mean over passages)',
        { barmode: 'group', width: 900, xaxis: { tickangle: 0 } },
      ),
    },
    caption: `Means over ${count} passages of at most ${maxTokens} tokens per model and set (figures/compression.md, scripts/compression-table.ts). gzip/brotli/xz on the UTF-8 text, headers included; model CE = the cross-entropy without mem, which the arithmetic code under the model (decoded back) attains; the ${K} mem fp16/fp32 bars are the raw size of ${K} vector${K > 1 ? 's' : ''} of width d, not a claim that ${K > 1 ? 'they hold' : 'it holds'} the passage (one vector holds about 5 tokens of cram-llama-d64 and 14–16 of stories260K, see the demo and progressive.md).`,
  });
}

function paperTable(): Row[] {
  return REGISTRY.filter(
    (e) => e.paper && (e.paper.capacityTokens !== null || e.paper.informationGainBits !== null),
  ).map((e) => ({
    model: e.id,
    d: e.memDim,
    theoretical: Math.round(theoreticalCapacity(e.memDim, e.vocabSize)),
    capacity: e.paper!.capacityTokens ?? '',
    token_gain: e.paper!.tokenGain ?? '',
    info_gain_bits: e.paper!.informationGainBits ?? '',
    random_capacity: e.paper!.randomTextCapacityTokens ?? '',
    multi_vector: e.paper!.multiVector
      ? `${e.paper!.multiVector.tokens} tokens / ${e.paper!.multiVector.vectors} vectors`
      : '',
  }));
}

/** figures/README.md: the figures, the key numbers next to the paper's, and notes.md (hand-written, kept). */
function readme(): string {
  const notes = fs.existsSync(path.join(OUT, 'notes.md'))
    ? fs.readFileSync(path.join(OUT, 'notes.md'), 'utf8').trim() + '\n'
    : '';
  const tableMd = (name: string) => {
    const t = tables.find((x) => x.name === name);
    return t ? tableMarkdown(t.rows, t.digits) : '(no runs for this table)\n';
  };
  const models = [...new Set(shownModels)].sort(byModelOrder);
  return `# figures/

Generated by \`npm run figures\` (scripts/figures.ts) from the workbook's run folders
(\`runs/workbook/${BUDGET}/\`, written by the notebooks at \`CRAMLAB_BUDGET=${BUDGET}\`). To regenerate:

\`\`\`
CRAMLAB_BUDGET=${BUDGET} node --import tsx scripts/run-notebooks.ts   # runs the notebooks, resuming from runs/
npm run figures -- --budget ${BUDGET}
\`\`\`

Models: ${models.join(', ')}. Each figure is a standalone HTML page (interactive: hover shows the text,
N, K and bits; it loads plotly.js from this checkout's node_modules, or from the CDN) and a PNG
rendered by headless Chromium. Tables are CSV and Markdown. Information gain and CE are totals over
a text's N-1 predicted tokens, in bits (the authors' notebooks report mean loss × N in nats).

${notes}
## Key numbers

Ours (Table-1 conventions: decoding capacity = largest N of the grid with mean best accuracy ≥ 0.99;
token and information gain = means over texts with best accuracy ≤ 0.99):

${tableMd('table1')}
Capacity against the number of vectors (capacity walks; slope of the least-squares line):

${tableMd('capacity-vs-k')}
Theoretical bound d·16/log₂V against the measured single-vector capacity:

${tableMd('theory-vs-measured')}
The paper's values (from src/models/registry.ts; empty = not recorded there):

${tableMarkdown(paperTable(), 1)}
## Figures

${figures.map((f) => `### ${f.name}\n\n![${f.name}](${f.name}.png)\n\n${f.caption} ([interactive](${f.name}.html))\n`).join('\n')}`;
}

async function main(): Promise<void> {
  build();
  compressionFigure();
  fs.mkdirSync(OUT, { recursive: true });
  // The pages load plotly.js from this checkout's node_modules, else from the CDN: no 5 MB copy per figure.
  const plotlySrc = path
    .relative(OUT, path.join(ROOT, 'node_modules', 'plotly.js-dist', 'plotly.js'))
    .split(path.sep)
    .join('/');
  for (const f of figures) fs.writeFileSync(path.join(OUT, `${f.name}.html`), standaloneHtml(f.fig, plotlySrc));
  for (const t of tables) {
    fs.writeFileSync(path.join(OUT, `${t.name}.csv`), tableCsv(t.rows));
    fs.writeFileSync(path.join(OUT, `${t.name}.md`), tableMarkdown(t.rows, t.digits));
  }
  if (!values['no-png']) {
    if (!findChromium()) throw new Error('no Chromium for the PNGs (apt-get install chromium, or pass --no-png)');
    const r = await openRenderer();
    try {
      for (const f of figures) {
        const { traces } = await r.png(path.join(OUT, `${f.name}.html`), path.join(OUT, `${f.name}.png`));
        console.log(`figures/${f.name}.png  (${traces} traces drawn)`);
      }
    } finally {
      await r.close();
    }
  }
  fs.writeFileSync(path.join(OUT, 'README.md'), readme());
  console.log(
    `${figures.length} figures, ${tables.length} tables in ${path.relative(process.cwd(), OUT) || '.'} (budget ${BUDGET})`,
  );
  for (const t of tables) console.log(`\n${t.name}\n${tableMarkdown(t.rows, t.digits)}`);
}

main().catch((e) => {
  console.error(`figures: ${e.message}`);
  process.exit(1);
});
