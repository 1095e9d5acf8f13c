// npm run bench: cramlab's cram() and the reference PyTorch loop (../shared/bench/ref_cram.py) side by
// side on fixed workloads, in one invocation (so the machine's load hits both alike).
//   W1  stories260K, K = 1, N = 16 and 32, the first 16 samples, ≤ 5000 steps, patience 2000 (the
//       authors' rules): wall time until every text is done. Reference: --batch 1 (the authors' loop)
//       and --batch 16 (best PyTorch).
//   W2  throughput: a random-init Llama (d 256, 4 layers, vocab 2048), N = 128, 8 texts, 50 steps.
//   W3  throughput at a real size: a random-init Llama of SmolLM2-135M's shape, N = 64, 4 texts,
//       10 steps; seconds per step, peak RSS against the fp32 weights.
//   W4  a random-init GPT-NeoX of Pythia-160M's shape (d 768, 12 layers, 12 heads, rotary_pct 0.25,
//       vocab 50304), N = 80, 4 texts, 10 steps: seconds per step. cramlab only (the torch reference,
//       ../shared/bench/llama_ref.py, is Llama-only).
// Rules: torch runs at 1 and at 2 threads and cramlab is compared with the better of them; every side
// runs in a child process (a crash is a "failed: ..." row, the bench goes on); no claim when the
// machine was busy at the start (load average > 0.5).
// Options: --quick (smoke: W1 2 texts ≤ 50 steps N = 16, W2 2 steps, W3 1 step, W4 1 step), --only W1|W2|W3|W4,
//          --backend wasm|cpu, --engine native|tfjs (CRAMLAB_ENGINE for the cramlab side),
//          --lengths 16,32, --threads 1,2 (torch), --ref-batches 16 (W1 torch batch sizes; default 1 and 16), --no-ref (cramlab only), --ref-only (torch only),
//          --init mean-embedding (adds a W1 run with that init), --w4-steps S (W4 steps), --out FILE, --table FILE.json... (re-print)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { estimateCpuPeakGflops, initBackend, type BackendName } from '../src/backend';
import { greedyGenerate } from '../src/generate';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { measured, reasonOf } from './child';
import { engineName } from './engine';
import { modelShape, type ModelShape } from './shape';
import { W2_CONFIG, W3_CONFIG, W4_CONFIG, writeModelFolder, type GptNeoXConfig, type LlamaConfig } from './w2model';

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const opt = (name: string, def?: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const ROOT = path.resolve(__dirname, '..');
const SHARED = path.resolve(ROOT, '..', 'shared');
const MODELS = process.env.CRAMLAB_MODELS ?? path.join(SHARED, 'models');
const SAMPLES = path.join(SHARED, 'datasets', 'stories260k-samples.json');
const REF = path.join(SHARED, 'bench', 'ref_cram.py');
const WORKER = path.join(ROOT, 'bench', 'worker.ts');
const PYTHON = process.env.CRAMLAB_PYTHON ?? '/usr/bin/python3';
/** Above this 1-minute load average at the start, the bench prints its numbers but claims nothing. */
const QUIET_LOAD = 0.5;

interface Row {
  workload: string;
  side: string;
  /** "ok" or "failed: <one-line reason>" */
  status: string;
  engine: string;
  backend: string;
  threads?: number;
  texts: number;
  N: number;
  wallS: number;
  /** CPU seconds used (user + system; all threads): robust to other work on a shared machine. */
  cpuS?: number;
  /** Optimizer steps (all texts of a batch together) and wall seconds per step. */
  steps: number;
  sPerStep: number;
  textSteps: number;
  textStepsPerS: number;
  tokensPerS: number;
  gflops: number;
  peakPct: number;
  peakRssMB: number;
  weightsMB: number;
  rssPerWeights: number;
  peakTensorMB?: number;
  medianStepsTo100?: number | null;
  decoded?: number;
}

interface Workload {
  label: string;
  dir: string;
  idsFile: string;
  texts: number;
  N: number;
  maxSteps: number;
  patience: number;
  shape: ModelShape;
}

interface Ctx {
  peakGflops: number;
  backend: string;
}

const median = (xs: number[]): number | null => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The numbers every row shares, from its wall time, step counts and the one FLOP formula. */
function fill(
  w: Workload,
  ctx: Ctx,
  r: {
    side: string;
    engine: string;
    backend: string;
    threads?: number;
    wallS: number;
    cpuS?: number;
    steps: number;
    textSteps: number;
    rssKB?: number;
    peakTensorMB?: number;
    decodedSteps?: number[];
  },
): Row {
  const T = 1 + w.N; // K = 1
  const flops = w.shape.stepFlops(T) * r.textSteps;
  const rssMB = r.rssKB === undefined ? NaN : r.rssKB / 1024;
  const weightsMB = w.shape.weightBytes / 2 ** 20;
  return {
    workload: w.label,
    side: r.side,
    status: 'ok',
    engine: r.engine,
    backend: r.backend,
    threads: r.threads,
    texts: w.texts,
    N: w.N,
    wallS: r.wallS,
    cpuS: r.cpuS,
    steps: r.steps,
    sPerStep: r.wallS / r.steps,
    textSteps: r.textSteps,
    textStepsPerS: r.textSteps / r.wallS,
    tokensPerS: (r.textSteps * T) / r.wallS,
    gflops: flops / r.wallS / 1e9,
    peakPct: (100 * flops) / r.wallS / 1e9 / ctx.peakGflops,
    peakRssMB: rssMB,
    weightsMB,
    rssPerWeights: rssMB / weightsMB,
    peakTensorMB: r.peakTensorMB,
    medianStepsTo100: r.decodedSteps && median(r.decodedSteps),
    decoded: r.decodedSteps?.length,
  };
}

function failedRow(
  w: Workload,
  side: string,
  engine: string,
  backend: string,
  reason: string,
  rssKB?: number,
  threads?: number,
): Row {
  const rssMB = rssKB === undefined ? NaN : rssKB / 1024;
  const weightsMB = w.shape.weightBytes / 2 ** 20;
  return {
    workload: w.label,
    side,
    status: `failed: ${reason}`,
    engine,
    backend,
    threads,
    texts: w.texts,
    N: w.N,
    wallS: NaN,
    steps: NaN,
    sPerStep: NaN,
    textSteps: NaN,
    textStepsPerS: NaN,
    tokensPerS: NaN,
    gflops: NaN,
    peakPct: NaN,
    peakRssMB: rssMB,
    weightsMB,
    rssPerWeights: rssMB / weightsMB,
  };
}

/** cramlab side: bench/worker.ts in a child process (one cram() call over all texts). */
async function runCramlab(w: Workload, ctx: Ctx, init = 'randn'): Promise<Row> {
  const side = init === 'randn' ? 'cramlab' : `cramlab init=${init}`;
  const out = path.join(os.tmpdir(), `cramlab-bench-${process.pid}-${w.label.replace(/\W/g, '')}.json`);
  fs.rmSync(out, { force: true });
  const args = [
    '--import',
    'tsx',
    WORKER,
    '--model',
    w.dir,
    '--ids',
    w.idsFile,
    '--texts',
    String(w.texts),
    '--N',
    String(w.N),
    '--max-steps',
    String(w.maxSteps),
    '--patience',
    String(w.patience),
    '--init',
    init,
    '--backend',
    ctx.backend,
    '--out',
    out,
  ];
  const p = measured(process.execPath, args);
  if (!p.ok || !fs.existsSync(out))
    return failedRow(
      w,
      side,
      await engineName(),
      ctx.backend,
      reasonOf(p.stderr, 'worker exited without a result'),
      p.maxRssKB,
    );
  const r = JSON.parse(fs.readFileSync(out, 'utf8'));
  fs.rmSync(out, { force: true });
  return fill(w, ctx, {
    side,
    engine: r.engine,
    backend: r.backend,
    wallS: r.wallS,
    cpuS: r.cpuS,
    steps: r.steps,
    textSteps: r.textSteps,
    rssKB: p.maxRssKB ?? r.maxRssKB,
    peakTensorMB: r.peakTensorMB,
    decodedSteps: r.decodedStepsToBest,
  });
}

/** Reference side: ref_cram.py in a child process. */
function runRef(w: Workload, ctx: Ctx, batch: number, threads: number): Row {
  const side = `torch --batch ${batch} ×${threads}`;
  const out = path.join(
    os.tmpdir(),
    `cramlab-ref-${process.pid}-${w.label.replace(/\W/g, '')}-${batch}-${threads}.json`,
  );
  fs.rmSync(out, { force: true });
  const args = [
    REF,
    '--model',
    w.dir,
    '--ids',
    w.idsFile,
    '--lengths',
    String(w.N),
    '--mem',
    '1',
    '--samples',
    String(w.texts),
    '--batch',
    String(batch),
    '--max-steps',
    String(w.maxSteps),
    '--patience',
    String(w.patience),
    '--threads',
    String(threads),
    '--no-verify',
    '--out',
    out,
  ];
  const p = measured(PYTHON, args);
  if (!p.ok || !fs.existsSync(out))
    return failedRow(
      w,
      side,
      'torch',
      'torch',
      reasonOf(p.stderr, 'ref_cram.py exited without a result'),
      p.maxRssKB,
      threads,
    );
  const res = JSON.parse(fs.readFileSync(out, 'utf8'));
  fs.rmSync(out, { force: true });
  const recs: any[] = res.records;
  return fill(w, ctx, {
    side,
    engine: 'torch',
    backend: `torch ${res.meta.torch}`,
    threads: res.meta.torch_threads,
    wallS: res.aggregate.opt_wall_s,
    cpuS: p.cpuS, // whole child: includes model load
    steps: Math.max(...recs.map((r) => r.iters_run)),
    textSteps: res.aggregate.iters_total,
    rssKB: p.maxRssKB,
    decodedSteps: recs.filter((r) => r.best_acc === 1).map((r) => r.steps_to_best),
  });
}

const num = (x: number | null | undefined, digits: number) => (x == null || Number.isNaN(x) ? '' : x.toFixed(digits));

function table(rows: Row[]): string {
  const head = [
    'workload',
    'side',
    'engine',
    'status',
    'texts',
    'wall s',
    'cpu s',
    's/step',
    'text-steps',
    'steps/s',
    'tokens/s',
    'GFLOP/s',
    '% peak',
    'RSS MB',
    'weights MB',
    'RSS/weights',
    'med steps→100%',
    'decoded',
  ];
  const body = rows.map((r) => [
    r.workload,
    r.side,
    r.engine,
    r.status,
    String(r.texts),
    num(r.wallS, 1),
    num(r.cpuS, 1),
    num(r.sPerStep, 3),
    num(r.textSteps, 0),
    num(r.textStepsPerS, 1),
    num(r.tokensPerS, 0),
    num(r.gflops, 2),
    num(r.peakPct, 2),
    num(r.peakRssMB, 0),
    num(r.weightsMB, 1),
    num(r.rssPerWeights, 2),
    r.medianStepsTo100 == null ? '' : String(r.medianStepsTo100),
    r.decoded === undefined || r.decoded === null ? '' : `${r.decoded}/${r.texts}`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
  return [line(head), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...body.map(line)].join('\n');
}

/** Per workload: each cramlab row against the best torch row (lowest wall time over batch and threads). */
function verdicts(rows: Row[], loadStart: number): string[] {
  const busy = loadStart > QUIET_LOAD;
  const out: string[] = busy
    ? [
        `WARNING: load average ${loadStart.toFixed(2)} > ${QUIET_LOAD} at the start: the machine was not quiet, no result is claimed.`,
      ]
    : [];
  for (const wl of [...new Set(rows.map((r) => r.workload))]) {
    const ok = rows.filter((r) => r.workload === wl && r.status === 'ok');
    const best = ok.filter((r) => r.engine === 'torch').sort((a, b) => a.wallS - b.wallS)[0];
    for (const mine of rows.filter((r) => r.workload === wl && r.side.startsWith('cramlab'))) {
      if (mine.status !== 'ok') out.push(`${wl}: ${mine.side} ${mine.status}`);
      else if (!best) out.push(`${wl}: no torch row to compare with`);
      else {
        const x = mine.wallS / best.wallS;
        const word = busy ? 'not claimed (busy machine)' : x <= 1 ? 'cramlab faster or equal' : 'cramlab slower';
        out.push(
          `${wl}: ${mine.side} (${mine.engine}) / best torch (${best.side}): wall ${x.toFixed(2)}× (${word}), s/step ${(mine.sPerStep / best.sPerStep).toFixed(2)}×`,
        );
      }
    }
  }
  return out;
}

const uptime = (): string =>
  spawnSync('uptime', { encoding: 'utf8' }).stdout?.trim() ||
  `load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(', ')}`;

function printResults(saved: { rows: Row[]; loadStart: number; uptimeStart?: string; uptimeEnd?: string }) {
  console.log('\n' + table(saved.rows) + '\n');
  if (saved.uptimeStart) console.log(`start: ${saved.uptimeStart}`);
  if (saved.uptimeEnd) console.log(`end:   ${saved.uptimeEnd}`);
  for (const l of verdicts(saved.rows, saved.loadStart)) console.log(l);
}

/** A random model folder, written once per config and seed under the temp dir (W3's is 0.5 GB, W4's 0.65 GB). */
function cachedModel(name: string, config: LlamaConfig | GptNeoXConfig): string {
  const key = Buffer.from(JSON.stringify(config))
    .reduce((h, b) => (Math.imul(h, 31) + b) >>> 0, 7)
    .toString(16);
  const dir = path.join(os.tmpdir(), 'cramlab-bench', `${name}-${key}`);
  if (fs.existsSync(path.join(dir, 'model.safetensors'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  writeModelFolder(tmp, config);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir); // whole or not at all: a killed write never passes for the model
  return dir;
}

function writeIds(file: string, note: string, texts: number[][]) {
  fs.writeFileSync(file, JSON.stringify({ meta: { note }, samples: texts.map((ids, id) => ({ id, ids })) }));
}

/** Seeded LCG in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

async function main() {
  if (flag('table')) {
    // Re-print saved results: npm run bench -- --table bench/results/a.json [b.json ...]
    for (const f of argv.filter((a) => a.endsWith('.json'))) {
      const saved = JSON.parse(fs.readFileSync(f, 'utf8'));
      console.log(f);
      printResults({
        rows: saved.rows,
        loadStart: saved.loadStart ?? saved.loadavg?.[0] ?? NaN,
        uptimeStart: saved.uptimeStart,
        uptimeEnd: saved.uptimeEnd,
      });
    }
    return;
  }
  const quick = flag('quick');
  const only = opt('only');
  const withRef = !flag('no-ref');
  const withMine = !flag('ref-only');
  const threadList = (opt('threads') ?? '1,2').split(',').map(Number);
  const engine = opt('engine');
  if (engine) process.env.CRAMLAB_ENGINE = engine; // inherited by every worker
  const backend = await initBackend(opt('backend') as BackendName | undefined); // the parent only writes W2's texts
  const peak = estimateCpuPeakGflops();
  const ctx: Ctx = { peakGflops: peak.gflops, backend };
  if (withRef && !fs.existsSync(PYTHON))
    throw new Error(`${PYTHON} not found: install python3-torch (Debian) or pass --no-ref`);

  const uptimeStart = uptime();
  const loadStart = os.loadavg()[0];
  console.log(`start: ${uptimeStart}`);
  if (loadStart > QUIET_LOAD)
    console.log(
      `WARNING: load average ${loadStart.toFixed(2)} > ${QUIET_LOAD}: the machine is not quiet; numbers will be printed but no result claimed`,
    );
  console.log(
    `engine ${await engineName()} (CRAMLAB_ENGINE=${process.env.CRAMLAB_ENGINE ?? 'unset'}), backend ${backend}; CPU ${peak.model}: ${peak.cores} cores × ${peak.ghz.toFixed(2)} GHz × ${peak.flopsPerCycle} FLOP/cycle ≈ ${peak.gflops.toFixed(0)} GFLOP/s fp32 peak`,
  );

  const rows: Row[] = [];
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outFile =
    opt('out') ?? path.join(ROOT, 'bench', 'results', `${stamp}-${os.hostname()}${quick ? '-quick' : ''}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const save = (uptimeEnd?: string) =>
    fs.writeFileSync(
      outFile,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          host: os.hostname(),
          argv,
          engineEnv: process.env.CRAMLAB_ENGINE ?? null,
          backend,
          cpu: peak,
          uptimeStart,
          loadStart,
          uptimeEnd,
          claimed: loadStart <= QUIET_LOAD,
          node: process.version,
          rows,
        },
        null,
        1,
      ),
    );
  const show = (r: Row) => {
    rows.push(r);
    save(); // after every row: a long run that is cut short keeps what it measured
    console.log(
      `  ${r.workload} ${r.side} [${r.engine}]: ${r.status === 'ok' ? `${r.wallS.toFixed(1)} s, ${r.sPerStep.toFixed(3)} s/step, ${r.gflops.toFixed(2)} GFLOP/s` : r.status}`,
    );
  };
  const torchRows = async (w: Workload, batches: number[]) => {
    if (!withRef) return;
    for (const b of batches) for (const t of threadList) show(runRef(w, ctx, b, t));
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-bench-ids-'));

  try {
    if (!only || only === 'W1') {
      const dir = path.join(MODELS, 'stories260K');
      if (!fs.existsSync(dir)) throw new Error(`${dir} not found (set CRAMLAB_MODELS)`);
      const texts = quick ? 2 : 16;
      const [maxSteps, patience] = quick ? [50, 2000] : [5000, 2000];
      const extraInit = opt('init');
      for (const N of (opt('lengths') ?? (quick ? '16' : '16,32')).split(',').map(Number)) {
        const w: Workload = {
          label: `W1 N=${N}`,
          dir,
          idsFile: SAMPLES,
          texts,
          N,
          maxSteps,
          patience,
          shape: modelShape(dir),
        };
        console.log(`${w.label}: stories260K, ${texts} texts, ≤ ${maxSteps} steps, patience ${patience}`);
        if (withMine) show(await runCramlab(w, ctx));
        if (withMine && extraInit) show(await runCramlab(w, ctx, extraInit));
        // --ref-batches 16 skips the authors' one-text-at-a-time loop (minutes per thread count)
        await torchRows(w, opt('ref-batches') ? opt('ref-batches')!.split(',').map(Number) : [1, texts]);
      }
    }

    if (!only || only === 'W2') {
      const dir = cachedModel('w2', W2_CONFIG);
      const [texts, N, steps] = [8, 128, quick ? 2 : 50];
      // Seeded token ids: BOS, a random token, the model's own greedy continuation (31 tokens: some
      // predictions are right from the start) and random tokens after that (so no text is decoded
      // within 50 steps).
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      const model = modelFromTensors(cfg, readSafetensors(path.join(dir, 'model.safetensors')).tensors);
      const rnd = lcg(12345);
      const ids: number[][] = [];
      for (let i = 0; i < texts; i++) {
        const start = [1, 3 + Math.floor(rnd() * 2045)];
        const greedy = await greedyGenerate(model, start, { maxNewTokens: 31, eosTokenIds: [] });
        const head = [...start, ...greedy];
        ids.push([...head, ...Array.from({ length: N - head.length }, () => 3 + Math.floor(rnd() * 2045))]);
      }
      model.dispose();
      const idsFile = path.join(tmp, 'w2.json');
      writeIds(idsFile, 'W2 random ids', ids);
      const w: Workload = {
        label: 'W2',
        dir,
        idsFile,
        texts,
        N,
        maxSteps: steps,
        patience: steps,
        shape: modelShape(dir),
      };
      console.log(`${w.label}: random Llama d=256 × 4 layers, vocab 2048, ${texts} texts × N=${N}, ${steps} steps`);
      if (withMine) show(await runCramlab(w, ctx));
      await torchRows(w, [texts]);
    }

    if (!only || only === 'W3') {
      console.log('W3: writing the SmolLM2-135M-shaped random Llama (once; cached under the temp dir)');
      const dir = cachedModel('w3', W3_CONFIG);
      const [texts, N, steps] = [4, 64, quick ? 1 : 10];
      const rnd = lcg(4242);
      const V = W3_CONFIG.vocab_size;
      const ids = Array.from({ length: texts }, () => [
        1,
        ...Array.from({ length: N - 1 }, () => 3 + Math.floor(rnd() * (V - 3))),
      ]);
      const idsFile = path.join(tmp, 'w3.json');
      writeIds(idsFile, 'W3 random ids', ids);
      const w: Workload = {
        label: 'W3',
        dir,
        idsFile,
        texts,
        N,
        maxSteps: steps,
        patience: steps,
        shape: modelShape(dir),
      };
      console.log(
        `${w.label}: random Llama d=576 × 30 layers, vocab 49152 (${(w.shape.weightBytes / 2 ** 20).toFixed(0)} MB fp32), ${texts} texts × N=${N}, ${steps} steps`,
      );
      if (withMine) show(await runCramlab(w, ctx));
      await torchRows(w, [texts]);
    }

    if (!only || only === 'W4') {
      console.log('W4: writing the Pythia-160M-shaped random GPT-NeoX (once; cached under the temp dir)');
      const dir = cachedModel('w4', W4_CONFIG);
      const steps = Number(opt('w4-steps') ?? (quick ? 1 : 10));
      const [texts, N] = [4, 80];
      const rnd = lcg(4343);
      const V = W4_CONFIG.vocab_size;
      const ids = Array.from({ length: texts }, () => [
        0,
        ...Array.from({ length: N - 1 }, () => 1 + Math.floor(rnd() * (V - 1))),
      ]);
      const idsFile = path.join(tmp, 'w4.json');
      writeIds(idsFile, 'W4 random ids', ids);
      const w: Workload = {
        label: 'W4',
        dir,
        idsFile,
        texts,
        N,
        maxSteps: steps,
        patience: steps,
        shape: modelShape(dir),
      };
      console.log(
        `${w.label}: random GPT-NeoX d=768 × 12 layers, rotary_pct 0.25, vocab 50304 (${(w.shape.weightBytes / 2 ** 20).toFixed(0)} MB fp32), ${texts} texts × N=${N}, ${steps} steps`,
      );
      if (withMine) show(await runCramlab(w, ctx));
      // no torch row: the reference loop's model (llama_ref.py) is a Llama
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  const uptimeEnd = uptime();
  save(uptimeEnd);
  printResults({ rows, loadStart, uptimeStart, uptimeEnd });
  console.log(`\nwrote ${path.relative(process.cwd(), outFile)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
