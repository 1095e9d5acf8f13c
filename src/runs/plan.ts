// A sweep plan: every (text, N, K) cell of a capacity grid and every (text, K) bisection, each with
// the fingerprint of what decides its result, and how the missing ones group into units (units.ts).
// It depends on the texts and options alone, so a local and a queued sweep plan the same work and
// file the same records.
import { CramError } from '../cram/cram';
import { fingerprint, recordPrint, seedOf } from './record';
import type { BisectUnit, CramUnit, JobOptions, ModelRef } from './unit';

export interface SweepText {
  id: string;
  ids: number[];
}

export interface Cell {
  text: SweepText;
  N: number;
  K: number;
  seed: number;
  fingerprint: string;
}

export interface BisectCell {
  text: SweepText;
  K: number;
  seed: number;
  fingerprint: string;
}

export interface PlanOptions {
  lengths: number[];
  Ks: number[];
  /** Base seed: a text's seed is seedOf(its id, seed), the same at every N and K. */
  seed?: number;
  /** Texts per unit (default: all of them). */
  batch?: number;
  model: ModelRef;
  options: JobOptions;
  /** Tokens → text: each cram unit carries its texts so the bits (UTF-8, gzip, …) are measured where it runs. */
  decode?: (ids: number[]) => string;
}

/** Refuse what would collide in a run folder: ids that are not unique strings. */
export function checkTextIds(texts: { id: unknown }[]): void {
  const seen = new Set<string>();
  for (const [i, t] of texts.entries()) {
    if (typeof t.id !== 'string' || !t.id)
      throw new CramError(
        `text ${i} has id ${JSON.stringify(t.id) ?? String(t.id)}: text ids must be non-empty strings`,
      );
    if (seen.has(t.id))
      throw new CramError(`text id '${t.id}' appears twice: ids must be unique (records are filed by id)`);
    seen.add(t.id);
  }
}

/** Refuse a grid list that is empty, out of range or repeats a value (it would double Table 1's rows). */
function checkGrid(values: number[], what: string, min: number): void {
  if (!values.length || values.some((n) => !Number.isInteger(n) || n < min))
    throw new CramError(`${what} must be integers ≥ ${min}, got ${values.join(',')}`);
  const dup = values.find((n, i) => values.indexOf(n) !== i);
  if (dup !== undefined) throw new CramError(`${what} list ${dup} twice (${values.join(',')}): give each value once`);
}

export class SweepPlan {
  readonly cells: Cell[];
  readonly bisectCells: BisectCell[];
  readonly startN: number;
  readonly maxN: number;
  /** Texts left out of a length for being shorter, per N. */
  readonly short = new Map<number, number>();

  constructor(
    readonly texts: SweepText[],
    readonly o: PlanOptions,
  ) {
    if (!texts.length) throw new CramError('no texts for the sweep');
    checkTextIds(texts);
    checkGrid(o.lengths, 'lengths', 2);
    checkGrid(o.Ks, 'mem counts', 1);
    const base = o.seed ?? 0;
    const print = (t: SweepText, N: number, K: number) =>
      recordPrint({
        ids: t.ids.slice(0, N),
        K,
        seed: seedOf(t.id, base),
        weightsHash: o.model.weightsHash,
        options: o.options,
      });
    // Units go K by K, N by N (the order of the local sweep's log).
    this.cells = o.Ks.flatMap((K) =>
      o.lengths.flatMap((N) =>
        texts
          .filter((t) => t.ids.length >= N)
          .map((t) => ({ text: t, N, K, seed: seedOf(t.id, base), fingerprint: print(t, N, K) })),
      ),
    );
    for (const N of o.lengths) {
      const short = texts.filter((t) => t.ids.length < N).length;
      if (short) this.short.set(N, short);
    }
    this.maxN = Math.max(...o.lengths);
    this.startN = Math.min(...o.lengths);
    this.bisectCells = o.Ks.flatMap((K) =>
      texts.map((t) => ({
        text: t,
        K,
        seed: seedOf(t.id, base),
        fingerprint: fingerprint({ grid: print(t, this.maxN, K), startN: this.startN, maxN: this.maxN }),
      })),
    );
  }

  private chunks<T>(xs: T[]): T[][] {
    const size = this.o.batch ?? this.texts.length;
    const out: T[][] = [];
    for (let c = 0; c < xs.length; c += size) out.push(xs.slice(c, c + size));
    return out;
  }

  /** The cells to compute, as units: per (K, N) in plan order, `batch` texts each. */
  cramUnits(todo: Cell[]): CramUnit[] {
    const groups = new Map<string, Cell[]>();
    for (const c of todo) {
      const k = `${c.K}|${c.N}`;
      groups.set(k, [...(groups.get(k) ?? []), c]);
    }
    return [...groups.values()].flatMap((g) =>
      this.chunks(g).map((part) => ({
        kind: 'cram' as const,
        model: this.o.model,
        N: part[0].N,
        K: part[0].K,
        texts: part.map((c) => {
          const ids = c.text.ids.slice(0, c.N);
          const text = this.o.decode?.(ids);
          return { id: c.text.id, ids, seed: c.seed, ...(text !== undefined ? { text } : {}) };
        }),
        prints: part.map((c) => c.fingerprint),
        options: this.o.options,
      })),
    );
  }

  /** The bisections to run, as units: per K, `batch` texts each. */
  bisectUnits(todo: BisectCell[]): BisectUnit[] {
    return this.o.Ks.flatMap((K) =>
      this.chunks(todo.filter((c) => c.K === K)).map((part) => ({
        kind: 'bisect' as const,
        model: this.o.model,
        K,
        startN: this.startN,
        maxN: this.maxN,
        texts: part.map((c) => ({ id: c.text.id, ids: c.text.ids, seed: c.seed })),
        prints: part.map((c) => c.fingerprint),
        options: this.o.options,
      })),
    );
  }
}
