// Horizon vs steps per search method (scripts/growth-compare.ts writes the rows to figures/search-methods.json):
// one line per method through its K = 1, 2, 4 points, so a method up and to the left of another holds more
// tokens for fewer cram steps.
import { colourOf, layout, requireRows, type Figure, type Trace } from './figure';

/** One row of figures/search-methods.json: a method at one K. */
export interface SearchRow {
  K: number;
  method: string;
  'mean horizon': number;
  'steps / text': number;
  'wall s'?: number;
}

export function horizonVsSteps(rows: SearchRow[], title = 'Search methods: tokens held vs cram steps'): Figure {
  requireRows(rows, 'search-method rows');
  const methods = [...new Set(rows.map((r) => r.method))];
  const data: Trace[] = methods.map((m) => {
    const rs = rows.filter((r) => r.method === m).sort((a, b) => a.K - b.K);
    return {
      type: 'scatter',
      mode: 'lines+markers+text',
      name: m,
      x: rs.map((r) => r['steps / text']),
      y: rs.map((r) => r['mean horizon']),
      text: rs.map((r) => `K=${r.K}`),
      textposition: 'top center',
      line: { color: colourOf(`search:${m}`), dash: m.startsWith('bisection') ? 'dot' : 'solid' },
      hovertemplate: `${m}<br>%{text}: %{y:.2f} tokens for %{x:.0f} steps per text<extra></extra>`,
    };
  });
  return {
    data,
    layout: layout(title, 'cram steps per text (mean)', 'horizon (tokens, mean)', { width: 860, height: 520 }),
  };
}
