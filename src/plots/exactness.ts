// Figures of what a vector really holds (metrics/exactness.ts, metrics/bits.ts): capacity by the
// paper's teacher-forced rule vs exact greedy decoding at each storage precision; margin vs
// precision; bits per vector vs classic compressors; one text token by token.
import { escapeHtml } from './charts';
import { layout, shortName, type Figure, type Trace } from './figure';
import type { Table1Row } from '../metrics/summary';
import type { TextMetrics } from '../metrics/text';
import { PRECISIONS } from '../precision';

const BAR_COLOURS = ['#7f7f7f', '#1f77b4', '#2ca02c', '#ff7f0e', '#d62728', '#9467bd'];

/** Grouped bars per (model, set, K): ≥ 0.99 teacher-forced capacity, then exact capacity at each precision. */
export function exactCapacityBars(rows: Table1Row[], title = 'Teacher-forced vs exact capacity'): Figure {
  const sets = new Set(rows.map((r) => `${r.model}|${r.set}`)).size > new Set(rows.map((r) => r.model)).size;
  const label = (r: Table1Row) => `${shortName(r.model)}${sets ? ` ${r.set}` : ''} K=${r.K}`;
  const series: [string, (r: Table1Row) => number | null][] = [
    ['teacher-forced ≥ 0.99', (r) => r.decodingCapacity],
    ...PRECISIONS.map((p): [string, (r: Table1Row) => number | null] => [
      `exact greedy, ${p}`,
      (r) => r.exactCapacityAt?.[p] ?? null,
    ]),
  ];
  const data: Trace[] = series.map(([name, f], i) => ({
    type: 'bar',
    name,
    x: rows.map(label),
    y: rows.map(f),
    marker: { color: BAR_COLOURS[i] },
    hovertemplate: `%{x}<br>${name}: %{y} tokens<extra></extra>`,
  }));
  return {
    data,
    layout: layout(title, '', 'largest N of the grid (tokens)', {
      barmode: 'group',
      width: 960,
      height: 520,
      margin: { l: 70, r: 30, t: 60, b: 130 },
      xaxis: { tickangle: -35 },
    }),
  };
}

/** One point per record and precision: the fp32 minimum margin against whether the rounded vector still decodes. */
export function marginVsPrecision(records: TextMetrics[], title = 'Margin decides what survives rounding'): Figure {
  const rs = records.filter((r) => r.exactness?.greedyExact);
  const data: Trace[] = PRECISIONS.filter((p) => p !== 'fp32').map((p, i) => {
    const x = rs.map((r) => r.exactness!.minMargin);
    return {
      type: 'scatter',
      mode: 'markers',
      name: p,
      x,
      y: rs.map((r) => (r.exactness!.precisions[p].exact ? 1 : 0) + (i - 1.5) * 0.04),
      text: rs.map((r) => `${r.id ?? ''} N=${r.N} K=${r.K}<br>horizon at ${p}: ${r.exactness!.precisions[p].horizon}`),
      hovertemplate: '%{text}<br>min margin %{x:.3f}<extra></extra>',
      marker: { color: BAR_COLOURS[i + 2], size: 7, opacity: 0.7 },
    };
  });
  return {
    data,
    layout: layout(
      title,
      'minimum logit margin at fp32 (texts decoded exactly at fp32)',
      'still exact after rounding',
      {
        yaxis: { tickvals: [0, 1], ticktext: ['no', 'yes'], range: [-0.3, 1.3] },
      },
    ),
  };
}

/** Bits per text: the vectors at the fewest-bit precision that decodes exactly, against what classic coders need. */
export function bitsVsCompressors(records: TextMetrics[], title = 'Bits per vector vs classic compressors'): Figure {
  const rs = records.filter((r) => r.bits && r.bits.vectorBits !== null).sort((a, b) => a.N - b.N);
  const x = rs.map((r) => r.bits!.utf8);
  const text = rs.map((r) => `${r.id ?? ''} N=${r.N} K=${r.K}`);
  const series: [string, (r: TextMetrics) => number][] = [
    ['vectors (fewest exact bits)', (r) => r.bits!.vectorBits!],
    ['gzip', (r) => r.bits!.gzip],
    ['brotli', (r) => r.bits!.brotli],
    ['xz', (r) => r.bits!.xz],
    ["model's arithmetic code", (r) => r.bits!.arith],
  ];
  const data: Trace[] = series.map(([name, f], i) => ({
    type: 'scatter',
    mode: 'markers',
    name,
    x,
    y: rs.map(f),
    text,
    hovertemplate: `%{text}<br>UTF-8 %{x} bits<br>${name} %{y} bits<extra></extra>`,
    marker: { color: BAR_COLOURS[i + 1], size: 7, symbol: i === 0 ? 'diamond' : 'circle' },
  }));
  const hi = Math.max(1, ...x);
  data.push({
    type: 'scatter',
    mode: 'lines',
    name: 'UTF-8 (no compression)',
    x: [0, hi],
    y: [0, hi],
    line: { color: '#bbb', dash: 'dot' },
    hoverinfo: 'skip',
  });
  return {
    data,
    layout: layout(title, "the text's UTF-8 bits", 'bits', { yaxis: { type: 'log' } }),
  };
}

export interface TokenView {
  /** Token strings of the text, first token included. */
  tokens: string[];
  /** Bits the model alone needs for each token (NaN for the first, which is given). */
  surprisal: number[];
  /** Cumulative cram step at which each token was first held (NaN: never; 0: the first token). */
  heldAtStep: number[];
}

const heat = (t: number) => `hsl(${Math.round(120 - 120 * Math.max(0, Math.min(1, t)))}, 70%, 82%)`;

/** HTML of a text two ways: tokens coloured by surprisal, and by the step at which each was first held. */
export function tokenViewHtml(v: TokenView, title = ''): string {
  const maxBits = Math.max(1, ...v.surprisal.filter(Number.isFinite));
  const maxStep = Math.max(1, ...v.heldAtStep.filter(Number.isFinite));
  const row = (colour: (i: number) => string, tip: (i: number) => string) =>
    v.tokens
      .map(
        (t, i) =>
          `<span title="${escapeHtml(tip(i))}" style="background:${colour(i)};border-radius:2px;padding:0 1px;white-space:pre-wrap">${escapeHtml(t).replace(/\n/g, '↵<br>')}</span>`,
      )
      .join('');
  const bits = row(
    (i) => (Number.isFinite(v.surprisal[i]) ? heat(v.surprisal[i] / maxBits) : '#eee'),
    (i) => `token ${i}: ${Number.isFinite(v.surprisal[i]) ? v.surprisal[i].toFixed(2) + ' bits' : 'given'}`,
  );
  const held = row(
    (i) => (Number.isFinite(v.heldAtStep[i]) ? heat(v.heldAtStep[i] / maxStep) : '#ccc'),
    (i) => `token ${i}: ${Number.isFinite(v.heldAtStep[i]) ? `held from step ${v.heldAtStep[i]}` : 'never held'}`,
  );
  const box = 'font-family:monospace;line-height:1.7;margin:4px 0';
  return (
    (title ? `<div><b>${escapeHtml(title)}</b></div>` : '') +
    `<div style="font-size:small;color:#555">surprisal without the vector (green: predictable, red: up to ${maxBits.toFixed(1)} bits)</div><div style="${box}">${bits}</div>` +
    `<div style="font-size:small;color:#555">step at which each token was first held (green: early, red: step ${maxStep}; grey: never)</div><div style="${box}">${held}</div>`
  );
}

/**
 * Plotly view of the same with a slider over the horizon: bars of each token's surprisal, green where
 * the vector holds the token at the slider's cram step (the slider restyles the colours: no frames,
 * so it works wherever the figure's JSON is drawn).
 */
export function horizonSlider(
  v: TokenView,
  stages: { step: number; held: number }[],
  title = 'The horizon grows',
): Figure {
  const x = v.tokens.map((_, i) => i);
  const colours = (held: number) => x.map((i) => (i < held ? '#2ca02c' : '#d3d3d3'));
  const last = stages[stages.length - 1]?.held ?? 1;
  return {
    data: [
      {
        type: 'bar',
        x,
        y: v.surprisal.map((b) => (Number.isFinite(b) ? b : 0)),
        text: v.tokens.map((t, i) => `${i}: ${JSON.stringify(t)}`),
        hovertemplate: '%{text}<br>%{y:.2f} bits<extra></extra>',
        marker: { color: colours(last) },
        name: 'tokens',
      },
    ],
    layout: layout(
      title,
      'token position (green: held by the vector at this step)',
      'surprisal without the vector (bits)',
      {
        sliders: [
          {
            active: stages.length - 1,
            currentvalue: { prefix: 'cram step ' },
            pad: { t: 50 },
            steps: stages.map((s) => ({
              label: String(s.step),
              method: 'restyle',
              args: [{ 'marker.color': [colours(s.held)] }],
            })),
          },
        ],
        showlegend: false,
        height: 540,
      },
    ),
  };
}
