// Figure builders, fits, MIME bundles and tables: structure and numbers checked against
// hand computations; the standalone HTML is drawn by headless Chromium when one is installed.
import { colourOf, figureColours } from '../src/plots/figure';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  accuracyVsN,
  capacityVsK,
  ceScatter,
  compareSets,
  findChromium,
  linearFit,
  mimeBundle,
  openRenderer,
  PLOTLY_MIME,
  standaloneHtml,
  tableCsv,
  tableMarkdown,
  theoryVsMeasured,
  tokenHtml,
  trainingCurves,
  type Figure,
  type PointRow,
} from '../src/plots';

function axisTitles(fig: Figure): [string, string] {
  return [fig.layout.xaxis?.title?.text, fig.layout.yaxis?.title?.text];
}

test('linearFit: exact line and a hand-computed noisy case', () => {
  const exact = linearFit([1, 2, 4, 8], [5, 8, 14, 26]);
  assert.ok(
    Math.abs(exact.slope - 3) < 1e-12 && Math.abs(exact.intercept - 2) < 1e-12 && Math.abs(exact.r2 - 1) < 1e-12,
  );
  // xs 1,2,3 ys 1,2,2: sxx = 2, sxy = 1, syy = 2/3 → slope 1/2, intercept 5/3 - 1 = 2/3, R² = 1/(2·2/3) = 3/4
  const f = linearFit([1, 2, 3], [1, 2, 2]);
  assert.ok(Math.abs(f.slope - 0.5) < 1e-12);
  assert.ok(Math.abs(f.intercept - 2 / 3) < 1e-12);
  assert.ok(Math.abs(f.r2 - 0.75) < 1e-12);
  assert.throws(() => linearFit([1], [1]), /at least 2 points/);
  assert.throws(() => linearFit([2, 2], [1, 3]), /all x values are equal/);
});

const rows: PointRow[] = [
  {
    model: 'models/cram-llama-d32',
    N: 8,
    K: 1,
    accuracy: 1,
    text: 'Call me <Ishmael>.',
    ceWithoutBits: 30,
    ceWithBits: 0,
  },
  {
    model: 'models/cram-llama-d32',
    N: 8,
    K: 1,
    accuracy: 0.5,
    text: 'Some years ago',
    ceWithoutBits: 40,
    ceWithBits: 10,
  },
  {
    model: 'models/cram-llama-d32',
    N: 16,
    K: 1,
    accuracy: 0.25,
    text: 'never mind how long',
    ceWithoutBits: 80,
    ceWithBits: 50,
  },
  { model: 'models/cram-llama-d64', N: 8, K: 1, accuracy: 1, text: 'precisely', ceWithoutBits: 20, ceWithBits: 0 },
  {
    model: 'models/cram-llama-d64',
    N: 16,
    K: 1,
    accuracy: 0.75,
    text: 'having little',
    ceWithoutBits: 70,
    ceWithBits: 30,
  },
];

test('accuracyVsN: a mean line per model with the per-text points, titles and hover text', () => {
  const fig = accuracyVsN(rows);
  assert.deepEqual(axisTitles(fig), ['text length N (tokens)', 'best reconstruction accuracy']);
  const lines = fig.data.filter((t) => t.mode === 'lines+markers');
  assert.deepEqual(
    lines.map((t) => t.name),
    ['cram-llama-d32', 'cram-llama-d64'],
  );
  assert.deepEqual(lines[0].x, [8, 16]);
  assert.deepEqual(lines[0].y, [0.75, 0.25]); // (1 + 0.5)/2, 0.25
  const points = fig.data.find((t) => t.mode === 'markers')!;
  assert.equal(points.x.length, 3);
  // hover: the text (HTML-escaped), N, K
  assert.match(points.text![0], /Call me &lt;Ishmael&gt;\./);
  assert.match(points.text![0], /N=8  K=1/);
  assert.match(points.text![1], /CE 40\.0 → 10\.0 bits/);
});

test('ceScatter: the fitted line over texts not fully decoded, and the y = x reference', () => {
  // every not-fully-decoded text loses exactly 30 bits... except d32's fit points (40→10, 80→50): slope 1, intercept -30
  const fig = ceScatter(rows);
  assert.deepEqual(axisTitles(fig), [
    'CE of the text without mem (bits, total)',
    'CE of the text with mem (bits, total)',
  ]);
  const fit = fig.data.find((t) => String(t.name).startsWith('cram-llama-d32 fit'))!;
  assert.match(String(fit.name), /y = 1\.00x − 30/);
  assert.deepEqual(fit.x, [40, 80]);
  assert.deepEqual(
    fit.y.map((y) => Math.round(Number(y) * 1e9) / 1e9),
    [10, 50],
  );
  assert.ok(fig.data.some((t) => t.name === 'no compression (y = x)'));
  assert.throws(() => ceScatter([{ model: 'm', N: 8, K: 1, accuracy: 1 }]), /no row has ceWithoutBits/);
});

test('capacityVsK: mean capacity per K and the least-squares slope', () => {
  const cap = [1, 2, 4, 8].flatMap((K) => [
    { model: 'm', K, capacity: 10 * K + 3 - 1 },
    { model: 'm', K, capacity: 10 * K + 3 + 1 },
  ]);
  const fig = capacityVsK(cap);
  assert.deepEqual(axisTitles(fig), ['number of [mem] vectors K', 'decoded tokens (capacity)']);
  assert.deepEqual(fig.data[0].y, [13, 23, 43, 83]);
  assert.deepEqual(
    (fig.data[0] as any).error_y.array.map((s: number) => Math.round(s * 1e9) / 1e9),
    [Math.SQRT2, Math.SQRT2, Math.SQRT2, Math.SQRT2].map((s) => Math.round(s * 1e9) / 1e9),
  );
  assert.match(String(fig.data[1].name), /10\.0 tokens\/vector \(R² 1\.000\)/);
});

test('theoryVsMeasured, compareSets, trainingCurves: traces with data and titled axes', () => {
  const t = theoryVsMeasured([{ model: 'a', theoretical: 160, measured: 40 }]);
  assert.equal(t.layout.yaxis.type, 'log');
  assert.equal(
    theoryVsMeasured([{ model: 'a', theoretical: 160, measured: 0 }]).layout.yaxis.type,
    undefined,
    'a zero cannot go on a log axis',
  );
  assert.match(t.data[1].text![0], /utilisation 25\.0%/);
  const s = compareSets([
    { model: 'a', set: 'natural', tokens: 40, infoGainBits: 100 },
    { model: 'a', set: 'random', tokens: 12, infoGainBits: 95 },
  ]);
  assert.equal(s.data.length, 4);
  assert.deepEqual(s.data[2].y, [12]);
  assert.equal(s.layout.yaxis2.title.text, 'information gain (bits)');
  const c = trainingCurves([
    { step: 0, loss: 3, accuracy: 0.1 },
    { step: 10, loss: 1, accuracy: 0.9 },
  ]);
  assert.deepEqual(axisTitles(c), ['step', 'loss (nats/token)']);
  assert.equal(c.data[1].yaxis, 'y2');
  assert.throws(() => accuracyVsN([]), /accuracyVsN: no rows to plot/);
});

test('mimeBundle: Plotly JSON first, HTML that draws the same figure, plain text', () => {
  const fig = accuracyVsN(rows);
  const b = mimeBundle(fig, 'wait');
  assert.deepEqual(Object.keys(b), [PLOTLY_MIME, 'text/html', 'text/plain']);
  const json = b[PLOTLY_MIME] as any;
  assert.deepEqual(json.data, fig.data);
  assert.equal(json.layout.xaxis.title.text, 'text length N (tokens)');
  const html = b['text/html'] as string;
  assert.match(html, /Plotly\.newPlot\(/);
  const id = /<div id="([^"]+)"/.exec(html)![1];
  assert.ok(html.includes(JSON.stringify(id)), 'the script draws into its own div');
  assert.ok(!/<script type="text\/javascript">if\(!window\.Plotly\)/.test(html), "'wait' does not inline plotly.js");
  assert.ok(!html.includes('<Ishmael>'), 'text in the figure JSON cannot close the script tag');
  const inline = mimeBundle(fig, 'inline')['text/html'] as string;
  assert.ok(inline.length > 1e6 && inline.includes('if(!window.Plotly)'), 'inline carries plotly.js');
  assert.match(String(b['text/plain']), /Plotly figure: Single-vector/);
  assert.throws(() => mimeBundle({} as Figure), /not a figure/);
});

test('tokenHtml colours tokens and escapes them; tables via arquero', () => {
  const html = tokenHtml(['<s>', ' Call', ' me'], [true, true, false], ['', '', ' you']);
  assert.equal((html.match(/#c8f0c8/g) ?? []).length, 2);
  assert.equal((html.match(/#f7c6c6/g) ?? []).length, 1);
  assert.ok(html.includes('&lt;s&gt;') && !html.includes('<s>'));
  assert.match(html, /got &quot; you&quot;/);
  assert.match(html, /2\/3 tokens reproduced/);
  assert.throws(() => tokenHtml(['a'], []), /1 tokens but 0 flags/);
  const md = tableMarkdown(
    [
      { model: 'a', capacity: 12.3456 },
      { model: 'b', capacity: 7 },
    ],
    2,
  );
  assert.match(md, /\|model\|capacity\|/);
  assert.match(md, /\|a\|12\.35\|/);
  assert.equal(tableCsv([{ a: 1, b: 'x' }]).trim(), 'a,b\n1,x');
});

test('standalone HTML draws in headless Chromium', { timeout: 120_000 }, async (t) => {
  if (!findChromium()) return t.skip('no Chromium installed (Debian package chromium)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-plots-'));
  const fig = accuracyVsN(rows);
  fs.writeFileSync(path.join(dir, 'fig.html'), standaloneHtml(fig));
  const r = await openRenderer();
  try {
    const { traces } = await r.png(path.join(dir, 'fig.html'), path.join(dir, 'fig.png'));
    assert.ok(traces >= fig.data.length, `Plotly drew ${traces} traces for ${fig.data.length}`);
    const png = fs.readFileSync(path.join(dir, 'fig.png'));
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
    assert.equal(png.readUInt32BE(16), 760); // IHDR width = layout width
    // Notebook outputs: the first inlines plotly.js (hidden from a require.js-style AMD `define`,
    // as in classic Jupyter), the second waits for it. Both must draw.
    const page =
      '<html><head><script>window.define=function(){window.amdUsed=true};window.define.amd={};</script></head><body>' +
      (mimeBundle(fig, 'inline')['text/html'] as string) +
      (mimeBundle(
        capacityVsK([
          { model: 'm', K: 1, capacity: 3 },
          { model: 'm', K: 2, capacity: 7 },
        ]),
        'wait',
      )['text/html'] as string) +
      '<div id="plot" style="width:10px;height:10px"></div><script>(function w(){document.querySelectorAll(".js-plotly-plot .main-svg").length>0&&document.querySelectorAll(".js-plotly-plot").length>=2&&!window.amdUsed?document.body.setAttribute("data-ready","1"):setTimeout(w,100)})()</script></body></html>';
    fs.writeFileSync(path.join(dir, 'nb.html'), page);
    await r.png(path.join(dir, 'nb.html'), path.join(dir, 'nb.png')); // times out unless both figures drew
  } finally {
    await r.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('figureColours: two models in one figure never share a colour, even after the global cycle wraps', () => {
  for (let i = 0; i < 10; i++) colourOf(`filler-model-${i}`);
  const c = figureColours(['wrap-a', 'wrap-b', 'wrap-c']);
  assert.equal(new Set(c.values()).size, 3);
  assert.equal(c.get('wrap-a'), colourOf('wrap-a'), 'the first keeps its global colour');
});
