// npm run bench: cramlab's cram() and the reference PyTorch loop side by side on fixed workloads, in one
// invocation (so the machine's load hits both alike).
//   W1  stories260K, K = 1, N = 16 and 32, the first 16 samples, ≤ 5000 steps, patience 2000 (the
//       authors' rules): wall time until every text is done. Reference: ../shared/bench/ref_cram.py
//       --batch 1 (the authors' loop) and --batch 16 (best PyTorch).
//   W2  throughput: a random-init Llama (d 256, 4 layers, vocab 2048), N = 128, 8 texts, 50 steps.
//   W3  a random-init Llama of SmolLM2-135M's shape, N = 64, 4 texts, 10 steps.
//   W4  a random-init GPT-NeoX of Pythia-160M's shape, N = 80, 4 texts, 10 steps (cramlab only).
//   R   real shapes (bench/real-shapes.ts): every paper model's published config and dtype, random
//       weights; per model B = 1 and B = 4 (N = 64, K = 1), greedy decode ms/token, and N = 1024 rows on
//       SmolLM2-135M and Llama-3.2-1B; torch beside the Llama rows.
// W2–W4 and R time phases on both sides (bench/worker.ts, bench/ref_cram_phases.py): load, setup (until
// the first step starts), first step, steady s/step (median of the later steps), decode; each cramlab row
// is compared with the best torch row of its workload (torch at 1 and 2 threads) on steady s/step and on
// time to first step (load + setup + first step). W1 times the whole run until every text is done.
// Rules: every side runs in a child process (a crash is a "failed: ..." row, the bench goes on); a row
// that cannot run here is a "skipped: <reason>" row; no claim when the machine was busy at the start
// (load average > 0.5). Token ids are fed directly (seeded random ids; no tokenizer is involved).
// Options: --list (the rows, what they need, and skip reasons; runs nothing), --only A,B (workloads W1..W4,
//          the group R, or any text in a row's label, e.g. "SmolLM2" or "Llama-3.2-1B B=4"), --quick (smoke:
//          W1 2 texts ≤ 50 steps N = 16, W2 2 steps, W3/W4 2 steps, R 2 steps), --steps S (W2–W4 and R), --real-tiny
//          (R on toy-sized models of the same configs: the plumbing in seconds), --backend wasm|cpu,
//          --engine native|tfjs (CRAMLAB_ENGINE for the cramlab side), --lengths 16,32 (W1), --threads 1,2
//          (torch), --ref-batches 16 (W1 torch batch sizes; default 1 and 16), --no-ref, --ref-only,
//          --init mean-embedding (adds a W1 run with that init), --w4-steps S, --out FILE, --table FILE.json...
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { availableMemoryBytes, estimateCpuPeakGflops, initBackend, type BackendName } from '../src/backend';
import { greedyGenerate } from '../src/generate';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { measured, reasonOf } from './child';
import { engineName } from './engine';
import {
  dataBytes,
  diskShortfall,
  isCached,
  paramCount,
  realCheckpoint,
  realShapeDir,
  REAL_SHAPES,
  tinyShape,
  type RealShape,
} from './real-shapes';
import { cramBytes } from '../src/cram/memory';
import { infoFromConfig } from '../src/models/types';
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
const REF_PHASES = path.join(ROOT, 'bench', 'ref_cram_phases.py');
const WORKER = path.join(ROOT, 'bench', 'worker.ts');
const PYTHON = process.env.CRAMLAB_PYTHON ?? '/usr/bin/python3';
/** Above this 1-minute load average at the start, the bench prints its numbers but claims nothing. */
const QUIET_LOAD = 0.5;
/** One paper Table 1 cell: the authors' 50 texts, each ≤ 5000 steps. */
const CELL_TEXTS = 50;
const CELL_STEPS = 5000;

export interface Row {
  workload: string;
  side: string;
  /** "ok", "failed: <one-line reason>" or "skipped: <one-line reason>" */
  status: string;
  engine: string;
  backend: string;
  threads?: number;
  texts: number;
  N: number;
  /** The whole call: W1 the run until every text is done; phase rows cram() (setup + every step). */
  wallS: number;
  /** CPU seconds of the child (user + system; all threads; model load included). */
  cpuS?: number;
  /** Optimizer steps (all texts of a batch together). */
  steps: number;
  /** Phase rows: the steady s/step; W1: the optimisation loop's wall / steps (stepBasis says which). */
  sPerStep: number;
  stepBasis: 'steady median' | 'loop mean';
  textSteps: number;
  textStepsPerS: number;
  tokensPerS: number;
  gflops: number;
  peakPct: number;
  peakRssMB: number;
  weightsMB: number;
  rssPerWeights: number;
  /** The checkpoint's bytes on disk (as stored: F16/BF16 files are half the fp32 weights). */
  fileMB?: number;
  peakTensorMB?: number;
  medianStepsTo100?: number | null;
  decoded?: number;
  // phases (W2–W4 and R)
  loadS?: number;
  setupS?: number | null;
  firstStepS?: number | null;
  steadyCpuS?: number | null;
  /** Time to the first step's result: load + setup + first step. */
  ttfsS?: number | null;
  decodeMsPerToken?: number;
  /** The checkpoint read from a warm page cache (fs read loop): what load is measured against (#22: ≤ 2×). */
  readS?: number | null;
  /** loadModel's weights hash (sha256 of every file), uncached: a first load's other core (readSafetensors rows). */
  hashS?: number | null;
  /** RSS after load (the weights), apart from the peak during the steps (+ activations). */
  loadRssMB?: number;
  /** Decode's memory-bandwidth bound: bytes read per token / streaming-read GB/s (same threads). */
  decodeBoundMs?: number;
  readGBs?: number;
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
  /** Time phases (syncEvery 1, ref_cram_phases.py); W1 keeps its read-back cadence and ref_cram.py. */
  phases: boolean;
  decode?: number;
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

const fileMBOf = (dir: string) => {
  const f = path.join(dir, 'model.safetensors');
  return fs.existsSync(f) ? fs.statSync(f).size / 2 ** 20 : undefined;
};

/** The numbers every row shares; rates from the steady step where phases were timed. */
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
    phases?: {
      loadS: number;
      setupS: number | null;
      firstStepS: number | null;
      steadySPerStep: number | null;
      steadyCpuSPerStep: number | null;
      decode?: { msPerToken: number; boundMs?: number; readGBs?: number } | null;
      readS?: number | null;
      hashS?: number | null;
      rssAfterLoadKB?: number;
    };
  },
): Row {
  const T = 1 + w.N; // K = 1
  const ph = r.phases;
  const steady = ph?.steadySPerStep ?? null;
  // per-step rates: the steady step (one step of all texts) where timed, else the loop's mean
  const sPerStep = steady ?? r.wallS / r.steps;
  const flopsPerStep = w.shape.stepFlops(T) * (r.textSteps / r.steps);
  const rssMB = r.rssKB === undefined ? NaN : r.rssKB / 1024;
  const weightsMB = w.shape.weightBytes / 2 ** 20;
  const ttfs = ph && ph.setupS != null && ph.firstStepS != null ? ph.loadS + ph.setupS + ph.firstStepS : null;
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
    sPerStep,
    stepBasis: steady != null ? 'steady median' : 'loop mean',
    textSteps: r.textSteps,
    textStepsPerS: r.textSteps / r.steps / sPerStep,
    tokensPerS: ((r.textSteps / r.steps) * T) / sPerStep,
    gflops: flopsPerStep / sPerStep / 1e9,
    peakPct: (100 * flopsPerStep) / sPerStep / 1e9 / ctx.peakGflops,
    peakRssMB: rssMB,
    weightsMB,
    rssPerWeights: rssMB / weightsMB,
    fileMB: fileMBOf(w.dir),
    peakTensorMB: r.peakTensorMB,
    medianStepsTo100: r.decodedSteps && median(r.decodedSteps),
    decoded: r.decodedSteps?.length,
    loadS: ph?.loadS,
    setupS: ph?.setupS,
    firstStepS: ph?.firstStepS,
    steadyCpuS: ph?.steadyCpuSPerStep,
    ttfsS: ttfs,
    decodeMsPerToken: ph?.decode?.msPerToken,
    readS: ph?.readS,
    hashS: ph?.hashS,
    loadRssMB: ph?.rssAfterLoadKB != null ? ph.rssAfterLoadKB / 1024 : undefined,
    decodeBoundMs: ph?.decode?.boundMs,
    readGBs: ph?.decode?.readGBs,
  };
}

function emptyRow(w: Pick<Workload, 'label' | 'texts' | 'N' | 'dir'> & { weightBytes?: number }, o: Partial<Row>): Row {
  const weightsMB = (w.weightBytes ?? NaN) / 2 ** 20;
  const rssMB = o.peakRssMB ?? NaN;
  return {
    workload: w.label,
    side: '',
    status: '',
    engine: '',
    backend: '',
    texts: w.texts,
    N: w.N,
    wallS: NaN,
    steps: NaN,
    sPerStep: NaN,
    stepBasis: 'steady median',
    textSteps: NaN,
    textStepsPerS: NaN,
    tokensPerS: NaN,
    gflops: NaN,
    peakPct: NaN,
    weightsMB,
    fileMB: fs.existsSync(w.dir) ? fileMBOf(w.dir) : undefined,
    ...o,
    peakRssMB: rssMB,
    rssPerWeights: rssMB / weightsMB,
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
  return emptyRow(
    { ...w, weightBytes: w.shape.weightBytes },
    {
      side,
      status: `failed: ${reason}`,
      engine,
      backend,
      threads,
      peakRssMB: rssKB === undefined ? NaN : rssKB / 1024,
    },
  );
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
    '--sync-every',
    w.phases ? '1' : '10',
    '--decode',
    String(w.decode ?? 0),
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
    cpuS: p.cpuS ?? r.cpuS,
    steps: r.steps,
    textSteps: r.textSteps,
    rssKB: r.maxRssKB ?? p.maxRssKB, // the worker's: taken before its bandwidth probe
    peakTensorMB: r.peakTensorMB,
    decodedSteps: r.decodedStepsToBest,
    phases: w.phases ? r : undefined,
  });
}

/** W1's reference side: ref_cram.py in a child process (the authors' rules until every text is done). */
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
    wallS: res.aggregate.opt_wall_s, // the optimisation loops, model load excluded
    cpuS: p.cpuS, // whole child: includes model load
    steps: Math.max(...recs.map((r) => r.iters_run)),
    textSteps: res.aggregate.iters_total,
    rssKB: p.maxRssKB,
    decodedSteps: recs.filter((r) => r.best_acc === 1).map((r) => r.steps_to_best),
  });
}

/** Phase rows' reference side: bench/ref_cram_phases.py (all texts in one batch, fixed step count). */
function runRefPhases(w: Workload, ctx: Ctx, threads: number): Row {
  const side = `torch --batch ${w.texts} ×${threads}`;
  const out = path.join(os.tmpdir(), `cramlab-refph-${process.pid}-${w.label.replace(/\W/g, '')}-${threads}.json`);
  fs.rmSync(out, { force: true });
  const args = [
    REF_PHASES,
    '--model',
    w.dir,
    '--ids',
    w.idsFile,
    '--N',
    String(w.N),
    '--samples',
    String(w.texts),
    '--steps',
    String(w.maxSteps),
    '--threads',
    String(threads),
    '--decode',
    String(w.decode ?? 0),
    '--ref-dir',
    path.dirname(REF),
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
      reasonOf(p.stderr, 'ref_cram_phases.py exited without a result'),
      p.maxRssKB,
      threads,
    );
  const r = JSON.parse(fs.readFileSync(out, 'utf8'));
  fs.rmSync(out, { force: true });
  return fill(w, ctx, {
    side,
    engine: 'torch',
    backend: `torch ${r.meta.torch}`,
    threads: r.meta.threads,
    wallS: r.wallS,
    cpuS: p.cpuS,
    steps: r.steps,
    textSteps: r.textSteps,
    rssKB: p.maxRssKB,
    phases: r,
  });
}

const num = (x: number | null | undefined, digits: number) => (x == null || Number.isNaN(x) ? '' : x.toFixed(digits));

export function table(rows: Row[]): string {
  const head = [
    'workload',
    'side',
    'engine',
    'status',
    'B',
    'N',
    'load s',
    'setup s',
    'first s',
    's/step',
    'basis',
    'cpu s/step',
    'to 1st step s',
    'decode ms/tok',
    'bound ms/tok',
    'decode % of bound',
    'read s',
    'load/read',
    'hash s',
    'call s',
    'GFLOP/s',
    '% peak',
    'RSS MB',
    'RSS load MB',
    'file MB',
    'RSS/file',
    'med steps→100%',
    'decoded',
  ];
  const body = rows.map((r) => [
    r.workload,
    r.side,
    r.engine.startsWith('{') ? (JSON.parse(r.engine).engine ?? r.engine) : r.engine,
    r.status,
    String(r.texts),
    String(r.N),
    num(r.loadS, 1),
    num(r.setupS, 2),
    num(r.firstStepS, 3),
    num(r.sPerStep, 3),
    r.status === 'ok' ? (r.stepBasis === 'steady median' ? 'steady' : 'mean') : '',
    num(r.steadyCpuS, 3),
    num(r.ttfsS, 1),
    num(r.decodeMsPerToken, 1),
    num(r.decodeBoundMs, 1),
    r.decodeBoundMs && r.decodeMsPerToken ? num((100 * r.decodeBoundMs) / r.decodeMsPerToken, 0) : '',
    num(r.readS, 2),
    r.readS && r.loadS != null ? num(r.loadS / r.readS, 1) : '',
    num(r.hashS, 2),
    num(r.wallS, 1),
    num(r.gflops, 2),
    num(r.peakPct, 2),
    num(r.peakRssMB, 0),
    num(r.loadRssMB, 0),
    num(r.fileMB, 0),
    r.fileMB ? num(r.peakRssMB / r.fileMB, 2) : '',
    r.medianStepsTo100 == null ? '' : String(r.medianStepsTo100),
    r.decoded === undefined || r.decoded === null ? '' : `${r.decoded}/${r.texts}`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
  return [line(head), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...body.map(line)].join('\n');
}

/** Per workload: each cramlab row against the best torch row (W1: lowest wall; phase rows: lowest steady
 *  s/step), on steady s/step and on time to the first step (load + setup + first step). */
export function verdicts(rows: Row[], loadStart: number): string[] {
  const busy = loadStart > QUIET_LOAD;
  const out: string[] = busy
    ? [
        `WARNING: load average ${loadStart.toFixed(2)} > ${QUIET_LOAD} at the start: the machine was not quiet, no result is claimed.`,
      ]
    : [];
  for (const wl of [...new Set(rows.map((r) => r.workload))]) {
    const ok = rows.filter((r) => r.workload === wl && r.status === 'ok');
    const torch = ok.filter((r) => r.engine === 'torch');
    const phased = torch.some((r) => r.stepBasis === 'steady median');
    const best = torch.sort((a, b) => (phased ? a.sPerStep - b.sPerStep : a.wallS - b.wallS))[0];
    for (const mine of rows.filter((r) => r.workload === wl && r.side.startsWith('cramlab'))) {
      if (mine.status !== 'ok') out.push(`${wl}: ${mine.side} ${mine.status}`);
      else if (!best) out.push(`${wl}: no torch row to compare with`);
      else {
        const word = (x: number) =>
          busy ? 'not claimed (busy machine)' : x <= 1 ? 'cramlab faster or equal' : 'cramlab slower';
        const steady = mine.sPerStep / best.sPerStep;
        if (!phased) {
          const x = mine.wallS / best.wallS;
          out.push(
            `${wl}: ${mine.side} / best torch (${best.side}): wall until done ${x.toFixed(2)}× (${word(x)}), loop-mean s/step ${steady.toFixed(2)}×`,
          );
          continue;
        }
        const ttfs = mine.ttfsS != null && best.ttfsS != null ? mine.ttfsS / best.ttfsS : NaN;
        out.push(
          `${wl}: ${mine.side} / best torch (${best.side}): steady s/step ${steady.toFixed(2)}× (${num(mine.sPerStep, 3)} vs ${num(best.sPerStep, 3)}; ${word(steady)}), time to first step ${num(ttfs, 2)}× (load + setup + first step: ${num(mine.ttfsS, 1)} vs ${num(best.ttfsS, 1)} s)`,
        );
      }
    }
  }
  return out;
}

/** CPU hours of one paper Table 1 cell (50 texts × ≤ 5000 steps) from each model's steady B = 1 and
 *  B = 4 rows at N = 64: texts × steps × CPU s per text-step. A ceiling for cells that stop early, and a
 *  floor for longer N (a step grows with N). */
export function cellEstimates(rows: Row[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (r.status !== 'ok' || !r.workload.startsWith('R ') || r.N !== 64 || r.steadyCpuS == null) continue;
    const perText = r.steadyCpuS / r.texts;
    const hours = (CELL_TEXTS * CELL_STEPS * perText) / 3600;
    const wall = (CELL_TEXTS * CELL_STEPS * (r.sPerStep / r.texts)) / 3600;
    out.push(
      `${r.workload} ${r.side}: one Table 1 cell (${CELL_TEXTS} texts × ${CELL_STEPS} steps at N = 64) ≈ ${hours.toFixed(1)} CPU-hours (${wall.toFixed(1)} h wall at this row's threads) = ${CELL_TEXTS}·${CELL_STEPS}·${num(perText, 4)} CPU s per text-step`,
    );
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
  const cells = cellEstimates(saved.rows);
  if (cells.length) console.log('\n' + cells.join('\n'));
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

/** `texts` seeded random texts of N ids: BOS, then ids in [3, min(V, 128000)) (no special tokens). */
function randomTexts(seed: number, texts: number, N: number, V: number, bos: number): number[][] {
  const rnd = lcg(seed);
  const top = Math.min(V, 128000);
  return Array.from({ length: texts }, () => [
    bos,
    ...Array.from({ length: N - 1 }, () => 3 + Math.floor(rnd() * (top - 3))),
  ]);
}

/** One row of the plan: what it is, why it cannot run here (''), and how to run it. */
interface Planned {
  group: string;
  label: string;
  what: string;
  skip: () => string;
  run: () => Promise<void>;
}

/** Whether a row is selected by --only (workload/group names, or text in its label; case-insensitive). */
export function selected(only: string | undefined, group: string, label: string): boolean {
  if (!only) return true;
  return only
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean)
    .some((t) => t === group.toLowerCase() || label.toLowerCase().includes(t));
}

const GiB = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

async function main() {
  if (flag('table')) {
    // Re-print saved results: npm run bench -- --table bench/results/a.json [b.json ...]
    for (const f of argv.filter((a) => a.endsWith('.json'))) {
      const saved = JSON.parse(fs.readFileSync(f, 'utf8'));
      console.log(f);
      // bench/results also keeps other benches' files (bench:queue's sweep): say so, go on.
      if (!Array.isArray(saved.rows)) {
        console.log(`  not a \`npm run bench\` result (no rows): skipped\n`);
        continue;
      }
      printResults({
        // Rows saved before these fields existed: the loop mean, an unnamed engine, and ok when timed.
        rows: saved.rows.map((r: Row) => ({
          ...r,
          stepBasis: r.stepBasis ?? 'loop mean',
          engine: r.engine ?? '',
          status: r.status ?? (typeof r.wallS === 'number' ? 'ok' : ''),
        })),
        loadStart: saved.loadStart ?? saved.loadavg?.[0] ?? NaN,
        uptimeStart: saved.uptimeStart,
        uptimeEnd: saved.uptimeEnd,
      });
    }
    return;
  }
  const quick = flag('quick');
  const list = flag('list');
  const only = opt('only');
  const withRef = !flag('no-ref');
  const withMine = !flag('ref-only');
  const threadList = (opt('threads') ?? '1,2').split(',').map(Number);
  const engine = opt('engine');
  if (engine) process.env.CRAMLAB_ENGINE = engine; // inherited by every worker
  const backend = list ? 'none' : await initBackend(opt('backend') as BackendName | undefined);
  const peak = estimateCpuPeakGflops();
  const ctx: Ctx = { peakGflops: peak.gflops, backend };
  const torchMissing = fs.existsSync(PYTHON) ? '' : `${PYTHON} not found (install python3-torch or pass --no-ref)`;
  const stepsOpt = opt('steps');

  const rows: Row[] = [];
  const show = (r: Row) => {
    rows.push(r);
    save(); // after every row: a long run that is cut short keeps what it measured
    console.log(
      `  ${r.workload} ${r.side} [${r.engine.startsWith('{') ? JSON.parse(r.engine).engine : r.engine}]: ${
        r.status === 'ok'
          ? r.stepBasis === 'steady median'
            ? `load ${num(r.loadS, 1)} s, setup ${num(r.setupS, 2)} s, first step ${num(r.firstStepS, 3)} s, steady ${num(r.sPerStep, 3)} s/step${r.decodeMsPerToken != null ? `, decode ${num(r.decodeMsPerToken, 1)} ms/token${r.decodeBoundMs ? ` (bound ${num(r.decodeBoundMs, 1)} at ${num(r.readGBs, 1)} GB/s: ${num((100 * r.decodeBoundMs) / r.decodeMsPerToken, 0)} %)` : ''}` : ''}${r.readS ? `, load/warm read ${num(r.loadS! / r.readS, 1)}× (${num(r.readS, 2)} s)` : ''}${r.hashS != null ? `, weights hash ${num(r.hashS, 2)} s (a first loadModel's, beside the load)` : ''}, RSS ${num(r.loadRssMB, 0)} MB after load, ${num(r.peakRssMB, 0)} MB peak`
            : `${r.wallS.toFixed(1)} s until done, ${r.sPerStep.toFixed(3)} s/step (loop mean)`
          : r.status
      }`,
    );
  };
  const torchSides = (w: Workload, batches?: number[]) => {
    if (!withRef) return;
    if (torchMissing) return show(emptyRow(w, { side: 'torch', engine: 'torch', status: `skipped: ${torchMissing}` }));
    if (w.phases) for (const t of threadList) show(runRefPhases(w, ctx, t));
    else for (const b of batches!) for (const t of threadList) show(runRef(w, ctx, b, t));
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-bench-ids-'));
  const plan: Planned[] = [];

  // ---- W1
  const s260 = path.join(MODELS, 'stories260K');
  const w1Texts = quick ? 2 : 16;
  const [w1Max, w1Patience] = quick ? [50, 2000] : [5000, 2000];
  for (const N of (opt('lengths') ?? (quick ? '16' : '16,32')).split(',').map(Number))
    plan.push({
      group: 'W1',
      label: `W1 N=${N}`,
      what: `stories260K, ${w1Texts} texts, ≤ ${w1Max} steps, patience ${w1Patience}: wall until every text is done`,
      skip: () => (fs.existsSync(s260) ? '' : `${s260} not found (set CRAMLAB_MODELS)`),
      run: async () => {
        const w: Workload = {
          label: `W1 N=${N}`,
          dir: s260,
          idsFile: SAMPLES,
          texts: w1Texts,
          N,
          maxSteps: w1Max,
          patience: w1Patience,
          shape: modelShape(s260),
          phases: false,
        };
        if (withMine) show(await runCramlab(w, ctx));
        if (withMine && opt('init')) show(await runCramlab(w, ctx, opt('init')));
        // --ref-batches 16 skips the authors' one-text-at-a-time loop (minutes per thread count)
        torchSides(w, opt('ref-batches') ? opt('ref-batches')!.split(',').map(Number) : [1, w1Texts]);
      },
    });

  // ---- W2
  const w2Steps = Number(stepsOpt ?? (quick ? 2 : 50));
  plan.push({
    group: 'W2',
    label: 'W2',
    what: `random Llama d=256 × 4 layers, vocab 2048, 8 texts × N=128, ${w2Steps} steps`,
    skip: () => '',
    run: async () => {
      const dir = cachedModel('w2', W2_CONFIG);
      const [texts, N] = [8, 128];
      // Seeded token ids: BOS, a random token, the model's own greedy continuation (31 tokens: some
      // predictions are right from the start) and random tokens after that (so no text is decoded).
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
        maxSteps: w2Steps,
        patience: w2Steps,
        shape: modelShape(dir),
        phases: true,
      };
      if (withMine) show(await runCramlab(w, ctx));
      torchSides(w);
    },
  });

  // ---- W3, W4
  const small = (group: string, name: string, config: LlamaConfig | GptNeoXConfig, N: number, torch: boolean) => {
    const steps = Number((group === 'W4' && opt('w4-steps')) || stepsOpt || (quick ? 2 : 10));
    plan.push({
      group,
      label: group,
      what: `random ${config.model_type} of ${name}'s shape (${Math.round(
        config.num_hidden_layers,
      )} layers, d ${config.hidden_size}, vocab ${config.vocab_size}), 4 texts × N=${N}, ${steps} steps${torch ? '' : ', cramlab only'}`,
      skip: () => '',
      run: async () => {
        console.log(`${group}: writing the ${name}-shaped random model (once; cached under the temp dir)`);
        const dir = cachedModel(group.toLowerCase(), config);
        const idsFile = path.join(tmp, `${group}.json`);
        writeIds(
          idsFile,
          `${group} random ids`,
          randomTexts(group === 'W3' ? 4242 : 4343, 4, N, config.vocab_size, config.bos_token_id),
        );
        const w: Workload = {
          label: group,
          dir,
          idsFile,
          texts: 4,
          N,
          maxSteps: steps,
          patience: steps,
          shape: modelShape(dir),
          phases: true,
        };
        if (withMine) show(await runCramlab(w, ctx));
        if (torch) torchSides(w); // the torch reference (llama_ref.py) is a Llama
      },
    });
  };
  small('W3', 'SmolLM2-135M', W3_CONFIG, 64, true);
  small('W4', 'Pythia-160M', W4_CONFIG, 80, false);

  // ---- R: real shapes
  const tiny = flag('real-tiny');
  const root = tiny ? path.join(os.tmpdir(), 'cramlab-bench', 'real-tiny') : undefined;
  const decodeTokens = 32;
  for (const base of REAL_SHAPES) {
    const s: RealShape = tiny ? tinyShape(base) : base;
    const V = s.config.vocab_size;
    const params = paramCount(s);
    const fileBytes = dataBytes(s);
    const runs: { B: number; N: number; steps: number }[] = [
      { B: 1, N: 64, steps: Number(stepsOpt ?? (quick ? 2 : 6)) },
      { B: 4, N: 64, steps: Number(stepsOpt ?? (quick ? 2 : 6)) },
    ];
    if (['SmolLM2-135M', 'Llama-3.2-1B'].includes(base.name))
      runs.push({ B: 1, N: 1024, steps: Number(stepsOpt ?? (quick ? 2 : 4)) });
    for (const { B, N, steps } of runs) {
      const label = `R ${s.name} B=${B} N=${N}`;
      const torch = s.torch && withRef;
      // RAM: cramlab's weights as stored (×1.3, the target of #22) and torch's fp32 widening, beside the
      // batch's activations (the same estimate cram() checks, on the native engine's formula)
      const actBytes = cramBytes({ info: infoFromConfig(s.config) }, B, N, 1, 'native');
      const skip = () => {
        const disk = diskShortfall(s, root);
        if (disk) return disk;
        const free = availableMemoryBytes().bytes;
        const need = 1.3 * fileBytes + actBytes;
        return need > free
          ? `needs ~${GiB(need)} of RAM (1.3 × the ${GiB(fileBytes)} file + activations), ${GiB(free)} available`
          : '';
      };
      plan.push({
        group: 'R',
        label,
        what: `${s.hub} (${s.config.model_type}, ${s.dtype}, ${(params / 1e6).toFixed(1)} M params, ${(fileBytes / 1e9).toFixed(2)} GB${isCached(s, root) ? ', cached' : ', written on first use'}), ${B} text${B > 1 ? 's' : ''} × N=${N}, K=1, ${steps} steps${B === 1 && N === 64 ? `, decode ${decodeTokens} tokens` : ''}${s.torch ? ', torch beside it' : ''}`,
        skip,
        run: async () => {
          const dir = realCheckpoint(s, root, (m) => console.log(`  ${m}`));
          const idsFile = path.join(tmp, `${label.replace(/\W/g, '_')}.json`);
          writeIds(
            idsFile,
            `${label}: seeded random ids (no tokenizer)`,
            randomTexts(7000 + N + B, B, N, V, s.config.bos_token_id ?? 0),
          );
          const w: Workload = {
            label,
            dir,
            idsFile,
            texts: B,
            N,
            maxSteps: steps,
            patience: steps,
            shape: modelShape(dir),
            phases: true,
            decode: B === 1 && N === 64 ? decodeTokens : 0,
          };
          if (withMine) show(await runCramlab(w, ctx));
          if (!torch) return;
          const fp32 = 4 * params + actBytes;
          const free = availableMemoryBytes().bytes;
          if (fp32 > free)
            show(
              emptyRow(
                { ...w, weightBytes: w.shape.weightBytes },
                {
                  side: 'torch',
                  engine: 'torch',
                  status: `skipped: the torch reference widens every weight to fp32: ~${GiB(fp32)} needed, ${GiB(free)} available`,
                },
              ),
            );
          else torchSides(w);
        },
      });
    }
  }

  const chosen = plan.filter((p) => selected(only, p.group, p.label));
  if (!chosen.length) throw new Error(`--only ${only} selects no row (see --list)`);
  if (list) {
    console.log(
      `${chosen.length} rows (of ${plan.length}); token ids are fed directly (seeded random ids, no tokenizer)`,
    );
    for (const p of chosen) {
      const why = p.skip();
      console.log(`${p.label.padEnd(34)} ${why ? `SKIP: ${why}` : p.what}`);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    return;
  }

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
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outFile =
    opt('out') ?? path.join(ROOT, 'bench', 'results', `${stamp}-${os.hostname()}${quick ? '-quick' : ''}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  function save(uptimeEnd?: string) {
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
  }

  try {
    for (const p of chosen) {
      console.log(`${p.label}: ${p.what}`);
      const why = p.skip();
      if (why) {
        show(emptyRow({ label: p.label, texts: NaN, N: NaN, dir: '' }, { side: '', status: `skipped: ${why}` }));
        continue;
      }
      await p.run();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  const uptimeEnd = uptime();
  save(uptimeEnd);
  printResults({ rows, loadStart, uptimeStart, uptimeEnd });
  console.log(`\nwrote ${path.relative(process.cwd(), outFile)}`);
}

if (require.main === module)
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
