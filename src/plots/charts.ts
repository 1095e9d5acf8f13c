// Builders for the paper's figures. Each takes plain rows (one per text, or per model) and
// returns a Plotly figure; hover shows the text, N, K and bits wherever a point stands for a text.
import { figureColours, layout, requireRows, shortName, type Figure, type Trace } from './figure';
import { groupBy } from '../math';
import { linearFit, mean, std } from './fit';

/** One crammed (text, N, K) result, as the figures need it. */
export interface PointRow {
  model: string;
  N: number;
  K: number;
  accuracy: number;
  id?: string;
  text?: string;
  /** Cross-entropy of the text without / with the mem vectors, total over the text, in bits. */
  ceWithoutBits?: number;
  ceWithBits?: number;
  infoGainBits?: number;
}

const fmt = (x: number | undefined, digits = 1) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

/** What hovering over one text's point shows. */
export function hoverText(r: PointRow): string {
  const snippet = (r.text ?? r.id ?? '').replace(/\s+/g, ' ').slice(0, 80);
  return [
    snippet && `<i>${escapeHtml(snippet)}${(r.text ?? '').length > 80 ? '…' : ''}</i>`,
    `${shortName(r.model)}  N=${r.N}  K=${r.K}`,
    `accuracy ${(100 * r.accuracy).toFixed(1)}%`,
    r.ceWithoutBits !== undefined && `CE ${fmt(r.ceWithoutBits)} → ${fmt(r.ceWithBits)} bits`,
    r.infoGainBits !== undefined && `information gain ${fmt(r.infoGainBits)} bits`,
  ]
    .filter(Boolean)
    .join('<br>');
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Paper Figure 1: mean best accuracy against text length N, one line per model (faint dots: texts). */
export function accuracyVsN(rows: PointRow[], title = 'Single-vector reconstruction accuracy vs text length'): Figure {
  requireRows(rows, 'accuracyVsN');
  const data: Trace[] = [];
  const colours = figureColours([...new Set(rows.map((r) => shortName(r.model)))]);
  for (const [model, rs] of groupBy(rows, (r) => r.model)) {
    const colour = colours.get(shortName(model))!;
    const byN = [...groupBy(rs, (r) => String(r.N))]
      .map(([n, g]) => ({ N: Number(n), acc: g.map((r) => r.accuracy) }))
      .sort((a, b) => a.N - b.N);
    data.push({
      type: 'scatter',
      mode: 'markers',
      name: `${shortName(model)} texts`,
      legendgroup: model,
      showlegend: false,
      x: rs.map((r) => r.N),
      y: rs.map((r) => r.accuracy),
      text: rs.map(hoverText),
      hovertemplate: '%{text}<extra></extra>',
      marker: { color: colour, opacity: 0.3, size: 6 },
    });
    data.push({
      type: 'scatter',
      mode: 'lines+markers',
      name: shortName(model),
      legendgroup: model,
      x: byN.map((b) => b.N),
      y: byN.map((b) => mean(b.acc)),
      error_y: { type: 'data', array: byN.map((b) => std(b.acc)), visible: true },
      text: byN.map(
        (b) =>
          `${shortName(model)}  N=${b.N}<br>mean accuracy ${(100 * mean(b.acc)).toFixed(1)}% over ${b.acc.length} texts`,
      ),
      hovertemplate: '%{text}<extra></extra>',
      line: { color: colour },
    });
  }
  // Log axis ticked at the lengths tried (Plotly's own log ticks label 2, 3, 5 between decades).
  const Ns = [...new Set(rows.map((r) => r.N))].sort((a, b) => a - b);
  return {
    data,
    layout: layout(title, 'text length N (tokens)', 'best reconstruction accuracy', {
      xaxis: { type: 'log', tickvals: Ns, ticktext: Ns.map(String) },
      yaxis: { range: [0, 1.05] },
    }),
  };
}

/**
 * Paper Figure 3: cross-entropy of the text with the mem vectors against without, per text, with a
 * fitted line per model over the texts not fully decoded (there CE_with ≈ CE_without − gain).
 */
export function ceScatter(rows: PointRow[], title = 'Compressed vs original cross-entropy'): Figure {
  requireRows(rows, 'ceScatter');
  const usable = rows.filter((r) => Number.isFinite(r.ceWithoutBits) && Number.isFinite(r.ceWithBits));
  if (!usable.length) throw new Error('ceScatter: no row has ceWithoutBits and ceWithBits');
  const data: Trace[] = [];
  const annotations: any[] = [];
  let max = 0;
  const colours = figureColours([...new Set(usable.map((r) => shortName(r.model)))]);
  for (const [model, rs] of groupBy(usable, (r) => r.model)) {
    const colour = colours.get(shortName(model))!;
    max = Math.max(max, ...rs.map((r) => r.ceWithoutBits!));
    data.push({
      type: 'scatter',
      mode: 'markers',
      name: shortName(model),
      legendgroup: model,
      x: rs.map((r) => r.ceWithoutBits!),
      y: rs.map((r) => r.ceWithBits!),
      text: rs.map(hoverText),
      hovertemplate: '%{text}<extra></extra>',
      marker: { color: colour, size: 7, symbol: rs.map((r) => (r.accuracy >= 1 ? 'circle' : 'x')) },
    });
    const full = rs.filter((r) => r.accuracy < 1);
    const pts = full.length >= 2 && new Set(full.map((r) => r.ceWithoutBits)).size >= 2 ? full : rs;
    if (pts.length >= 2 && new Set(pts.map((r) => r.ceWithoutBits)).size >= 2) {
      const f = linearFit(
        pts.map((r) => r.ceWithoutBits!),
        pts.map((r) => r.ceWithBits!),
      );
      const xs = [Math.min(...pts.map((r) => r.ceWithoutBits!)), Math.max(...pts.map((r) => r.ceWithoutBits!))];
      data.push({
        type: 'scatter',
        mode: 'lines',
        name: `${shortName(model)} fit: y = ${f.slope.toFixed(2)}x ${f.intercept >= 0 ? '+' : '−'} ${Math.abs(f.intercept).toFixed(0)}`,
        legendgroup: model,
        x: xs,
        y: xs.map((x) => f.slope * x + f.intercept),
        line: { color: colour, dash: 'dash' },
        hovertemplate: `slope ${f.slope.toFixed(3)}, intercept ${f.intercept.toFixed(1)} bits, R² ${f.r2.toFixed(3)}<extra></extra>`,
      });
    }
  }
  data.push({
    type: 'scatter',
    mode: 'lines',
    name: 'no compression (y = x)',
    x: [0, max],
    y: [0, max],
    line: { color: '#999', dash: 'dot' },
    hoverinfo: 'skip',
  });
  return {
    data,
    layout: layout(title, 'CE of the text without mem (bits, total)', 'CE of the text with mem (bits, total)', {
      annotations,
    }),
  };
}

/** One model's capacity (longest decoded N) at one K, for one text or averaged. */
export interface CapacityRow {
  model: string;
  K: number;
  capacity: number;
  id?: string;
  text?: string;
}

/** Paper Figure 4: capacity against the number of mem vectors K, with a least-squares line per model. */
export function capacityVsK(rows: CapacityRow[], title = 'Capacity grows with the number of [mem] vectors'): Figure {
  requireRows(rows, 'capacityVsK');
  const data: Trace[] = [];
  const colours = figureColours([...new Set(rows.map((r) => shortName(r.model)))]);
  for (const [model, rs] of groupBy(rows, (r) => r.model)) {
    const colour = colours.get(shortName(model))!;
    const byK = [...groupBy(rs, (r) => String(r.K))]
      .map(([k, g]) => ({ K: Number(k), c: g.map((r) => r.capacity) }))
      .sort((a, b) => a.K - b.K);
    data.push({
      type: 'scatter',
      mode: 'markers',
      name: shortName(model),
      legendgroup: model,
      x: byK.map((b) => b.K),
      y: byK.map((b) => mean(b.c)),
      error_y: { type: 'data', array: byK.map((b) => std(b.c)), visible: true },
      text: byK.map(
        (b) => `${shortName(model)}  K=${b.K}<br>capacity ${mean(b.c).toFixed(1)} tokens (mean of ${b.c.length})`,
      ),
      hovertemplate: '%{text}<extra></extra>',
      marker: { color: colour, size: 9 },
    });
    if (byK.length >= 2) {
      const f = linearFit(
        byK.map((b) => b.K),
        byK.map((b) => mean(b.c)),
      );
      const xs = [byK[0].K, byK[byK.length - 1].K];
      data.push({
        type: 'scatter',
        mode: 'lines',
        name: `${shortName(model)} fit: ${f.slope.toFixed(1)} tokens/vector (R² ${f.r2.toFixed(3)})`,
        legendgroup: model,
        x: xs,
        y: xs.map((x) => f.slope * x + f.intercept),
        line: { color: colour, dash: 'dash' },
        hovertemplate: `slope ${f.slope.toFixed(2)} tokens per vector<br>intercept ${f.intercept.toFixed(1)}<br>R² ${f.r2.toFixed(3)}<extra></extra>`,
      });
    }
  }
  return { data, layout: layout(title, 'number of [mem] vectors K', 'decoded tokens (capacity)') };
}

export interface TheoryRow {
  model: string;
  /** d·16/log2 V tokens: what K vectors of 16-bit floats could hold at most. */
  theoretical: number;
  measured: number;
}

/** Paper Figure 5: theoretical capacity against measured, per model, on a log axis. */
export function theoryVsMeasured(rows: TheoryRow[], title = 'Theoretical vs measured capacity'): Figure {
  requireRows(rows, 'theoryVsMeasured');
  const names = rows.map((r) => shortName(r.model));
  const hover = rows.map(
    (r) =>
      `${shortName(r.model)}<br>theoretical ${r.theoretical.toFixed(0)} tokens<br>measured ${r.measured.toFixed(1)} tokens<br>utilisation ${((100 * r.measured) / r.theoretical).toFixed(1)}%`,
  );
  return {
    data: [
      {
        type: 'bar',
        name: 'theoretical d·16/log₂V',
        x: names,
        y: rows.map((r) => r.theoretical),
        text: hover,
        textposition: 'none',
        hovertemplate: '%{text}<extra></extra>',
        marker: { color: '#bbb' },
      },
      {
        type: 'bar',
        name: 'measured',
        x: names,
        y: rows.map((r) => r.measured),
        text: hover,
        textposition: 'none',
        hovertemplate: '%{text}<extra></extra>',
        marker: { color: '#1f77b4' },
      },
    ],
    // Log scale for the paper's range (tens to thousands of tokens); linear when a model measured 0.
    layout: layout(title, 'model', 'tokens in one vector', {
      barmode: 'group',
      yaxis: rows.every((r) => r.measured > 0) ? { type: 'log' } : {},
    }),
  };
}

export interface SetRow {
  model: string;
  /** Text set, e.g. 'natural' or 'random'. */
  set: string;
  /** Mean tokens decoded (or token gain) on this set. */
  tokens: number;
  infoGainBits: number;
}

/** Notebook 02: tokens decoded and information gain, natural vs random text, side by side. */
export function compareSets(
  rows: SetRow[],
  title = 'Natural vs random text: fewer tokens, similar information gain',
): Figure {
  requireRows(rows, 'compareSets');
  const models = [...new Set(rows.map((r) => shortName(r.model)))];
  const data: Trace[] = [];
  const sets = [...new Set(rows.map((r) => r.set))];
  const shades = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728'];
  sets.forEach((set, i) => {
    const rs = models.map((m) => rows.find((r) => r.set === set && shortName(r.model) === m));
    const hover = rs.map((r) =>
      r ? `${shortName(r.model)} · ${set}<br>${r.tokens.toFixed(1)} tokens<br>${r.infoGainBits.toFixed(1)} bits` : '',
    );
    // textposition 'none': the hover text is for hovering, not for printing inside the bars.
    data.push({
      type: 'bar',
      name: set,
      legendgroup: set,
      x: models,
      y: rs.map((r) => r?.tokens ?? null),
      text: hover,
      textposition: 'none',
      hovertemplate: '%{text}<extra></extra>',
      marker: { color: shades[i % shades.length] },
    });
    data.push({
      type: 'bar',
      name: set,
      legendgroup: set,
      showlegend: false,
      x: models,
      y: rs.map((r) => r?.infoGainBits ?? null),
      xaxis: 'x2',
      yaxis: 'y2',
      text: hover,
      textposition: 'none',
      hovertemplate: '%{text}<extra></extra>',
      marker: { color: shades[i % shades.length] },
    });
  });
  const base = layout(title, 'model', 'tokens decoded exactly (mean over texts)', { barmode: 'group' });
  return {
    data,
    layout: {
      ...base,
      width: 900,
      xaxis: { ...base.xaxis, domain: [0, 0.45] },
      xaxis2: { title: { text: 'model' }, domain: [0.55, 1], anchor: 'y2' },
      yaxis2: { title: { text: 'information gain (bits)' }, anchor: 'x2' },
    },
  };
}

export interface CurvePoint {
  step: number;
  loss: number;
  accuracy: number;
}

/** Loss (left axis, log) and accuracy (right axis) over optimisation steps. */
export function trainingCurves(points: CurvePoint[], title = 'Optimising the [mem] vector'): Figure {
  requireRows(points, 'trainingCurves');
  const base = layout(title, 'step', 'loss (nats/token)', { yaxis: { type: 'log' } });
  return {
    data: [
      {
        type: 'scatter',
        mode: 'lines',
        name: 'loss',
        x: points.map((p) => p.step),
        y: points.map((p) => p.loss),
        line: { color: '#d62728' },
      },
      {
        type: 'scatter',
        mode: 'lines',
        name: 'accuracy',
        x: points.map((p) => p.step),
        y: points.map((p) => p.accuracy),
        yaxis: 'y2',
        line: { color: '#1f77b4' },
      },
    ],
    layout: { ...base, yaxis2: { title: { text: 'accuracy' }, overlaying: 'y', side: 'right', range: [0, 1.05] } },
  };
}
