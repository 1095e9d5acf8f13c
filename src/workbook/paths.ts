// Where the workbook finds models and keeps its run folders, wherever the kernel was started
// (Jupyter starts it in notebooks/, scripts in the repository root).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The cramlab checkout this file belongs to. */
export function repoRoot(): string {
  let dir = __dirname;
  while (dir !== path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'cramlab') return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the cramlab checkout above ${__dirname}`);
}

/** The embedded suite (models/cram-*), smallest first; empty when not trained yet. */
export function suiteModels(): string[] {
  const dir = path.join(repoRoot(), 'models');
  if (!fs.existsSync(dir)) return [];
  const width = (n: string) => Number(/d(\d+)/.exec(n)?.[1] ?? 0);
  return fs
    .readdirSync(dir)
    .filter((n) => n.startsWith('cram-') && fs.existsSync(path.join(dir, n, 'model.safetensors')))
    .sort((a, b) => (a.includes('mamba') ? 1 : 0) - (b.includes('mamba') ? 1 : 0) || width(a) - width(b))
    .map((n) => path.join('models', n));
}

/** A shared model (e.g. 'stories260K') from CRAMLAB_MODELS or ../shared/models, or undefined when absent. */
export function sharedModel(name: string): string | undefined {
  const base = process.env.CRAMLAB_MODELS ?? path.join(repoRoot(), '..', 'shared', 'models');
  const dir = path.join(base, name);
  return fs.existsSync(path.join(dir, 'config.json')) ? dir : undefined;
}

/**
 * A model argument as loadModel takes it: 'models/…' and other relative paths are read from the
 * repository root (notebooks run in notebooks/); Hub ids pass through.
 */
export function modelPath(idOrPath: string): string {
  if (path.isAbsolute(idOrPath)) return idOrPath;
  const local = path.join(repoRoot(), idOrPath);
  if (/^\.{0,2}\//.test(idOrPath) || idOrPath.startsWith('models/') || fs.existsSync(local)) return local;
  return idOrPath;
}

/**
 * runs/workbook/<budget>/<parts...>, created. CRAMLAB_WORKBOOK_RUNS replaces runs/workbook (the
 * notebooks:commit script starts from an empty one, so no record of older code makes an output).
 */
export function runDir(budgetName: string, ...parts: string[]): string {
  const base = process.env.CRAMLAB_WORKBOOK_RUNS ?? path.join(repoRoot(), 'runs', 'workbook');
  const dir = path.join(base, budgetName, ...parts);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** The notebooks' default MODELS: the embedded Llama suite, plus stories260K when it is there. */
export function defaultModels(): string[] {
  return [...suiteModels().filter((m) => !m.includes('mamba')), ...(sharedModel('stories260K') ? ['stories260K'] : [])];
}
