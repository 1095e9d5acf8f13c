// Per-model numbers over many texts, with the paper's Table 1 conventions (the authors' notebooks):
//   decoding capacity = largest N of the length grid whose MEAN best accuracy over texts is ≥ 0.99
//   token gain, information gain = means over the texts whose best accuracy is ≤ 0.99 (vectors
//   that are full), at any N of the grid
//   information gain in the table = the authors' CE totals (mean loss × N, natural log) even where
//   the paper's header says bits: both are given here, named by unit and convention.
//   exact capacity = largest N of the grid where EVERY text comes back exactly by greedy decoding
//   from its vectors (exactness.ts), at fp32 and after rounding to each storage precision
// Theoretical capacity of K vectors: K · d · 16 / log2(V) tokens (16-bit numbers, log2 V bits a token).
import { groupBy, mean } from '../math';
import { PRECISIONS, type Precision } from '../precision';
import { theoreticalCapacity } from '../models/registry';
import type { TextMetrics } from './text';

export { theoreticalCapacity };

export const DECODED_THRESHOLD = 0.99;

export interface LengthGroup {
  K: number;
  N: number;
  texts: number;
  /** NaN runs left out of the means. */
  nanRuns: number;
  meanBestAccuracy: number;
  fractionDecoded: number;
  meanStepsToBest: number;
  meanInfoGainBits: number;
  meanTokenGain: number;
}

export interface CapacitySummary {
  K: number;
  lengths: number[];
  /** Paper rule: largest N whose mean best accuracy ≥ 0.99 (0 when none). */
  decodingCapacity: number;
  /** Largest N where every text decodes exactly by greedy from its fp32 vectors (null: records without exactness). */
  exactCapacity: number | null;
  /** The same after storing the vectors at each precision. */
  exactCapacityAt: Record<Precision, number> | null;
  theoreticalCapacity: number;
  /** decodingCapacity / theoreticalCapacity. */
  utilisation: number;
  /** Texts with best accuracy ≤ 0.99, over which the gains are averaged. */
  saturatedTexts: number;
  /** NaN runs left out of every number here. */
  nanRuns: number;
  tokenGain: number | null;
  /** Authors' convention: (mean loss without − min loss with) × N, nats. */
  paperInfoGainNats: number | null;
  /** Same totals in bits. */
  paperInfoGainBits: number | null;
  /** Ours: CE without − CE at the best mem over the N-1 predictions, bits. */
  infoGainBits: number | null;
  /** infoGainBits / (K · d · 16): the share of the vectors' raw bits the gain uses. */
  bitUtilisation: number | null;
}

/** A run that diverged (status 'nan' or a NaN accuracy): counted and shown, never averaged in. */
export const isNaNRun = (r: TextMetrics): boolean => r.status === 'nan' || !Number.isFinite(r.bestAccuracy);

export function groupByLength(records: TextMetrics[]): LengthGroup[] {
  const groups = new Map<string, TextMetrics[]>();
  const nans = new Map<string, number>();
  for (const r of records) {
    const key = `${r.K}:${r.N}`;
    if (!groups.has(key)) groups.set(key, []);
    if (isNaNRun(r)) nans.set(key, (nans.get(key) ?? 0) + 1);
    else groups.get(key)!.push(r);
  }
  return [...groups.entries()]
    .filter(([, rs]) => rs.length > 0)
    .map(([key, rs]) => ({
      K: rs[0].K,
      N: rs[0].N,
      texts: rs.length,
      nanRuns: nans.get(key) ?? 0,
      meanBestAccuracy: mean(rs.map((r) => r.bestAccuracy)),
      fractionDecoded: mean(rs.map((r) => (r.decoded ? 1 : 0))),
      meanStepsToBest: mean(rs.map((r) => r.stepsToBest)),
      meanInfoGainBits: mean(rs.map((r) => r.infoGainBits)),
      meanTokenGain: mean(rs.map((r) => r.tokenGain)),
    }))
    .sort((a, b) => a.K - b.K || a.N - b.N);
}

/**
 * Largest N where every text decodes exactly (greedy, at `p`); 0 when no N qualifies, null when a
 * record carries no exactness (made before it was measured). NaN runs count as failures here.
 */
export function exactCapacity(records: TextMetrics[], p: Precision = 'fp32'): number | null {
  if (records.some((r) => !r.exactness)) return null;
  const byN = groupBy(records, (r) => String(r.N));
  const ok = [...byN.entries()].filter(([, rs]) => rs.every((r) => r.exactness!.precisions[p]?.exact));
  return Math.max(0, ...ok.map(([N]) => Number(N)));
}

/** Largest N whose mean best accuracy is ≥ 0.99 (the paper's rule); 0 when no N qualifies. */
export function decodingCapacity(groups: { N: number; meanBestAccuracy: number }[]): number {
  return Math.max(0, ...groups.filter((g) => g.meanBestAccuracy >= DECODED_THRESHOLD).map((g) => g.N));
}

export interface ModelShape {
  memDim: number;
  vocabSize: number;
}

/** One row per K: the paper's Table 1 columns for these records (theoretical columns NaN without the model's shape). */
export function capacitySummary(records: TextMetrics[], model?: ModelShape): CapacitySummary[] {
  const Ks = [...new Set(records.map((r) => r.K))].sort((a, b) => a - b);
  return Ks.map((K) => {
    const all = records.filter((r) => r.K === K);
    const rs = all.filter((r) => !isNaNRun(r));
    const groups = groupByLength(rs);
    const cap = decodingCapacity(groups);
    const exact = exactCapacity(all);
    const exactAt =
      exact === null
        ? null
        : (Object.fromEntries(PRECISIONS.map((p) => [p, exactCapacity(all, p)!])) as Record<Precision, number>);
    const theory = model ? K * theoreticalCapacity(model.memDim, model.vocabSize) : NaN;
    const full = rs.filter((r) => r.bestAccuracy <= DECODED_THRESHOLD);
    const some = full.length > 0;
    const paperNats = mean(full.map((r) => r.paperInfoGainNats));
    const bits = mean(full.map((r) => r.infoGainBits));
    return {
      K,
      lengths: groups.map((g) => g.N),
      decodingCapacity: cap,
      exactCapacity: exact,
      exactCapacityAt: exactAt,
      theoreticalCapacity: theory,
      utilisation: cap / theory,
      saturatedTexts: full.length,
      nanRuns: all.length - rs.length,
      tokenGain: some ? mean(full.map((r) => r.tokenGain)) : null,
      paperInfoGainNats: some ? paperNats : null,
      paperInfoGainBits: some ? paperNats / Math.LN2 : null,
      infoGainBits: some ? bits : null,
      bitUtilisation: some && model ? bits / (K * model.memDim * 16) : null,
    };
  });
}

export interface Table1Row extends CapacitySummary {
  model: string;
  set: string;
}

/**
 * The paper's Table 1, one row per (model, text set, K): capacitySummary of each group. The CLI's
 * `capacity`, the notebooks and `npm run figures` all print this. `shapeOf(model)` gives d and V
 * for the theoretical columns (NaN where it returns undefined).
 */
export function table1(
  records: (TextMetrics & { model: string; set: string })[],
  shapeOf: (model: string) => ModelShape | undefined = () => undefined,
): Table1Row[] {
  const groups = groupBy(records, (r) => `${r.model}\u0000${r.set}`);
  return [...groups.values()].flatMap((g) =>
    capacitySummary(g, shapeOf(g[0].model)).map((s) => ({ model: g[0].model, set: g[0].set, ...s })),
  );
}
