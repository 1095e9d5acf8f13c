// Capacity sweeps into a run folder:
//   <run>/config.json     what was asked (model, weights hash, lengths, K, options)
//   <run>/results.jsonl   one JSON line per finished (text, N, K), appended and fsync'ed as it finishes
//   <run>/bisect.jsonl    one line per (text, K) bisection result (with --bisect)
// Resuming skips every record already in the files, so a killed run loses no finished record.
// Each record carries a fingerprint of its text and of every option that changes its result; a
// record whose fingerprint differs from this run's (or that has none, from older versions) is stale
// and recomputed. A .lock file (with the pid) keeps a second process off the folder.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { measure, type TextMetrics } from '../metrics/text';
import type { CausalLM } from '../models/types';
import { capacitySearch, type CapacityAttempt } from './capacity';
import { cram, CramError, type CramOptions } from './cram';

export interface SweepText {
  id: string;
  ids: number[];
}

export interface GridRecord extends TextMetrics {
  kind: 'grid';
  id: string;
  seed: number;
  /** Short sha256 of the token ids and every option that changes the result. */
  fingerprint: string;
  bestMem?: number[];
}

export interface BisectRecord {
  kind: 'bisect';
  id: string;
  K: number;
  capacity: number;
  censored: boolean;
  /** Largest grid N this text decoded (null when no grid record for it). */
  gridLargestDecoded: number | null;
  totalSteps: number;
  seconds: number;
  attempts: CapacityAttempt[];
  fingerprint: string;
}

export interface SweepOptions extends Omit<CramOptions, 'K' | 'seed' | 'initMem' | 'onText'> {
  runDir: string;
  lengths: number[];
  Ks: number[];
  bisect?: boolean;
  /** Texts per cram call (default: all of them). */
  batch?: number;
  /** Base seed: text i (its place in the list) uses seed + i at every N and K. */
  seed?: number;
  saveMem?: boolean;
  /** Identifies the model in config.json; a run folder refuses another model. */
  model: { id: string; weightsHash: string };
  log?: (line: string) => void;
}

/** Append one JSON line and push it to disk before going on. */
export function appendRecord(file: string, record: object): void {
  const fd = fs.openSync(file, 'a');
  try {
    fs.writeSync(fd, JSON.stringify(record) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Every complete JSON line of a .jsonl file (a line cut short by a kill is skipped). */
export function readRecords<T>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  const out: T[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      /* partial last line of a killed run */
    }
  }
  return out;
}

/** Cut a torn last line (a crash mid-write) so the next append starts a clean line; true when cut. */
export function repairTail(file: string): boolean {
  if (!fs.existsSync(file)) return false;
  const buf = fs.readFileSync(file);
  if (!buf.length || buf[buf.length - 1] === 0x0a) return false;
  fs.truncateSync(file, buf.lastIndexOf(0x0a) + 1);
  return true;
}

/** Short sha256 of everything that decides a record's result. */
export function fingerprint(parts: object): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/** Take <runDir>/.lock for this process (a lock left by a dead pid is taken over); returns its release. */
export function lockRunDir(runDir: string): () => void {
  const file = path.join(runDir, '.lock');
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      break;
    } catch (e: any) {
      if (e.code !== 'EEXIST') throw e;
    }
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new CramError(`${runDir} is in use by process ${pid} (${file}); wait for it to finish or use another --out`);
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone
  }
  const release = (): void => {
    try {
      if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.rmSync(file);
    } catch {
      /* already gone */
    }
    process.off('exit', release);
  };
  process.on('exit', release);
  return release;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e.code === 'EPERM'; // exists, owned by someone else
  }
}

export const gridKey = (id: string, N: number, K: number): string => `${id}|${N}|${K}`;

export async function capacitySweep(model: CausalLM, texts: SweepText[], o: SweepOptions): Promise<{ grid: GridRecord[]; bisect: BisectRecord[] }> {
  if (!texts.length) throw new CramError('no texts for the sweep');
  if (!o.lengths.length || o.lengths.some((n) => !Number.isInteger(n) || n < 2)) throw new CramError(`lengths must be integers ≥ 2, got ${o.lengths.join(',')}`);
  if (!o.Ks.length || o.Ks.some((k) => !Number.isInteger(k) || k < 1)) throw new CramError(`mem counts must be positive integers, got ${o.Ks.join(',')}`);
  const log = o.log ?? ((s: string) => console.log(s));
  fs.mkdirSync(o.runDir, { recursive: true });
  const release = lockRunDir(o.runDir);
  try {
    return await sweepLocked(model, texts, o, log);
  } finally {
    release();
  }
}

async function sweepLocked(model: CausalLM, texts: SweepText[], o: SweepOptions, log: (line: string) => void): Promise<{ grid: GridRecord[]; bisect: BisectRecord[] }> {
  const cfgFile = path.join(o.runDir, 'config.json');
  if (fs.existsSync(cfgFile)) {
    const old = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    if (old.model?.weightsHash && old.model.weightsHash !== o.model.weightsHash) {
      throw new CramError(`${o.runDir} holds a run of model '${old.model.id}' (other weights); use another --out folder`);
    }
  }
  const { runDir, lengths, Ks, bisect, batch, seed, saveMem, model: modelId, log: _log, onProgress, ...cramOpts } = o;
  fs.writeFileSync(cfgFile, JSON.stringify({ model: modelId, lengths, Ks, bisect: !!bisect, batch, seed: seed ?? 0, texts: texts.map((t) => t.id), options: cramOpts, updated: new Date().toISOString() }, null, 2));
  const gridFile = path.join(runDir, 'results.jsonl');
  const bisectFile = path.join(runDir, 'bisect.jsonl');
  for (const f of [gridFile, bisectFile]) if (repairTail(f)) log(`note: cut a torn last line (an interrupted write) from ${f}`);
  const base = seed ?? 0;
  const size = batch ?? texts.length;
  // What decides a result: the text's ids, its seed, K, and the optimiser and stopping options.
  const { lr, beta1, beta2, eps, weightDecay, maxSteps, patience } = cramOpts;
  const optionPrint = { lr, beta1, beta2, eps, weightDecay, maxSteps, patience, weights: modelId.weightsHash };
  const gridPrint = (ids: number[], N: number, K: number, i: number): string => fingerprint({ ids: ids.slice(0, N), K, seed: base + i, ...optionPrint });
  const expected = new Map(texts.flatMap((t, i) => lengths.flatMap((N) => Ks.map((K) => [gridKey(t.id, N, K), gridPrint(t.ids, N, K, i)] as const))));
  // One record per (text, N, K), the first written with this run's fingerprint; others are stale.
  const have = new Set<string>();
  const grid: GridRecord[] = [];
  let stale = 0;
  const take = (r: GridRecord): void => {
    const key = gridKey(r.id, r.N, r.K);
    if (have.has(key)) return;
    if (r.fingerprint !== expected.get(key)) {
      if (expected.has(key)) stale++;
      return;
    }
    have.add(key);
    grid.push(r);
  };
  readRecords<GridRecord>(gridFile).forEach(take);
  if (have.size) log(`resuming: ${have.size} records already in ${gridFile}`);
  if (stale) log(`${stale} records in ${gridFile} were made with other texts or options (or carry no fingerprint): recomputing them`);

  for (const K of Ks) {
    for (const N of lengths) {
      // Another process may share the run folder (e.g. one sweeping the lengths in reverse): re-read.
      readRecords<GridRecord>(gridFile).forEach((r) => !have.has(gridKey(r.id, r.N, r.K)) && take(r));
      const todo = texts.map((t, i) => ({ t, i })).filter(({ t }) => t.ids.length >= N && !have.has(gridKey(t.id, N, K)));
      const short = texts.filter((t) => t.ids.length < N).length;
      if (short) log(`N=${N}: ${short} texts are shorter and are left out`);
      for (let c = 0; c < todo.length; c += size) {
        const part = todo.slice(c, c + size);
        log(`K=${K} N=${N}: cramming ${part.length} texts (${c + part.length}/${todo.length})`);
        await cram(
          model,
          part.map(({ t }) => t.ids.slice(0, N)),
          {
            ...cramOpts,
            onProgress,
            K,
            seed: part.map(({ i }) => base + i),
            onText: async (r) => {
              const { t, i } = part[r.index];
              const m = await measure(model, t.ids.slice(0, N), r, t.id);
              const rec: GridRecord = { kind: 'grid', ...m, id: t.id, seed: base + i, fingerprint: gridPrint(t.ids, N, K, i) };
              if (saveMem) rec.bestMem = Array.from(r.bestMem);
              appendRecord(gridFile, rec);
              grid.push(rec);
              have.add(gridKey(t.id, N, K));
            },
          },
        );
      }
    }
  }

  const maxN = Math.max(...lengths);
  const bisectPrint = (ids: number[], K: number, i: number): string => fingerprint({ ids: ids.slice(0, maxN), K, seed: base + i, startN: Math.min(...lengths), maxN, ...optionPrint });
  const wanted = new Map(texts.flatMap((t, i) => Ks.map((K) => [`${t.id}|${K}`, bisectPrint(t.ids, K, i)] as const)));
  const bis = readRecords<BisectRecord>(bisectFile).filter((r) => r.fingerprint === wanted.get(`${r.id}|${r.K}`));
  if (bisect) {
    const done = new Set(bis.map((r) => `${r.id}|${r.K}`));
    for (const K of Ks) {
      const todo = texts.map((t, i) => ({ t, i })).filter(({ t }) => !done.has(`${t.id}|${K}`));
      for (let c = 0; c < todo.length; c += size) {
        const part = todo.slice(c, c + size);
        log(`K=${K}: bisecting capacity of ${part.length} texts (N ≤ ${maxN})`);
        const found = await capacitySearch(model, part.map(({ t }) => t.ids), { ...cramOpts, onProgress, K, maxN, startN: Math.min(...lengths), seed: part.map(({ i }) => base + i) });
        for (const [j, f] of found.entries()) {
          const { t, i } = part[j];
          const id = t.id;
          const decodedNs = grid.filter((r) => r.id === id && r.K === K && r.decoded).map((r) => r.N);
          const rec: BisectRecord = {
            kind: 'bisect', id, K, capacity: f.capacity, censored: f.censored,
            gridLargestDecoded: grid.some((r) => r.id === id && r.K === K) ? Math.max(0, ...decodedNs) : null,
            totalSteps: f.totalSteps, seconds: f.seconds, attempts: f.attempts, fingerprint: bisectPrint(t.ids, K, i),
          };
          appendRecord(bisectFile, rec);
          bis.push(rec);
        }
      }
    }
  }
  return { grid, bisect: bis };
}
