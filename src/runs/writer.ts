// The one writer of a sweep's run folder: config.json, then each outcome as a record the moment it
// arrives (whoever computed it: this process or a queue worker), never one twice.
import * as path from 'node:path';
import { CRAM_DEFAULTS, CramError } from '../cram/cram';
import { appendLine, readLines, readRunConfig, RecordFile, repairTail, writeFileAtomic } from './folder';
import type { BisectCell, Cell, SweepPlan } from './plan';
import type { BisectRecord, CramRecord } from './record';
import type { BisectOutcome, CramOutcome, JobOptions } from './unit';

/** Who made a record and how: the fields a CramRecord adds to a text's metrics. */
export interface RecordContext {
  model: string;
  weightsHash: string;
  set: string;
  options: Pick<JobOptions, 'maxSteps' | 'patience' | 'margin'>;
  /** The crammed tokens → text (hover text). */
  decode?: (ids: number[]) => string;
  /** Keep the best mem in the record. */
  saveMem?: boolean;
}

/** A CramRecord from a text's outcome: the same fields whatever executor computed it. */
export function cramRecord(
  o: CramOutcome,
  t: { id: string; ids: number[]; seed: number; fingerprint: string; warmStart: boolean },
  c: RecordContext,
): CramRecord {
  return {
    kind: 'cram',
    ...o.metrics,
    id: t.id,
    model: c.model,
    weights: c.weightsHash.slice(0, 16),
    set: c.set,
    seed: t.seed,
    fingerprint: t.fingerprint,
    maxSteps: c.options.maxSteps ?? CRAM_DEFAULTS.maxSteps,
    patience: c.options.patience ?? CRAM_DEFAULTS.patience,
    ...(c.options.margin ? { margin: c.options.margin } : {}),
    warmStart: t.warmStart,
    ...(c.decode ? { text: c.decode(t.ids) } : {}),
    ...(c.saveMem ? { mem: o.mem } : {}),
    ...(o.curve ? { curve: o.curve } : {}),
  };
}

export class SweepWriter {
  readonly results: RecordFile;
  readonly bisectFile: string;
  private bisects: BisectRecord[];
  private byPrint = new Map<string, Cell>();
  private bisectByPrint = new Map<string, BisectCell>();

  constructor(
    readonly plan: SweepPlan,
    readonly ctx: RecordContext & { runDir: string; bisect?: boolean },
    log: (line: string) => void,
  ) {
    const { runDir } = ctx;
    const cfgFile = path.join(runDir, 'config.json');
    let old: Record<string, any> | undefined;
    try {
      old = readRunConfig(runDir);
    } catch {
      old = undefined; // a damaged config.json is rewritten below; the records say their own weights
    }
    if (old?.model?.weightsHash && old.model.weightsHash !== ctx.weightsHash) {
      throw new CramError(`${runDir} holds a run of model '${old.model.id}' (other weights); use another --out folder`);
    }
    const o = plan.o;
    writeFileAtomic(
      cfgFile,
      JSON.stringify(
        {
          model: { id: ctx.model, weightsHash: ctx.weightsHash },
          set: ctx.set,
          lengths: o.lengths,
          Ks: o.Ks,
          bisect: !!ctx.bisect,
          batch: o.batch,
          seed: o.seed ?? 0,
          texts: plan.texts.map((t) => t.id),
          options: o.options,
          updated: new Date().toISOString(),
        },
        null,
        2,
      ),
    );
    this.results = new RecordFile(runDir, log);
    this.bisectFile = path.join(runDir, 'bisect.jsonl');
    if (repairTail(this.bisectFile)) log(`note: cut a torn last line (an interrupted write) from ${this.bisectFile}`);
    for (const c of plan.cells) this.byPrint.set(c.fingerprint, c);
    for (const c of plan.bisectCells) this.bisectByPrint.set(c.fingerprint, c);
    this.bisects = readLines<BisectRecord>(this.bisectFile).filter(
      (r) => this.bisectByPrint.get(r.fingerprint)?.text.id === r.id && r.kind === 'bisect',
    );
  }

  private key(c: Cell) {
    return { model: this.ctx.model, set: this.ctx.set, id: c.text.id, N: c.N, K: c.K };
  }

  /** The record of a cell made with its fingerprint, if the folder has it. */
  record(c: Cell): CramRecord | undefined {
    return this.results.get(this.key(c), c.fingerprint);
  }

  /** How many cells have only records made another way (other texts, options, or an older version). */
  staleCount(): number {
    return this.plan.cells.filter((c) => !this.record(c) && this.results.stale(this.key(c), c.fingerprint) > 0).length;
  }

  bisected(c: BisectCell): BisectRecord | undefined {
    return this.bisects.find((r) => r.fingerprint === c.fingerprint && r.id === c.text.id);
  }

  /** File an outcome under its fingerprint; false when it is not this plan's or already filed. */
  addCram(print: string, o: CramOutcome): boolean {
    const c = this.byPrint.get(print);
    if (!c || c.text.id !== o.id || this.record(c)) return false;
    const ids = c.text.ids.slice(0, c.N);
    this.results.add(cramRecord(o, { ...c, id: c.text.id, ids, warmStart: false }, this.ctx));
    return true;
  }

  addBisect(print: string, o: BisectOutcome): boolean {
    const c = this.bisectByPrint.get(print);
    if (!c || c.text.id !== o.id || this.bisected(c)) return false;
    const f = o.found;
    const mine = this.grid().filter((r) => r.id === c.text.id && r.K === c.K);
    const rec: BisectRecord = {
      kind: 'bisect',
      id: c.text.id,
      K: c.K,
      capacity: f.capacity,
      censored: f.censored,
      gridLargestDecoded: mine.length ? Math.max(0, ...mine.filter((r) => r.decoded).map((r) => r.N)) : null,
      totalSteps: f.totalSteps,
      seconds: f.seconds,
      attempts: f.attempts,
      fingerprint: c.fingerprint,
    };
    appendLine(this.bisectFile, rec);
    this.bisects.push(rec);
    return true;
  }

  /** This plan's grid records, in plan order. */
  grid(): CramRecord[] {
    return this.plan.cells.map((c) => this.record(c)).filter((r): r is CramRecord => r !== undefined);
  }

  bisectRecords(): BisectRecord[] {
    return this.bisects;
  }
}
