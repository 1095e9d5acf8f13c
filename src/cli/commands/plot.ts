// Figures from any run folder (`capacity --out runs/NAME`, the workbook's folders): accuracy vs N,
// CE with vs without the vectors, capacity vs K, and Table 1 with the paper's values beside, each
// figure as standalone HTML (plotly.js inlined: opens offline) and PNG (headless Chromium).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../io/write';
import { table1 } from '../../metrics/summary';
import { lookupModel } from '../../models/registry';
import {
  accuracyVsN,
  capacityVsK,
  ceScatter,
  findChromium,
  openRenderer,
  standaloneHtml,
  tableCsv,
  tableMarkdown,
  type Figure,
} from '../../plots';
import { readRunRecords } from '../../runs/folder';
import { pointRows } from '../../workbook/experiments';
import type { CramRecord } from '../../runs/record';
import { str, UsageError, type Args } from '../args';
import type { Command } from '../main';

/** d and V of a model from its config.json, when the record's model id is a folder here. */
function shapeOf(model: string): { memDim: number; vocabSize: number } | undefined {
  const cfg = path.join(model, 'config.json');
  if (fs.existsSync(cfg)) {
    const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    return { memDim: c.word_embed_proj_dim ?? c.hidden_size ?? c.d_model, vocabSize: c.vocab_size };
  }
  const e = lookupModel(model);
  return e ? { memDim: e.memDim, vocabSize: e.vocabSize } : undefined;
}

/** The workbook's plot rows; the model labelled with K when the run has several. */
function perText(records: CramRecord[]) {
  const several = records.some((o) => o.K !== records[0].K);
  return pointRows(records).map((p) => (several ? { ...p, model: `${p.model} · K=${p.K}` } : p));
}

/** Per (model, K, text): the longest N of the grid it decoded exactly. */
function capacities(records: CramRecord[]) {
  const by = new Map<string, { model: string; K: number; id: string; capacity: number }>();
  for (const r of records) {
    const k = `${r.model}|${r.K}|${r.id}`;
    const cur = by.get(k) ?? { model: r.model, K: r.K, id: r.id, capacity: 0 };
    if (r.bestAccuracy >= 1) cur.capacity = Math.max(cur.capacity, r.N);
    by.set(k, cur);
  }
  return [...by.values()];
}

export const command: Command = {
  name: 'plot',
  summary: 'figures and Table 1 of a run folder as standalone HTML (offline) and PNG',
  usage: 'plot runs/NAME [--out DIR] [--no-png]',
  booleans: ['noPng'],
  async run(args: Args) {
    const dir = args._[0];
    if (!dir) throw new UsageError('give the run folder: plot runs/NAME [--out DIR]');
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`${dir}: no such run folder`);
    const records = readRunRecords(dir);
    if (!records.length) throw new UsageError(`${dir}: no results.jsonl records (run capacity --out ${dir} first)`);
    const out = str(args, 'out', path.join(dir, 'plots'));
    fs.mkdirSync(out, { recursive: true });
    const figures: [string, Figure][] = [
      ['accuracy-vs-n', accuracyVsN(perText(records), 'Reconstruction accuracy vs text length (paper Fig. 1)')],
      ['ce-scatter', ceScatter(perText(records), 'CE with the vectors vs without, per text (paper Fig. 3)')],
      ['capacity-vs-k', capacityVsK(capacities(records), 'Longest length decoded vs number of vectors (paper Fig. 4)')],
    ];
    // Table 1 with the paper's single-vector figures beside ours, where the paper reports the model.
    // '–' where the paper reports nothing (other models, K > 1) or no text was full.
    const rows = table1(records, shapeOf).map((r) => {
      const paper = r.K === 1 ? lookupModel(r.model)?.paper : undefined;
      return {
        model: r.model,
        set: r.set,
        K: r.K,
        decoding_capacity: r.decodingCapacity,
        paper_capacity: paper?.capacityTokens ?? '–',
        theoretical: r.theoreticalCapacity,
        token_gain: r.tokenGain ?? '–',
        paper_token_gain: paper?.tokenGain ?? '–',
        info_gain_bits: r.infoGainBits ?? '–',
        paper_info_gain_bits: paper?.informationGainBits ?? '–',
        full_texts: r.saturatedTexts,
      };
    });
    writeFileAtomic(path.join(out, 'table1.md'), tableMarkdown(rows, 1) + '\n');
    writeFileAtomic(path.join(out, 'table1.csv'), tableCsv(rows));
    for (const [name, fig] of figures) writeFileAtomic(path.join(out, `${name}.html`), standaloneHtml(fig));
    console.log(tableMarkdown(rows, 1));
    const png = !args.noPng && findChromium();
    if (png) {
      const r = await openRenderer();
      try {
        for (const [name] of figures) await r.png(path.join(out, `${name}.html`), path.join(out, `${name}.png`));
      } finally {
        await r.close();
      }
    }
    console.log(
      `\n${records.length} records → ${out}: ${figures.map(([n]) => n).join(', ')} (.html${png ? ' and .png' : ''}), table1.md, table1.csv` +
        (png || args.noPng ? '' : ' (no PNGs: no Chromium found; install Debian chromium or set CRAMLAB_CHROMIUM)'),
    );
  },
};
