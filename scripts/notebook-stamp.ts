// What a committed notebook's outputs were made from, so a cheap test (no re-execution) can tell
// when they are stale. The stamp, in the notebook's metadata.cramlab, hashes: the notebook's own cell
// sources, every src/ file its cells import (followed through relative imports), the C engine those
// files load (native/src) and the repository's datasets/ and models/ it reads. Outputs never enter
// it: a regeneration that prints other timings is still current.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

/** The command that regenerates committed notebooks (README and the staleness message name it). */
export const COMMIT_COMMAND = 'npm run notebooks:commit --';

export interface Stamp {
  /** The budget the outputs were made at. */
  budget: string;
  /** Hash over everything in `files` (and the cells). */
  inputs: string;
  /** Per input (repository-relative path, or '<cells>'): a short hash, to say what changed. */
  files: Record<string, string>;
}

const short = (s: string | Buffer) => createHash('sha256').update(s).digest('hex').slice(0, 16);
const text = (x: unknown) => (Array.isArray(x) ? x.join('') : String(x ?? ''));

/** The cells as a reader writes them: type and source, nothing an execution adds. */
export function cellsHash(nb: any): string {
  return short(JSON.stringify((nb.cells ?? []).map((c: any) => [c.cell_type, text(c.source)])));
}

const IMPORT = /(?:\bfrom\s+|\brequire\(\s*|\bimport\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

/** A relative import as Node + tsx resolve it (x.ts, x/index.ts), or undefined outside the repo. */
function resolveTs(fromDir: string, spec: string): string | undefined {
  const base = path.resolve(fromDir, spec);
  for (const f of [base, `${base}.ts`, path.join(base, 'index.ts')])
    if (fs.existsSync(f) && fs.statSync(f).isFile() && f.startsWith(ROOT + path.sep)) return f;
  return undefined;
}

/** Every repository file reachable from the notebook's cells through relative imports. */
function importClosure(nb: any, nbDir: string): string[] {
  const seen = new Set<string>();
  const visit = (source: string, dir: string) => {
    for (const m of source.matchAll(IMPORT)) {
      const f = resolveTs(dir, m[1]);
      // Code only: a JSON import is package.json's version, which decides no output.
      if (!f?.endsWith('.ts') || seen.has(f)) continue;
      seen.add(f);
      visit(fs.readFileSync(f, 'utf8'), path.dirname(f));
    }
  };
  for (const c of nb.cells ?? []) if (c.cell_type === 'code') visit(text(c.source), nbDir);
  return [...seen];
}

/** Files under these folders that git tracks (a walk when git is not there). */
function trackedUnder(dirs: string[]): string[] {
  const r = spawnSync('git', ['ls-files', '-z', '--', ...dirs], { cwd: ROOT, encoding: 'utf8' });
  if (r.status === 0 && r.stdout)
    return r.stdout
      .split('\0')
      .filter(Boolean)
      .map((f) => path.join(ROOT, f))
      .filter((f) => fs.existsSync(f));
  const out: string[] = [];
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.isFile()) out.push(f);
    }
  };
  for (const d of dirs) walk(path.join(ROOT, d));
  return out;
}

const read = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

/** The stamp of notebook `file` (its JSON `nb`) as the working tree stands now. */
export function currentStamp(file: string, budget: string, nb: any = read(file)): Stamp {
  const code = importClosure(nb, path.dirname(path.resolve(file)));
  const engine = code.some((f) => f.includes(`${path.sep}src${path.sep}native${path.sep}`))
    ? trackedUnder(['native/src'])
    : [];
  const data = trackedUnder(['datasets', 'models']);
  const files: Record<string, string> = { '<cells>': cellsHash(nb) };
  for (const f of [...new Set([...code, ...engine, ...data])].sort())
    files[path.relative(ROOT, f).split(path.sep).join('/')] = short(fs.readFileSync(f));
  return { budget, inputs: short(JSON.stringify(files)), files };
}

/**
 * Why the committed `file` is not current, in one line, or undefined when it is. `budget`: the one
 * committed notebooks are made at (DEFAULT_BUDGET).
 */
export function staleness(file: string, budget: string, nb: any = read(file)): string | undefined {
  const rel = path.relative(ROOT, path.resolve(file));
  const fix = `run ${COMMIT_COMMAND} ${rel}`;
  const stamp: Stamp | undefined = nb.metadata?.cramlab;
  if (!stamp?.inputs) return `${rel} has no committed outputs (no metadata.cramlab stamp): ${fix}`;
  if (stamp.budget !== budget)
    return `${rel} holds outputs of the '${stamp.budget}' budget, not the default '${budget}': ${fix}`;
  const now = currentStamp(file, budget, nb);
  if (now.inputs === stamp.inputs) return undefined;
  const changed = Object.keys({ ...now.files, ...stamp.files }).filter((k) => now.files[k] !== stamp.files[k]);
  const what = changed[0] === '<cells>' ? 'its cells' : changed[0];
  const more = changed.length > 1 ? ` and ${changed.length - 1} more input(s)` : '';
  return `${rel} is stale: ${what}${more} changed since its outputs were made; ${fix}`;
}
