// Execute the workbook headless through the tslab kernel and check what came out:
//   node --import tsx scripts/run-notebooks.ts [notebooks/01-*.ipynb ...]   (default: all of notebooks/)
//   npm run notebooks:commit [-- notebooks/01-*.ipynb ...]   re-make the committed notebooks' outputs
// Fails when a cell errs (an error output, a kernel error reply, an unhandled rejection printed
// to stderr) or when a notebook shows no Plotly figure with data. Executed copies go to
// runs/notebooks/<budget>/ (CRAMLAB_BUDGET, default ci). With --commit the budget is the default one
// (DEFAULT_BUDGET), the workbook's run folder starts empty, and each notebook that ran clean is
// written back over notebooks/ with its outputs (scripts/notebook-outputs.ts) and the stamp of what
// made them (scripts/notebook-stamp.ts; test/notebooks.test.ts fails when it is stale).
// CRAMLAB_CELL_TIMEOUT: seconds a cell may run (default 900; the small budget needs more).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_BUDGET, SMOKE_TEST } from '../src/workbook/budget';
import { writeFileAtomic } from '../src/io/write';
import { forCommit } from './notebook-outputs';
import { currentStamp } from './notebook-stamp';

const ROOT = path.resolve(__dirname, '..');
const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

/** The Python that has nbclient: CRAMLAB_PYTHON, python3, or Debian's /usr/bin/python3. */
export function findPython(): string | undefined {
  const candidates = [process.env.CRAMLAB_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[];
  return candidates.find(
    (p) => spawnSync(p, ['-c', 'import nbclient, jupyter_client'], { stdio: 'ignore' }).status === 0,
  );
}

/** Where scripts/setup-jupyter.sh registers this checkout's own tslab kernel. */
export const LOCAL_JUPYTER = path.join(ROOT, '.jupyter', 'share', 'jupyter');

/** The environment Jupyter runs in: this checkout's kernel first (JUPYTER_PATH outranks user and system kernels). */
export function jupyterEnv(): NodeJS.ProcessEnv {
  const prior = process.env.JUPYTER_PATH;
  return {
    ...process.env,
    // Headless runs (CI, the tests) are the ci smoke test unless told otherwise; a notebook opened
    // in Jupyter defaults to the small budget (src/workbook/budget.ts DEFAULT_BUDGET).
    CRAMLAB_BUDGET: process.env.CRAMLAB_BUDGET ?? 'ci',
    JUPYTER_PATH: prior ? `${LOCAL_JUPYTER}${path.delimiter}${prior}` : LOCAL_JUPYTER,
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
  };
}

/** Why the notebooks cannot run here, or undefined when they can. */
export function kernelProblem(): string | undefined {
  const py = findPython();
  if (!py)
    return 'no python3 with nbclient found: install jupyter-nbconvert python3-nbclient python3-ipykernel (Debian) and run scripts/setup-jupyter.sh';
  const r = spawnSync(py, ['-m', 'jupyter_client.kernelspecapp', 'list', '--json'], {
    encoding: 'utf8',
    env: jupyterEnv(),
  });
  const specs = r.status === 0 ? (JSON.parse(r.stdout).kernelspecs ?? {}) : {};
  if (!specs.tslab) return `the tslab Jupyter kernel is not registered for ${py}: run scripts/setup-jupyter.sh`;
  // A kernel registered by another checkout (since deleted or moved) starts a tslab that is not there.
  const binary: string | undefined = specs.tslab.spec?.argv?.[0];
  if (binary && path.isAbsolute(binary) && !fs.existsSync(binary)) {
    return `the tslab kernel at ${specs.tslab.resource_dir} starts ${binary}, which does not exist (registered from another checkout?): run scripts/setup-jupyter.sh`;
  }
  return undefined;
}

export interface NotebookReport {
  name: string;
  seconds: number;
  problems: string[];
  plotlyFigures: number;
  cellSeconds: number[];
}

const text = (x: unknown) => (Array.isArray(x) ? x.join('') : String(x ?? ''));

/** Problems in an executed notebook (JSON as nbformat writes it). */
export function checkExecuted(nb: any): { problems: string[]; plotlyFigures: number } {
  const problems: string[] = [];
  let plotlyFigures = 0;
  (nb.cells ?? []).forEach((cell: any, i: number) => {
    if (cell.cell_type !== 'code') return;
    const where = `cell ${i + 1} (${text(cell.source).split('\n')[0].slice(0, 60)})`;
    const stderr = (cell.outputs ?? [])
      .filter((o: any) => o.output_type === 'stream' && o.name === 'stderr')
      .map((o: any) => text(o.text))
      .join('');
    if (cell.metadata?.cramlab_error)
      problems.push(
        `${where} failed: ${stderr.trim().split('\n').slice(0, 6).join(' | ') || cell.metadata.cramlab_error}`,
      );
    for (const o of cell.outputs ?? []) {
      if (o.output_type === 'error') problems.push(`${where}: ${o.ename}: ${o.evalue}`);
      const fig = o.data?.[PLOTLY_MIME];
      if (fig && Array.isArray(fig.data) && fig.data.some((t: any) => (t.x?.length ?? 0) > 0 || (t.y?.length ?? 0) > 0))
        plotlyFigures++;
    }
    if (!cell.metadata?.cramlab_error && /UnhandledPromiseRejection|UncaughtException|\bError:/.test(stderr)) {
      problems.push(`${where} printed an error: ${stderr.trim().split('\n').slice(0, 4).join(' | ')}`);
    }
  });
  if (plotlyFigures === 0) problems.push('no Plotly figure with data in the outputs');
  return { problems, plotlyFigures };
}

/**
 * Figures and tables of an executed `ci` notebook that do not say they are a smoke test: each Plotly
 * title must start with SMOKE_TEST, and each HTML table must follow the label (src/workbook/labelled).
 */
export function unlabelledSmoke(nb: any): string[] {
  const out: string[] = [];
  (nb.cells ?? []).forEach((cell: any, i: number) => {
    let labelled = false;
    for (const o of cell.outputs ?? []) {
      const fig = o.data?.[PLOTLY_MIME];
      const title = String(fig?.layout?.title?.text ?? fig?.layout?.title ?? '');
      if (fig && !title.startsWith(SMOKE_TEST)) out.push(`cell ${i + 1}: figure '${title}'`);
      if (/<table/.test(text(o.data?.['text/html'])) && !labelled)
        out.push(`cell ${i + 1}: a table without the smoke-test label`);
      labelled = text(o.data?.['text/markdown']).includes(SMOKE_TEST);
    }
  });
  return out;
}

/** Execute one notebook into outDir and check it. */
export function runNotebook(file: string, outDir: string, timeoutS = 900): NotebookReport {
  const py = findPython();
  if (!py) throw new Error('no python3 with nbclient: run scripts/setup-jupyter.sh');
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, path.basename(file));
  fs.rmSync(out, { force: true });
  const t0 = Date.now();
  const r = spawnSync(py, [path.join(ROOT, 'scripts', 'nbrun.py'), file, out, 'tslab', String(timeoutS)], {
    encoding: 'utf8',
    env: jupyterEnv(),
    maxBuffer: 64 << 20,
  });
  const seconds = (Date.now() - t0) / 1000;
  const name = path.basename(file);
  if (r.status !== 0 || !fs.existsSync(out)) {
    const err = (r.stderr || '')
      .split('\n')
      .filter((l) => l.trim() && !/Debugger|frozen_modules|PYDEVD/.test(l))
      .slice(-6)
      .join(' | ');
    return {
      name,
      seconds,
      problems: [`the notebook did not run to the end: ${err}`],
      plotlyFigures: 0,
      cellSeconds: [],
    };
  }
  const nb = JSON.parse(fs.readFileSync(out, 'utf8'));
  const cellSeconds = nb.cells
    .filter((c: any) => c.cell_type === 'code')
    .map((c: any) => c.metadata?.cramlab_seconds ?? 0);
  return { name, seconds, cellSeconds, ...checkExecuted(nb) };
}

/** Run `files` at the default budget and write each clean one back with its outputs and stamp. */
async function commit(files: string[]): Promise<number> {
  const budgetName = process.env.CRAMLAB_BUDGET ?? DEFAULT_BUDGET;
  process.env.CRAMLAB_BUDGET = budgetName;
  const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-nbcommit-'));
  process.env.CRAMLAB_WORKBOOK_RUNS = fresh;
  const outDir = path.join(ROOT, 'runs', 'notebooks', budgetName);
  const { openRenderer } = require('../src/plots/render') as typeof import('../src/plots/render');
  const renderer = await openRenderer();
  let failed = 0;
  try {
    for (const file of files) {
      const stamp = currentStamp(file, budgetName);
      const rep = runNotebook(file, outDir, Number(process.env.CRAMLAB_CELL_TIMEOUT ?? 1800));
      if (!rep.problems.length && currentStamp(file, budgetName).inputs !== stamp.inputs)
        rep.problems.push('its cells or the code it imports changed while it ran: run it again');
      const rel = path.relative(ROOT, file);
      if (rep.problems.length) {
        failed++;
        console.log(`FAIL ${rel}  ${rep.seconds.toFixed(0)} s (left as it was)`);
        for (const p of rep.problems) console.log(`     ${p}`);
        continue;
      }
      const nb = await forCommit(JSON.parse(fs.readFileSync(path.join(outDir, rep.name), 'utf8')), stamp, renderer);
      const json = JSON.stringify(nb, null, 1) + '\n';
      writeFileAtomic(file, json);
      console.log(
        `ok   ${rel}  ${rep.seconds.toFixed(0)} s at the ${budgetName} budget, ${rep.plotlyFigures} figures, ${(json.length / 1024).toFixed(0)} KiB written`,
      );
    }
  } finally {
    await renderer.close();
    fs.rmSync(fresh, { recursive: true, force: true });
  }
  return failed;
}

async function main(): Promise<void> {
  const problem = kernelProblem();
  if (problem) {
    console.error(`run-notebooks: ${problem}`);
    process.exit(2);
  }
  const args = process.argv.slice(2).filter((a) => a !== '--commit');
  const files = (
    args.length
      ? args
      : fs
          .readdirSync(path.join(ROOT, 'notebooks'))
          .filter((f) => /^\d\d-.*\.ipynb$/.test(f))
          .sort()
          .map((f) => path.join('notebooks', f))
  ).map((f) => path.resolve(f));
  if (process.argv.includes('--commit')) {
    const failed = await commit(files);
    console.log(`${files.length - failed}/${files.length} notebooks written with their outputs`);
    process.exit(failed ? 1 : 0);
  }
  const outDir = path.join(ROOT, 'runs', 'notebooks', process.env.CRAMLAB_BUDGET ?? 'ci');
  let failed = 0;
  for (const file of files) {
    const rep = runNotebook(file, outDir, Number(process.env.CRAMLAB_CELL_TIMEOUT ?? 900));
    const ok = rep.problems.length === 0;
    if (!ok) failed++;
    console.log(
      `${ok ? 'ok  ' : 'FAIL'} ${rep.name}  ${rep.seconds.toFixed(0)} s  ${rep.plotlyFigures} Plotly figures`,
    );
    for (const p of rep.problems) console.log(`     ${p}`);
  }
  console.log(
    `${files.length - failed}/${files.length} notebooks ok; executed copies in ${path.relative(process.cwd(), outDir)}`,
  );
  process.exit(failed ? 1 : 0);
}

if (require.main === module)
  main().catch((e) => {
    console.error(`run-notebooks: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  });
