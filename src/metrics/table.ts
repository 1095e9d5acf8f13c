// Summary tables of a sweep, as Markdown (arquero): mean accuracy per (K, N), Table 1 per K,
// and the per-text bisection capacity next to the grid's answer.
import * as aq from 'arquero';
import { capacitySummary, isNaNRun } from './summary';
import type { TextCapacity } from '../cram/capacity';
import type { TextMetrics } from './text';

const f = (digits: number) => (x: unknown) =>
  typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : x == null ? '-' : String(x);

/** The line that says how many diverged runs a table leaves out ('' when none). */
export function nanNote(records: TextMetrics[]): string {
  const n = records.filter(isNaNRun).length;
  return n ? `\n\n${n} NaN run${n === 1 ? '' : 's'} excluded` : '';
}

export function lengthTable(records: TextMetrics[]): string {
  const ok = records.filter((r) => !isNaNRun(r));
  if (!ok.length) return '(no records)' + nanNote(records);
  const flat = ok.map((r) => ({
    K: r.K,
    N: r.N,
    acc: r.bestAccuracy,
    decoded: r.decoded ? 1 : 0,
    steps: r.stepsToBest,
    gainBits: r.infoGainBits,
    paperNats: r.paperInfoGainNats,
    tokenGain: r.tokenGain,
  }));
  return (
    aq
      .from(flat)
      .groupby('K', 'N')
      .rollup({
        texts: 'count()',
        'mean best acc': 'mean(d.acc)',
        decoded: 'mean(d.decoded)',
        'steps to best': 'mean(d.steps)',
        'info gain (bits)': 'mean(d.gainBits)',
        'paper info gain (nats)': 'mean(d.paperNats)',
        'token gain': 'mean(d.tokenGain)',
      })
      .orderby('K', 'N')
      .toMarkdown({
        format: {
          'mean best acc': f(4),
          decoded: f(3),
          'steps to best': f(0),
          'info gain (bits)': f(1),
          'paper info gain (nats)': f(1),
          'token gain': f(1),
        },
      }) + nanNote(records)
  );
}

export function capacityTable(records: TextMetrics[], model: { memDim: number; vocabSize: number }): string {
  if (!records.some((r) => !isNaNRun(r))) return '(no records)' + nanNote(records);
  const rows = capacitySummary(records, model).map((s) => ({
    K: s.K,
    'decoding capacity': s.decodingCapacity,
    'theoretical capacity': s.theoreticalCapacity,
    utilisation: s.utilisation,
    'texts ≤ 0.99': s.saturatedTexts,
    'token gain': s.tokenGain,
    'info gain, paper (nats)': s.paperInfoGainNats,
    'info gain, paper (bits)': s.paperInfoGainBits,
    'info gain, best mem (bits)': s.infoGainBits,
    'exact capacity (greedy)': s.exactCapacity,
    'exact at bf16': s.exactCapacityAt?.bf16 ?? null,
    'exact at int8': s.exactCapacityAt?.int8 ?? null,
  }));
  return (
    aq.from(rows).toMarkdown({
      format: {
        'theoretical capacity': f(1),
        utilisation: f(3),
        'token gain': f(1),
        'info gain, paper (nats)': f(1),
        'info gain, paper (bits)': f(1),
        'info gain, best mem (bits)': f(1),
        'exact capacity (greedy)': f(0),
        'exact at bf16': f(0),
        'exact at int8': f(0),
      },
    }) + nanNote(records)
  );
}

export function bisectTable(
  records: (Pick<TextCapacity, 'K' | 'capacity' | 'censored' | 'totalSteps' | 'attempts'> & {
    id: string;
    gridLargestDecoded: number | null;
  })[],
): string {
  if (!records.length) return '(no bisection records)';
  const rows = records.map((r) => ({
    text: r.id,
    K: r.K,
    'bisection capacity': `${r.capacity}${r.censored ? '+' : ''}`,
    'grid largest decoded N': r.gridLargestDecoded ?? '-',
    attempts: r.attempts.length,
    steps: r.totalSteps,
  }));
  return aq.from(rows).orderby('K', 'text').toMarkdown();
}
