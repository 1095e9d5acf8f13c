// Capacity sweeps into a run folder (folder.ts): every (text, N, K) of a grid, crammed from the
// authors' init, one CramRecord each; with `bisect`, each text's capacity at K by bisection.
// Three parts: the plan (plan.ts: cells and their fingerprints), an executor (executor.ts: in this
// process, or queue.ts: Redis workers on other machines) and the one writer (writer.ts). Resuming
// skips every record already there with this run's fingerprint, so a killed run loses no finished
// record; a record with another fingerprint (other texts, seed or options), or one that fails
// validation, is recomputed.
import type { CramOptions } from '../cram/cram';
import type { CausalLM } from '../models/types';
import { localExecutor, unitLabel, type Executor, type Sink, type UnitFailure } from './executor';
import { lockRunDir } from './folder';
import { SweepPlan, type SweepText } from './plan';
import type { BisectRecord, CramRecord } from './record';
import { SweepWriter } from './writer';

export type { SweepText } from './plan';

export interface SweepOptions extends Omit<CramOptions, 'K' | 'seed' | 'initMem' | 'onText'> {
  runDir: string;
  lengths: number[];
  Ks: number[];
  bisect?: boolean;
  /** Texts per cram call, or per queue job (default: all of them). */
  batch?: number;
  /** Base seed: a text's seed is seedOf(its id, seed), the same at every N and K. */
  seed?: number;
  /** Keep each record's best mem (base64). */
  saveMem?: boolean;
  /** Identifies the model in config.json and the records; a run folder refuses another model. */
  model: { id: string; weightsHash: string };
  /** Name of the text set, kept in the records (default 'texts'). */
  set?: string;
  /** Token ids → text, kept in each record for hover text. */
  decode?: (ids: number[]) => string;
  /** redis://[:password@]host:port[/db] (or rediss://): compute on `cramlab worker`s instead of here. */
  queue?: string;
  log?: (line: string) => void;
}

export interface SweepResult {
  grid: CramRecord[];
  bisect: BisectRecord[];
  /** Units that failed for good (a queue job after its retries): left out of grid and bisect. */
  failed: UnitFailure[];
}

export async function capacitySweep(model: CausalLM, texts: SweepText[], o: SweepOptions): Promise<SweepResult> {
  const log = o.log ?? ((s: string) => console.log(s));
  const {
    runDir,
    lengths,
    Ks,
    bisect,
    batch,
    seed,
    saveMem,
    model: ref,
    set = 'texts',
    decode,
    queue,
    log: _log,
    onProgress,
    quiet,
    ...options // what decides the results: the units carry it
  } = o;
  const plan = new SweepPlan(texts, { lengths, Ks, seed, batch, model: ref, options, decode }); // refuses bad grids first
  const release = lockRunDir(runDir);
  // BullMQ loads only for a queued sweep.
  const executor: Executor = queue
    ? (require('./queue') as typeof import('./queue')).queueExecutor(queue, { runDir, log })
    : localExecutor(model, { onProgress, quiet, log });
  try {
    const writer = new SweepWriter(
      plan,
      { runDir, bisect, model: ref.id, weightsHash: ref.weightsHash, set, options, decode, saveMem },
      log,
    );
    return await sweepWith(plan, writer, executor, !!bisect, log);
  } finally {
    await executor.close?.();
    release();
  }
}

async function sweepWith(
  plan: SweepPlan,
  writer: SweepWriter,
  executor: Executor,
  bisect: boolean,
  log: (line: string) => void,
): Promise<SweepResult> {
  const file = writer.results;
  const resumed = plan.cells.filter((c) => writer.record(c)).length;
  const stale = writer.staleCount();
  if (resumed) log(`resuming: ${resumed} records already in ${file.file}`);
  if (stale)
    log(
      `${stale} records in ${file.file} were made with other texts or options (or an older version): recomputing them`,
    );
  if (file.invalid.count)
    log(
      `${file.invalid.count} records in ${file.file} fail validation (first: ${file.invalid.first}): recomputing them`,
    );
  for (const [N, n] of plan.short) log(`N=${N}: ${n} texts are shorter and are left out`);

  const sink: Sink = (print, out) => {
    if (out.kind === 'cram') writer.addCram(print, out);
    else writer.addBisect(print, out);
  };
  const failed: UnitFailure[] = [];
  const todo = plan.cells.filter((c) => !writer.record(c));
  const busy = (await executor.adopt?.(new Set(todo.map((c) => c.fingerprint)), sink)) ?? new Set<string>();
  failed.push(
    ...(await executor.run(plan.cramUnits(todo.filter((c) => !busy.has(c.fingerprint) && !writer.record(c))), sink)),
  );

  if (bisect) {
    const todoB = plan.bisectCells.filter((c) => !writer.bisected(c));
    const busyB = (await executor.adopt?.(new Set(todoB.map((c) => c.fingerprint)), sink)) ?? new Set<string>();
    const units = plan.bisectUnits(todoB.filter((c) => !busyB.has(c.fingerprint) && !writer.bisected(c)));
    failed.push(...(await executor.run(units, sink)));
  }
  for (const f of failed)
    log(
      `failed for good, left out of the summary: ${unitLabel(f.unit)} (${f.unit.texts.map((t) => t.id).join(', ')}): ${f.reason}`,
    );
  return { grid: writer.grid(), bisect: writer.bisectRecords(), failed };
}
