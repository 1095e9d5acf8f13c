// Capacity sweeps into a run folder (folder.ts): every (text, N, K) of a grid, crammed from the
// authors' init, one CramRecord each; with `bisect`, each text's capacity at K by bisection.
// Resuming skips every record already there with this run's fingerprint, so a killed run loses no
// finished record; a record with another fingerprint (other texts, seed or options) is recomputed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capacitySearch } from '../cram/capacity';
import { cram, CRAM_DEFAULTS, CramError, type CramOptions } from '../cram/cram';
import { measure } from '../metrics/text';
import type { CausalLM } from '../models/types';
import { appendLine, lockRunDir, readLines, RecordFile, repairTail } from './folder';
import { encodeMem, fingerprint, recordPrint, seedOf, type BisectRecord, type CramRecord } from './record';

export interface SweepText {
  id: string;
  ids: number[];
}

export interface SweepOptions extends Omit<CramOptions, 'K' | 'seed' | 'initMem' | 'onText'> {
  runDir: string;
  lengths: number[];
  Ks: number[];
  bisect?: boolean;
  /** Texts per cram call (default: all of them). */
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
  log?: (line: string) => void;
}

export async function capacitySweep(
  model: CausalLM,
  texts: SweepText[],
  o: SweepOptions,
): Promise<{ grid: CramRecord[]; bisect: BisectRecord[] }> {
  if (!texts.length) throw new CramError('no texts for the sweep');
  if (!o.lengths.length || o.lengths.some((n) => !Number.isInteger(n) || n < 2))
    throw new CramError(`lengths must be integers ≥ 2, got ${o.lengths.join(',')}`);
  if (!o.Ks.length || o.Ks.some((k) => !Number.isInteger(k) || k < 1))
    throw new CramError(`mem counts must be positive integers, got ${o.Ks.join(',')}`);
  const log = o.log ?? ((s: string) => console.log(s));
  const release = lockRunDir(o.runDir);
  try {
    return await sweepLocked(model, texts, o, log);
  } finally {
    release();
  }
}

async function sweepLocked(
  model: CausalLM,
  texts: SweepText[],
  o: SweepOptions,
  log: (line: string) => void,
): Promise<{ grid: CramRecord[]; bisect: BisectRecord[] }> {
  const cfgFile = path.join(o.runDir, 'config.json');
  if (fs.existsSync(cfgFile)) {
    const old = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    if (old.model?.weightsHash && old.model.weightsHash !== o.model.weightsHash) {
      throw new CramError(
        `${o.runDir} holds a run of model '${old.model.id}' (other weights); use another --out folder`,
      );
    }
  }
  const {
    runDir,
    lengths,
    Ks,
    bisect,
    batch,
    seed,
    saveMem,
    model: modelId,
    set = 'texts',
    decode,
    log: _log,
    onProgress,
    ...cramOpts
  } = o;
  fs.writeFileSync(
    cfgFile,
    JSON.stringify(
      {
        model: modelId,
        set,
        lengths,
        Ks,
        bisect: !!bisect,
        batch,
        seed: seed ?? 0,
        texts: texts.map((t) => t.id),
        options: cramOpts,
        updated: new Date().toISOString(),
      },
      null,
      2,
    ),
  );
  const file = new RecordFile(runDir, log);
  const bisectFile = path.join(runDir, 'bisect.jsonl');
  if (repairTail(bisectFile)) log(`note: cut a torn last line (an interrupted write) from ${bisectFile}`);
  const base = seed ?? 0;
  const size = batch ?? texts.length;
  const seedFor = (t: SweepText) => seedOf(t.id, base);
  // A fingerprint hashes the text's ids: compute each once (the loops below ask for it many times).
  const prints = new Map<string, string>();
  const printOf = (t: SweepText, N: number, K: number): string => {
    const k = `${t.id}|${N}|${K}`;
    let p = prints.get(k);
    if (p === undefined) {
      p = recordPrint({
        ids: t.ids.slice(0, N),
        K,
        seed: seedFor(t),
        weightsHash: modelId.weightsHash,
        options: cramOpts,
      });
      prints.set(k, p);
    }
    return p;
  };
  const keyOf = (t: SweepText, N: number, K: number) => ({ model: modelId.id, set, id: t.id, N, K });
  const done = (t: SweepText, N: number, K: number) => file.get(keyOf(t, N, K), printOf(t, N, K));

  const cells = texts
    .flatMap((t) => lengths.flatMap((N) => Ks.map((K) => ({ t, N, K }))))
    .filter(({ t, N }) => t.ids.length >= N);
  const resumed = cells.filter(({ t, N, K }) => done(t, N, K)).length;
  const stale = cells.filter(
    ({ t, N, K }) => !done(t, N, K) && file.stale(keyOf(t, N, K), printOf(t, N, K)) > 0,
  ).length;
  if (resumed) log(`resuming: ${resumed} records already in ${file.file}`);
  if (stale)
    log(
      `${stale} records in ${file.file} were made with other texts or options (or an older version): recomputing them`,
    );

  for (const K of Ks) {
    for (const N of lengths) {
      file.reload(); // another process may share the run folder (e.g. one sweeping the lengths in reverse)
      const todo = texts.filter((t) => t.ids.length >= N && !done(t, N, K));
      const short = texts.filter((t) => t.ids.length < N).length;
      if (short) log(`N=${N}: ${short} texts are shorter and are left out`);
      for (let c = 0; c < todo.length; c += size) {
        const part = todo.slice(c, c + size);
        log(`K=${K} N=${N}: cramming ${part.length} texts (${c + part.length}/${todo.length})`);
        await cram(
          model,
          part.map((t) => t.ids.slice(0, N)),
          {
            ...cramOpts,
            onProgress,
            K,
            seed: part.map(seedFor),
            onText: async (r) => {
              const t = part[r.index];
              const ids = t.ids.slice(0, N);
              const text = decode?.(ids);
              const m = await measure(model, ids, r, t.id, undefined, { text });
              file.add({
                kind: 'cram',
                ...m,
                id: t.id,
                model: modelId.id,
                weights: modelId.weightsHash.slice(0, 16),
                set,
                seed: seedFor(t),
                fingerprint: printOf(t, N, K),
                maxSteps: cramOpts.maxSteps ?? CRAM_DEFAULTS.maxSteps,
                patience: cramOpts.patience ?? CRAM_DEFAULTS.patience,
                ...(cramOpts.margin ? { margin: cramOpts.margin } : {}),
                warmStart: false,
                ...(text !== undefined ? { text } : {}),
                ...(saveMem ? { mem: encodeMem(r.bestMem) } : {}),
              });
            },
          },
        );
      }
    }
  }
  const grid = cells.map(({ t, N, K }) => done(t, N, K)).filter((r): r is CramRecord => r !== undefined);

  const maxN = Math.max(...lengths);
  const startN = Math.min(...lengths);
  const bisectPrint = (t: SweepText, K: number) => fingerprint({ grid: printOf(t, maxN, K), startN, maxN });
  const byId = new Map(texts.map((t) => [t.id, t]));
  const bis = readLines<BisectRecord>(bisectFile).filter(
    (r) => byId.has(r.id) && bisectPrint(byId.get(r.id)!, r.K) === r.fingerprint,
  );
  if (bisect) {
    const have = new Set(bis.map((r) => `${r.id}|${r.K}`));
    for (const K of Ks) {
      const todo = texts.filter((t) => !have.has(`${t.id}|${K}`));
      for (let c = 0; c < todo.length; c += size) {
        const part = todo.slice(c, c + size);
        log(`K=${K}: bisecting capacity of ${part.length} texts (N ≤ ${maxN})`);
        const found = await capacitySearch(
          model,
          part.map((t) => t.ids),
          { ...cramOpts, onProgress, K, maxN, startN, seed: part.map(seedFor) },
        );
        for (const [j, f] of found.entries()) {
          const t = part[j];
          const mine = grid.filter((r) => r.id === t.id && r.K === K);
          const rec: BisectRecord = {
            kind: 'bisect',
            id: t.id,
            K,
            capacity: f.capacity,
            censored: f.censored,
            gridLargestDecoded: mine.length ? Math.max(0, ...mine.filter((r) => r.decoded).map((r) => r.N)) : null,
            totalSteps: f.totalSteps,
            seconds: f.seconds,
            attempts: f.attempts,
            fingerprint: bisectPrint(t, K),
          };
          appendLine(bisectFile, rec);
          bis.push(rec);
        }
      }
    }
  }
  return { grid, bisect: bis };
}
