// Capacity sweeps into a run folder:
//   <run>/config.json     what was asked (model, weights hash, lengths, K, options)
//   <run>/results.jsonl   one JSON line per finished (text, N, K), appended and fsync'ed as it finishes
//   <run>/bisect.jsonl    one line per (text, K) bisection result (with --bisect)
// Resuming skips every record already in the files, so a killed run loses no finished record.
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

/** Make sure the next append starts on a fresh line (after a partial line from a kill). */
function endLine(file: string): void {
  if (!fs.existsSync(file)) return;
  const text = fs.readFileSync(file, 'utf8');
  if (text.length && !text.endsWith('\n')) fs.appendFileSync(file, '\n');
}

export const gridKey = (id: string, N: number, K: number): string => `${id}|${N}|${K}`;

export async function capacitySweep(model: CausalLM, texts: SweepText[], o: SweepOptions): Promise<{ grid: GridRecord[]; bisect: BisectRecord[] }> {
  if (!texts.length) throw new CramError('no texts for the sweep');
  if (!o.lengths.length || o.lengths.some((n) => !Number.isInteger(n) || n < 2)) throw new CramError(`lengths must be integers ≥ 2, got ${o.lengths.join(',')}`);
  if (!o.Ks.length || o.Ks.some((k) => !Number.isInteger(k) || k < 1)) throw new CramError(`mem counts must be positive integers, got ${o.Ks.join(',')}`);
  const log = o.log ?? ((s: string) => console.log(s));
  fs.mkdirSync(o.runDir, { recursive: true });
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
  endLine(gridFile);
  endLine(bisectFile);
  // One record per (text, N, K), the first written (two processes can race on one group).
  const have = new Set<string>();
  const grid = readRecords<GridRecord>(gridFile).filter((r) => !have.has(gridKey(r.id, r.N, r.K)) && Boolean(have.add(gridKey(r.id, r.N, r.K))));
  if (have.size) log(`resuming: ${have.size} records already in ${gridFile}`);
  const base = seed ?? 0;
  const size = batch ?? texts.length;

  for (const K of Ks) {
    for (const N of lengths) {
      // Another process may share the run folder (e.g. one sweeping the lengths in reverse): re-read.
      for (const r of readRecords<GridRecord>(gridFile)) {
        if (!have.has(gridKey(r.id, r.N, r.K))) {
          have.add(gridKey(r.id, r.N, r.K));
          grid.push(r);
        }
      }
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
              const rec: GridRecord = { kind: 'grid', ...m, id: t.id, seed: base + i };
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

  const bis = readRecords<BisectRecord>(bisectFile);
  if (bisect) {
    const done = new Set(bis.map((r) => `${r.id}|${r.K}`));
    const maxN = Math.max(...lengths);
    for (const K of Ks) {
      const todo = texts.map((t, i) => ({ t, i })).filter(({ t }) => !done.has(`${t.id}|${K}`));
      for (let c = 0; c < todo.length; c += size) {
        const part = todo.slice(c, c + size);
        log(`K=${K}: bisecting capacity of ${part.length} texts (N ≤ ${maxN})`);
        const found = await capacitySearch(model, part.map(({ t }) => t.ids), { ...cramOpts, onProgress, K, maxN, startN: Math.min(...lengths), seed: part.map(({ i }) => base + i) });
        for (const [j, f] of found.entries()) {
          const id = part[j].t.id;
          const decodedNs = grid.filter((r) => r.id === id && r.K === K && r.decoded).map((r) => r.N);
          const rec: BisectRecord = {
            kind: 'bisect', id, K, capacity: f.capacity, censored: f.censored,
            gridLargestDecoded: grid.some((r) => r.id === id && r.K === K) ? Math.max(0, ...decodedNs) : null,
            totalSteps: f.totalSteps, seconds: f.seconds, attempts: f.attempts,
          };
          appendRecord(bisectFile, rec);
          bis.push(rec);
        }
      }
    }
  }
  return { grid, bisect: bis };
}
