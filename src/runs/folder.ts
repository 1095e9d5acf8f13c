// A run folder: where experiments keep what they finished, so a re-run (or one after a kill) crams
// only what is missing.
//   <run>/config.json     what was asked (CLI sweeps: model, weights hash, lengths, K, options)
//   <run>/results.jsonl   one CramRecord a line, appended and fsync'ed as each text finishes
//   <run>/bisect.jsonl    one BisectRecord a line (CLI `capacity --bisect`)
//   <run>/.lock           the pid of the process writing the folder
// The CLI, the notebooks and `npm run figures` all read and write folders through this module.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CramError } from '../cram/result';
import { fsErrorMessage, refuseForeignFolder, writeFileAtomic as writeAtomic } from '../io/write';
import { fromStored, recordKey, recordProblem, type CramRecord, type RecordKey, type StoredDefaults } from './record';

/** An fs error as one line naming the file; a full disk or quota says that rerunning resumes (nothing finished is lost). */
export function writeError(file: string, e: any): CramError {
  const full = { ENOSPC: 'no space left on the device', EDQUOT: 'disk quota exceeded' }[e?.code as string];
  return new CramError(
    full
      ? `cannot write ${file}: ${full}; free some and run the same command again to resume`
      : fsErrorMessage(file, e),
  );
}

/**
 * Append one JSON line and push it to disk before going on. A write the disk cannot take whole (a
 * full disk) is cut back off, so the file never ends in half a record, and throws naming the file.
 */
export function appendLine(file: string, record: object): void {
  const bytes = Buffer.from(JSON.stringify(record) + '\n');
  let fd: number | undefined;
  let start = 0;
  try {
    fd = fs.openSync(file, 'a');
    start = fs.fstatSync(fd).size;
    // writeSync may write part of the buffer (a nearly full disk): the rest, or ENOSPC, comes next.
    for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off);
    fs.fsyncSync(fd);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.ftruncateSync(fd, start);
      } catch {
        /* repairTail cuts the torn line on the next run */
      }
    }
    throw writeError(file, e);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** io/write's atomic write (temp file, fsync, rename), its error worded for a run folder. */
export function writeFileAtomic(file: string, text: string): void {
  try {
    writeAtomic(file, text);
  } catch (e) {
    throw writeError(file, e);
  }
}

/** Every complete JSON line of a .jsonl file (a line cut short by a kill, or damaged, is skipped). */
export function readLines<T = unknown>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  const out: T[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      /* partial last line of a killed run: its record gets redone */
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

/** What a run folder may hold: anything else (a model's weights, someone's files) is not ours to write into. */
const RUN_FILES = ['config.json', 'results.jsonl', 'bisect.jsonl', '.lock'];

/** A run folder's config.json: undefined when absent or empty (a write cut short); not JSON: an error naming it. */
export function readRunConfig(runDir: string): Record<string, any> | undefined {
  const file = path.join(runDir, 'config.json');
  if (!fs.existsSync(file)) return undefined;
  const text = fs.readFileSync(file, 'utf8');
  if (!text.trim()) return undefined;
  try {
    const c = JSON.parse(text);
    if (c && typeof c === 'object' && !Array.isArray(c)) return c;
  } catch {
    /* named below */
  }
  throw new CramError(`${file}: not a JSON object (damaged?); fix or delete it to reuse ${runDir}`);
}

/**
 * Take <runDir>/.lock for this process (a lock left by a dead pid is taken over); returns its release.
 * A folder holding anything but a run (a model folder, foreign files) is refused unless `force`.
 */
export function lockRunDir(runDir: string, force = false): () => void {
  refuseForeignFolder(runDir, {
    own: RUN_FILES,
    ours: () => {
      const c = readRunConfig(runDir);
      return c === undefined || ('lengths' in c && 'Ks' in c);
    },
    what: 'a run',
    force,
    hint: 'give another --out folder',
  });
  const file = path.join(runDir, '.lock');
  for (;;) {
    try {
      fs.mkdirSync(runDir, { recursive: true });
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      break;
    } catch (e: any) {
      if (e.code !== 'EEXIST') {
        fs.rmSync(file, { force: true }); // an empty lock from a full disk would block the folder
        throw writeError(file, e);
      }
    }
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new CramError(
        `${runDir} is in use by process ${pid} (${file}); wait for it to finish or use another --out`,
      );
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone
  }
  // An empty config.json is a write cut short (a kill, a full disk): ours now, so drop it to be written afresh.
  const cfg = path.join(runDir, 'config.json');
  if (fs.existsSync(cfg) && !fs.readFileSync(cfg, 'utf8').trim()) fs.rmSync(cfg);
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

/** What config.json of a CLI sweep says about its records (older records lack model and set). */
function folderDefaults(dir: string): StoredDefaults {
  try {
    const c = readRunConfig(dir);
    if (!c) return {};
    return {
      model: c.model?.id,
      weights: typeof c.model?.weightsHash === 'string' ? c.model.weightsHash.slice(0, 16) : undefined,
      set: c.set,
    };
  } catch {
    return {};
  }
}

/** A run folder's results.jsonl: the records in it by key, and add() for new ones. */
export class RecordFile {
  readonly file: string;
  private byKey = new Map<string, CramRecord[]>();
  /** Records that failed validation at the last reload (recordProblem), with the first reason. */
  invalid = { count: 0, first: '' };

  /** `target`: a results.jsonl file or a run folder (its results.jsonl). */
  constructor(target: string, log: (line: string) => void = console.log) {
    this.file = target.endsWith('.jsonl') ? target : path.join(target, 'results.jsonl');
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    if (repairTail(this.file)) log(`note: cut a torn last line (an interrupted write) from ${this.file}`);
    this.reload();
  }

  /** Read what is in the file now (another process may share the folder). */
  reload(): void {
    const d = folderDefaults(path.dirname(this.file));
    this.byKey.clear();
    this.invalid = { count: 0, first: '' };
    for (const x of readLines<any>(this.file)) {
      const problem = x?.kind === 'cram' ? recordProblem(x) : undefined;
      if (problem) {
        if (!this.invalid.count++) this.invalid.first = `${JSON.stringify(x.id)} N=${x.N} K=${x.K}: ${problem}`;
        continue;
      }
      const r = fromStored(x, d);
      if (r) this.put(r);
    }
  }

  private put(r: CramRecord): void {
    const k = recordKey(r);
    const list = this.byKey.get(k);
    if (list) list.push(r);
    else this.byKey.set(k, [r]);
  }

  /** The first record for `key` made with this fingerprint (undefined: none, or only stale ones). */
  get(key: RecordKey, fingerprint: string): CramRecord | undefined {
    return this.byKey.get(recordKey(key))?.find((r) => r.fingerprint === fingerprint);
  }

  /** How many records for `key` there are with another fingerprint (stale: other texts or options). */
  stale(key: RecordKey, fingerprint: string): number {
    return (this.byKey.get(recordKey(key)) ?? []).filter((r) => r.fingerprint !== fingerprint).length;
  }

  /** One record per key (the latest written), stale ones included: what tables read. */
  all(): CramRecord[] {
    return [...this.byKey.values()].map((rs) => rs[rs.length - 1]);
  }

  add(r: CramRecord): void {
    appendLine(this.file, r);
    this.put(r);
  }
}

/** Every record of every results.jsonl under `dir` (recursively). */
export function readRunRecords(dir: string): CramRecord[] {
  if (!fs.existsSync(dir)) return [];
  const out: CramRecord[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...readRunRecords(p));
    else if (entry.name === 'results.jsonl') out.push(...new RecordFile(p).all());
  }
  return out;
}

/**
 * Only the records made with each model's current weights: `weightsOf(model)` gives the current
 * weights hash (undefined when the model cannot be found here: then all its records are kept).
 * A retrained model leaves its predecessor's records in the run folder; mixing them would blend two models.
 */
export function currentRecords(records: CramRecord[], weightsOf: (model: string) => string | undefined): CramRecord[] {
  const current = new Map<string, string | undefined>();
  return records.filter((r) => {
    if (!current.has(r.model)) current.set(r.model, weightsOf(r.model)?.slice(0, 16));
    const want = current.get(r.model);
    return !want || !r.weights || r.weights === want;
  });
}
