// What a committed notebook keeps of an executed one. A figure keeps its Plotly JSON (JupyterLab's
// and VS Code's Plotly renderers draw it) and gains a PNG drawn by headless Chromium (what GitHub,
// classic Notebook and nbconvert show; a committed notebook opens untrusted, so no script would run),
// and loses its text/html, which inlines all of plotly.js (~5 MB). Progress lines keep their last
// state without rates and clocks, paths on this machine become repository-relative, and execution
// timestamps go: a regeneration changes only what the code changed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PLOTLY_MIME, standaloneHtml } from '../src/plots/display';
import type { Renderer } from '../src/plots/render';
import type { Figure } from '../src/plots/figure';

const ROOT = path.resolve(__dirname, '..');
const text = (x: unknown) => (Array.isArray(x) ? x.join('') : String(x ?? ''));
/** nbformat's multiline string: lines, each but the last ending in '\n'. */
const lines = (s: string) => s.split(/(?<=\n)/);

/** Absolute paths of this machine, replaced by what a reader's checkout would show. */
function pathRewrites(): [string, string][] {
  const shared = path.resolve(ROOT, '..', 'shared');
  const pairs: [string, string][] = [
    [path.join(ROOT, 'notebooks') + '/', ''],
    [ROOT + '/', ''],
    [shared, '../shared'],
    [ROOT, '.'],
    [os.tmpdir() + '/', '<tmp>/'],
  ];
  return pairs.flatMap(([a, b]) => {
    const real = fs.existsSync(a) ? fs.realpathSync(a) + (a.endsWith('/') ? '/' : '') : a;
    return real === a ? [[a, b] as [string, string]] : [[a, b] as [string, string], [real, b] as [string, string]];
  });
}

const PROGRESS = /^cram step \d+\/\d+ /;

/** A stream's text as the reader's front end shows it ('\r' redraws), with progress rates and clocks cut. */
export function normaliseStream(s: string, rewrites = pathRewrites()): string {
  const out: string[] = [];
  for (const raw of s.split('\n')) {
    let line = raw.slice(raw.lastIndexOf('\r') + 1);
    if (PROGRESS.test(line)) {
      line = line.replace(/\s+[\d.]+ steps\/s\s+[\d.]+s\s*$/, '');
      // Only the last state of consecutive progress lines (plain-pipe printers write one every 5 s).
      if (out.length && PROGRESS.test(out[out.length - 1])) out.pop();
    }
    out.push(line.replace(/\s+$/, ''));
  }
  return normalisePaths(out.join('\n'), rewrites);
}

export function normalisePaths(s: string, rewrites = pathRewrites()): string {
  for (const [a, b] of rewrites) s = s.split(a).join(b);
  return s;
}

/** Draw a Plotly figure to PNG (base64) with plotly.js from node_modules. */
async function figurePng(fig: Figure, renderer: Renderer, dir: string, i: number): Promise<string> {
  const plotly = require.resolve('plotly.js-dist/plotly.js');
  const html = path.join(dir, `fig${i}.html`);
  const png = path.join(dir, `fig${i}.png`);
  fs.writeFileSync(html, standaloneHtml(fig, 'file://' + plotly));
  const { traces } = await renderer.png(html, png);
  if (!traces) throw new Error(`figure '${fig.layout?.title?.text ?? i}' drew no traces`);
  return fs.readFileSync(png).toString('base64');
}

/** The executed notebook `nb` (nbformat JSON) made fit to commit, in place; `stamp` goes in metadata.cramlab. */
export async function forCommit(nb: any, stamp: object, renderer: Renderer): Promise<any> {
  const rewrites = pathRewrites();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-nbpng-'));
  let figures = 0;
  try {
    for (const cell of nb.cells) {
      if (cell.cell_type !== 'code') continue;
      for (const k of ['cramlab_seconds', 'cramlab_error', 'execution']) delete cell.metadata[k];
      const outputs: any[] = [];
      for (const o of cell.outputs ?? []) {
        if (o.output_type === 'stream') {
          // Successive writes to one stream are one block to a reader: merge, then normalise.
          const prev = outputs[outputs.length - 1];
          if (prev?.output_type === 'stream' && prev.name === o.name) prev.text = text(prev.text) + text(o.text);
          else outputs.push({ ...o, text: text(o.text) });
          continue;
        }
        if (o.data) {
          const data: Record<string, unknown> = {};
          for (const [mime, v] of Object.entries(o.data))
            data[mime] = mime.startsWith('text/') ? lines(normalisePaths(text(v), rewrites)) : v;
          if (data[PLOTLY_MIME]) {
            delete data['text/html'];
            data['image/png'] = await figurePng(data[PLOTLY_MIME] as Figure, renderer, dir, figures++);
          }
          outputs.push({ ...o, data });
        } else outputs.push(o);
      }
      for (const o of outputs) if (o.output_type === 'stream') o.text = lines(normaliseStream(o.text, rewrites));
      cell.outputs = outputs.filter((o) => o.output_type !== 'stream' || text(o.text) !== '');
    }
    nb.metadata.cramlab = stamp;
    return nb;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
