// npm run bench:queue — a distributed sweep against a local one on this machine, and the queue's own
// cost per job. The W1-like sweep: stories260K, the first 16 samples, K = 1, N = 16 and 32, the
// authors' stopping rules (≤ --max-steps, default 5000; patience 2000), jobs of --batch texts:
//   local   `cramlab capacity` in one process (OMP_NUM_THREADS = --local-threads, default 2)
//   queue   the same command with --queue, on a private redis-server (loopback, AOF on) and
//           --workers `cramlab worker` processes (OMP_NUM_THREADS=1 each, default 2)
// Each wall time is the whole command: process start, model load, every job, the records written.
// tokens/s = Σ over records of steps × (N + K) / wall (tokens through the model per second).
// Then the queue's overhead: --empty jobs with no texts through the running workers; ms per job =
// (wall − one poll interval) / jobs. Prints uptime before and after (the machine is shared).
// Options: --max-steps S, --batch B (default 4), --workers W, --local-threads T, --empty M (default 50),
//          --out FILE (JSON; default bench/results/<date>-queue.json)
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/io/checkpoint';
import { SweepPlan } from '../src/runs/plan';
import { queueExecutor } from '../src/runs/queue';
import { startRedis } from '../test/helpers/redis';

const argv = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const ROOT = path.resolve(__dirname, '..');
const SHARED = path.resolve(ROOT, '..', 'shared');
const MODEL = path.join(process.env.CRAMLAB_MODELS ?? path.join(SHARED, 'models'), 'stories260K');
const SAMPLES = path.join(SHARED, 'datasets', 'stories260k-samples.json');
const CLI = path.join(ROOT, 'bin', 'cramlab.js');
const maxSteps = opt('max-steps', '5000');
const batch = opt('batch', '4');
const nWorkers = Number(opt('workers', '2'));
const localThreads = opt('local-threads', '2');
const empty = Number(opt('empty', '50'));
const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();

function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; wallS: number }> {
  const t0 = performance.now();
  const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  return new Promise((r) => p.on('exit', (code) => r({ code, out, wallS: (performance.now() - t0) / 1000 })));
}

function tokensThrough(runDir: string): { records: number; tokens: number } {
  const rs = fs
    .readFileSync(path.join(runDir, 'results.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  return { records: rs.length, tokens: rs.reduce((s, r) => s + r.steps * (r.N + r.K), 0) };
}

async function main() {
  if (!fs.existsSync(MODEL) || !fs.existsSync(SAMPLES)) {
    console.log(`skipped: needs ${MODEL} and ${SAMPLES}`);
    return;
  }
  const start = uptime();
  console.log(`start: ${start}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-bench-queue-'));
  const sweep = (out: string) => [
    'capacity',
    '--model',
    MODEL,
    '--texts',
    SAMPLES,
    '--count',
    '16',
    '--mem',
    '1',
    '--lengths',
    '16,32',
    '--max-steps',
    maxSteps,
    '--patience',
    '2000',
    '--batch',
    batch,
    '--quiet',
    '--out',
    out,
  ];
  const local = await run(sweep(path.join(tmp, 'local')), { OMP_NUM_THREADS: localThreads });
  if (local.code !== 0) throw new Error(`local sweep failed: ${local.out}`);
  const lt = tokensThrough(path.join(tmp, 'local'));

  const redis = await startRedis();
  const workers = Array.from({ length: nWorkers }, () =>
    spawn(process.execPath, [CLI, 'worker', '--queue', redis.url, '--models', path.dirname(MODEL)], {
      cwd: ROOT,
      env: { ...process.env, OMP_NUM_THREADS: '1' },
      stdio: 'ignore',
    }),
  );
  try {
    // The queue's wall time includes the workers' start (they start with the coordinator).
    const queued = await run([...sweep(path.join(tmp, 'queue')), '--queue', redis.url], { OMP_NUM_THREADS: '1' });
    if (queued.code !== 0) throw new Error(`queued sweep failed: ${queued.out}`);
    const qt = tokensThrough(path.join(tmp, 'queue'));

    // Empty jobs through the warm workers: the queue's own cost.
    const m = await loadModel(MODEL);
    const ref = { id: MODEL, weightsHash: m.weightsHash };
    const plan = new SweepPlan([{ id: 'x', ids: [1, 2] }], { lengths: [2], Ks: [1], model: ref, options: {} });
    const units = Array.from({ length: empty }, (_, i) => ({
      ...plan.cramUnits(plan.cells)[0],
      K: i + 1,
      texts: [],
      prints: [],
    }));
    const pollMs = 250;
    const exec = queueExecutor(redis.url, { runDir: path.join(tmp, 'empty'), log: () => {}, pollMs });
    await exec.adopt!(new Set(), () => {});
    const t0 = performance.now();
    const failed = await exec.run(units, () => {});
    const emptyS = (performance.now() - t0) / 1000;
    await exec.close!();
    if (failed.length) throw new Error(`empty jobs failed: ${failed[0].reason}`);

    const end = uptime();
    const result = {
      date: new Date().toISOString(),
      host: os.hostname(),
      cpus: os.cpus().length,
      uptimeStart: start,
      uptimeEnd: end,
      sweep: {
        model: 'stories260K',
        texts: 16,
        K: 1,
        lengths: [16, 32],
        maxSteps: Number(maxSteps),
        patience: 2000,
        batch: Number(batch),
      },
      local: { threads: Number(localThreads), wallS: local.wallS, ...lt, tokensPerS: lt.tokens / local.wallS },
      queue: { workers: nWorkers, threadsEach: 1, wallS: queued.wallS, ...qt, tokensPerS: qt.tokens / queued.wallS },
      wallRatio: queued.wallS / local.wallS,
      tokensPerSRatio: qt.tokens / queued.wallS / (lt.tokens / local.wallS),
      emptyJobs: {
        jobs: empty,
        workers: nWorkers,
        pollMs,
        wallS: emptyS,
        msPerJob: ((emptyS - pollMs / 1000) * 1000) / empty,
      },
    };
    console.log(
      `local  (1 process, OMP_NUM_THREADS=${localThreads}): ${local.wallS.toFixed(1)} s, ${lt.records} records, ${result.local.tokensPerS.toFixed(0)} tokens/s`,
    );
    console.log(
      `queue  (${nWorkers} workers, OMP_NUM_THREADS=1 each): ${queued.wallS.toFixed(1)} s, ${qt.records} records, ${result.queue.tokensPerS.toFixed(0)} tokens/s`,
    );
    console.log(
      `ratio  queue/local: wall ×${result.wallRatio.toFixed(2)}, tokens/s ×${result.tokensPerSRatio.toFixed(2)}`,
    );
    console.log(
      `empty jobs: ${empty} in ${emptyS.toFixed(2)} s through ${nWorkers} workers: ${result.emptyJobs.msPerJob.toFixed(1)} ms per job`,
    );
    console.log(`end: ${end}`);
    const out = opt('out', path.join(ROOT, 'bench', 'results', `${result.date.slice(0, 10)}-queue.json`));
    fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    console.log(`→ ${path.relative(ROOT, out)}`);
  } finally {
    for (const w of workers) w.kill('SIGKILL');
    await redis.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench:queue: ${(e as Error).message}`);
  process.exit(1);
});
