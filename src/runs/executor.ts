// Executors turn a sweep's units into outcomes: in this process (here), or through a Redis queue and
// its workers (queue.ts). Both hand every outcome to the same sink (the run folder's writer).
import type { ProgressInfo } from '../cram/progress';
import type { CausalLM } from '../models/types';
import { runUnit, type Outcome, type Unit } from './unit';

/** Called with each outcome and the fingerprint it is filed under. */
export type Sink = (print: string, o: Outcome) => void | Promise<void>;

export interface UnitFailure {
  unit: Unit;
  reason: string;
}

export interface Executor {
  /**
   * Before planning units: the fingerprints of `wanted` already being computed elsewhere (a queue's
   * jobs from before a coordinator restart); what finished meanwhile goes to `sink` first.
   */
  adopt?(wanted: Set<string>, sink: Sink): Promise<Set<string>>;
  /** Compute the units (and any adopted work); returns the units that failed for good. */
  run(units: Unit[], sink: Sink): Promise<UnitFailure[]>;
  close?(): Promise<void>;
}

/** Describes a unit in a log line: 'K=1 N=16: 4 texts'. */
export function unitLabel(u: Unit): string {
  return u.kind === 'cram'
    ? `K=${u.K} N=${u.N}: ${u.texts.length} texts`
    : `K=${u.K}: bisect ${u.texts.length} texts (N ≤ ${u.maxN})`;
}

/** Run units one after the other on `model`; each text's outcome is filed as soon as it is known. */
export function localExecutor(
  model: CausalLM,
  o: { onProgress?: (p: ProgressInfo) => void; quiet?: boolean; log: (line: string) => void },
): Executor {
  return {
    async run(units, sink) {
      const total = new Map<string, number>();
      for (const u of units) total.set(groupOf(u), (total.get(groupOf(u)) ?? 0) + u.texts.length);
      const done = new Map<string, number>();
      for (const u of units) {
        const g = groupOf(u);
        const upTo = (done.get(g) ?? 0) + u.texts.length;
        done.set(g, upTo);
        o.log(
          u.kind === 'cram'
            ? `K=${u.K} N=${u.N}: cramming ${u.texts.length} texts (${upTo}/${total.get(g)})`
            : `K=${u.K}: bisecting capacity of ${u.texts.length} texts (N ≤ ${u.maxN})`,
        );
        await runUnit(model, u, {
          onProgress: o.onProgress,
          quiet: o.quiet,
          onOutcome: (out, i) => sink(u.prints[i], out),
        });
      }
      return []; // an error here is the caller's to see: nothing is retried in-process
    },
  };
}

const groupOf = (u: Unit): string => (u.kind === 'cram' ? `${u.K}|${u.N}` : `b${u.K}`);
