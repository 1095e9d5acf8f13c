// The notebooks' show/showTable: as src/plots', but a `ci` run's figures and tables say they are a
// smoke test, so nobody reads 100-step numbers as the paper's effects.
import { show as showFigure, showMarkdown, showTable as showRows } from '../plots/index';
import type { Figure } from '../plots/index';
import { activeBudget, SMOKE_TEST } from './budget';

const smoke = () => activeBudget() === 'ci';

export function show(fig: Figure): void {
  if (!smoke()) return showFigure(fig);
  const title = fig.layout?.title?.text ?? '';
  showFigure({ ...fig, layout: { ...fig.layout, title: { ...fig.layout?.title, text: `${SMOKE_TEST}<br>${title}` } } });
}

export function showTable(rows: Record<string, unknown>[], digits = 3): void {
  if (smoke()) showMarkdown(`*${SMOKE_TEST}*`);
  showRows(rows, digits);
}
