// One JSON line per crammed (model, text set, text, N, K): appended and flushed as soon as a text
// finishes, so a re-run (or a run after an interrupt) reads what is done and crams only the rest.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repairTail } from '../cram/sweep';

export interface CramRecord {
  model: string;
  /** First 16 hex digits of the model's weights hash: a retrained model under the same name does not reuse these records. */
  weights?: string;
  /** Text set the text came from ('books', 'unseen', 'random', a file). */
  set: string;
  textId: string;
  /** Tokens crammed (BOS included) and [mem] vectors. */
  N: number;
  K: number;
  /** The crammed text (its first N tokens, decoded), for hover text. */
  text: string;
  bestAccuracy: number;
  /** Correct greedy predictions of N-1, with and without the mem vectors. */
  correct: number;
  correctWithout: number;
  tokenGain: number;
  /** Cross-entropy of the N-1 predictions, total, in bits, without / with the mem vectors. */
  ceWithoutBits: number;
  ceWithBits: number;
  infoGainBits: number;
  steps: number;
  stepsToBest: number;
  status: string;
  seconds: number;
  maxSteps: number;
  patience: number;
  /** Whether the optimisation started from a shorter prefix's best mem (capacity walks). */
  warmStart: boolean;
  /** Best mem, K×d float32 little-endian, base64. */
  mem: string;
  /** Short sha256 of the crammed ids, K, seed, init and stop options and weights (sweep.ts fingerprint); a record without one is stale. */
  fingerprint?: string;
  /** Sampled loss / accuracy curve. */
  curve?: { step: number[]; loss: number[]; accuracy: number[] };
}

export function recordKey(r: Pick<CramRecord, 'model' | 'set' | 'textId' | 'N' | 'K'>): string {
  return `${r.model}|${r.set}|${r.textId}|${r.N}|${r.K}`;
}

export function encodeMem(mem: Float32Array): string {
  return Buffer.from(mem.buffer, mem.byteOffset, mem.byteLength).toString('base64');
}

export function decodeMem(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** A results.jsonl file: the records already in it, and append() for new ones. */
export class RecordFile {
  readonly file: string;
  private byKey = new Map<string, CramRecord>();

  constructor(file: string) {
    this.file = file;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (!fs.existsSync(file)) return;
    // A kill mid-line leaves a torn record: cut it, so the next append is not glued to it (it gets redone).
    if (repairTail(file)) console.log(`note: cut a torn last line (an interrupted write) from ${file}`);
    const content = fs.readFileSync(file, 'utf8');
    const lines = content.split('\n');
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        const r = JSON.parse(line) as CramRecord;
        this.byKey.set(recordKey(r), r);
      } catch {
        // A damaged line: skip it, its record gets redone.
      }
    }
  }

  /** The record for `key`; with `weights`, only one made with those weights (records without a fingerprint match any). */
  get(key: Pick<CramRecord, 'model' | 'set' | 'textId' | 'N' | 'K'>, weights?: string, fingerprint?: string): CramRecord | undefined {
    const r = this.byKey.get(recordKey(key));
    if (r && fingerprint !== undefined && r.fingerprint !== fingerprint) return undefined; // made with other text or options: stale
    return r && weights && r.weights && r.weights !== weights ? undefined : r;
  }

  all(): CramRecord[] {
    return [...this.byKey.values()];
  }

  append(r: CramRecord): void {
    fs.appendFileSync(this.file, JSON.stringify(r) + '\n');
    this.byKey.set(recordKey(r), r);
  }
}

/**
 * Only the records made with each model's current weights: `fingerprint(model)` gives the current
 * weightsHash (undefined when the model cannot be found here: then all its records are kept).
 * A retrained model leaves its predecessor's records in the run folder; mixing them would blend two models.
 */
export function currentRecords(records: CramRecord[], fingerprint: (model: string) => string | undefined): CramRecord[] {
  const current = new Map<string, string | undefined>();
  return records.filter((r) => {
    if (!current.has(r.model)) current.set(r.model, fingerprint(r.model)?.slice(0, 16));
    const want = current.get(r.model);
    return !want || !r.weights || r.weights === want;
  });
}

/** Every record of every results.jsonl under `dir` (recursively). */
export function readRecords(dir: string): CramRecord[] {
  if (!fs.existsSync(dir)) return [];
  const out: CramRecord[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...readRecords(p));
    else if (entry.name.endsWith('.jsonl')) out.push(...new RecordFile(p).all());
  }
  return out;
}
