// The Plotly figure as plain JSON: what every builder returns and every renderer takes.
// Kept to the few fields cramlab uses, so a figure can be checked in tests and written to disk.

export interface Trace {
  type: 'scatter' | 'bar' | 'heatmap';
  name?: string;
  mode?: string;
  x: (number | string)[];
  y: (number | string | null)[];
  /** One string per point, shown on hover (the text a point stands for, N, K, bits). */
  text?: string[];
  hovertemplate?: string;
  [key: string]: unknown;
}

export interface Figure {
  data: Trace[];
  layout: Record<string, any>;
  config?: Record<string, any>;
}

/** A layout with the house style: titles on both axes, hover closest to the pointer. */
export function layout(
  title: string,
  xTitle: string,
  yTitle: string,
  extra: Record<string, any> = {},
): Record<string, any> {
  return {
    title: { text: title },
    xaxis: { title: { text: xTitle }, zeroline: false, ...(extra.xaxis ?? {}) },
    yaxis: { title: { text: yTitle }, zeroline: false, ...(extra.yaxis ?? {}) },
    hovermode: 'closest',
    template: undefined,
    width: 760,
    height: 480,
    margin: { l: 70, r: 30, t: 60, b: 60 },
    legend: { orientation: 'v' },
    ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'xaxis' && k !== 'yaxis')),
  };
}

/** Same colour for the same model in every figure (Plotly's default cycle, keyed by name). */
const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];
const assigned = new Map<string, string>();
export function colourOf(name: string): string {
  if (!assigned.has(name)) assigned.set(name, PALETTE[assigned.size % PALETTE.length]);
  return assigned.get(name)!;
}

/** colourOf for each name, but never the same colour twice within one figure (the global cycle wraps after 10 names). */
export function figureColours(names: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const n of names) {
    let c = colourOf(n);
    if (used.has(c)) c = PALETTE.find((p) => !used.has(p)) ?? c;
    out.set(n, c);
    used.add(c);
  }
  return out;
}

/** Short display name of a model id or path ('models/cram-llama-d64' → 'cram-llama-d64'). */
export function shortName(model: string): string {
  const parts = model.replace(/\/+$/, '').split('/');
  return parts[parts.length - 1] || model;
}

/** Plain-language check used by builders: one line, names the problem. */
export function requireRows<T>(rows: T[], what: string): T[] {
  if (!Array.isArray(rows) || rows.length === 0) throw new Error(`${what}: no rows to plot (is the run folder empty?)`);
  return rows;
}
