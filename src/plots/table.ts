// Tables with arquero: one array of plain objects in, HTML / Markdown / CSV out.
import * as aq from 'arquero';
import { displayBundle } from './display';

type Row = Record<string, unknown>;

/** Round numbers for display (arquero prints full float precision otherwise). */
function rounded(rows: Row[], digits: number): Row[] {
  return rows.map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => [
        k,
        typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(digits)) : v,
      ]),
    ),
  );
}

function table(rows: Row[], digits: number) {
  if (!Array.isArray(rows) || rows.length === 0) throw new Error('table: no rows');
  return aq.from(rounded(rows, digits));
}

export function tableMarkdown(rows: Row[], digits = 3): string {
  return table(rows, digits).toMarkdown();
}

export function tableHtml(rows: Row[], digits = 3): string {
  return table(rows, digits).toHTML();
}

export function tableCsv(rows: Row[]): string {
  return table(rows, 12).toCSV();
}

/** Show a table in the notebook (HTML + Markdown + plain text); prints it outside a kernel. */
export function showTable(rows: Row[], digits = 3): void {
  const md = tableMarkdown(rows, digits);
  displayBundle({ 'text/html': tableHtml(rows, digits), 'text/markdown': md, 'text/plain': md });
}
