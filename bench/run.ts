// npm run bench: cramlab's cram() and the reference PyTorch loop (../shared/bench/ref_cram.py) side by
// side on fixed workloads, in one invocation (so the machine's load hits both alike).
//   W1  stories260K, K = 1, N = 16 and 32, the first 16 samples, ≤ 5000 steps, patience 2000 (the
//       authors' rules): wall time until every text is done. Reference: --batch 1 (the authors' loop)
//       and --batch 16 (best PyTorch).
//   W2  throughput only: a random-init Llama (d 256, 4 layers, vocab 2048), N = 128, 8 texts, 50 steps.
// Options: --quick (4 texts, ≤ 300 steps; W2 10 steps), --only W1|W2, --backend wasm|cpu, --lengths 16,32,
//          --threads T (torch threads, default 2), --no-ref (cramlab only), --ref-only (W2: torch only),
//          --init mean-embedding (adds a W1 run with that init), --out FILE, --table FILE.json... (re-print)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { estimateCpuPeakGflops, initBackend, type BackendName } from '../src/backend';
import { cram, type CramResult } from '../src/cram/cram';
import { initByName, type InitName } from '../src/cram/init';
import { cramStepFlops } from '../src/flops';
import { greedyGenerate } from '../src/generate';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import type { CausalLM } from '../src/models/types';
import { writeW2Folder } from './w2model';

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
const PYTHON = process.env.CRAMLAB_PYTHON ?? '/usr/bin/python3';

interface Row {
  workload: string;
  side: string;
  backend: string;
  texts: number;
  N: number;
  wallS: number;
  /** CPU seconds used (user + system; all threads): robust to other work on a shared machine. */
  cpuS?: number;
  textSteps: number;
  textStepsPerS: number;
  tokensPerS: number;
  gflops: number;
  peakPct: number;
  peakRssMB: number;
  peakTensorMB?: number;
  medianStepsTo100?: number | null;
  medianStepsToBest?: number;
  decoded?: number;
}

const median = (xs: number[]): number | null => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function loadFolder(dir: string): CausalLM {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  return modelFromTensors(cfg, readSafetensors(path.join(dir, 'model.safetensors')).tensors);
}

/** cramlab side: one cram() call over all texts (batched, finished texts dropped). */
async function runCramlab(label: string, model: CausalLM, texts: number[][], maxSteps: number, patience: number, backend: string, peak: number, init: InitName = 'randn'): Promise<Row> {
  const K = 1;
  const N = texts[0].length;
  let peakBytes = tf.memory().numBytes;
  const initMem = initByName(init, model, texts, K, 0);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const rs: CramResult[] = await cram(model, texts, {
    K,
    maxSteps,
    patience,
    quiet: true,
    initMem,
    onProgress: () => {
      peakBytes = Math.max(peakBytes, tf.memory().numBytes);
    },
  });
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const textSteps = rs.reduce((a, r) => a + r.steps, 0);
  const flops = cramStepFlops(model, 1, K + N).total * textSteps;
  const decoded = rs.filter((r) => r.bestAccuracy === 1);
  return {
    workload: label,
    side: init === 'randn' ? 'cramlab' : `cramlab init=${init}`,
    backend,
    texts: texts.length,
    N,
    wallS,
    cpuS: (cpu.user + cpu.system) / 1e6,
    textSteps,
    textStepsPerS: textSteps / wallS,
    tokensPerS: (textSteps * (K + N)) / wallS,
    gflops: flops / wallS / 1e9,
    peakPct: (100 * flops) / wallS / 1e9 / peak,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    peakTensorMB: peakBytes / 2 ** 20,
    medianStepsTo100: median(decoded.map((r) => r.stepsToBest)),
    medianStepsToBest: median(rs.map((r) => r.stepsToBest)) ?? undefined,
    decoded: decoded.length,
  };
}

/** Reference side: ref_cram.py in a child process; peak RSS from the child's rusage. */
function runRef(label: string, model: CausalLM, modelDir: string, idsFile: string, nTexts: number, N: number, batch: number, maxSteps: number, patience: number, peak: number, threads: number): Row | undefined {
  const out = path.join(os.tmpdir(), `cramlab-ref-${process.pid}-${label}-${batch}.json`);
  const args = [REF, '--model', modelDir, '--ids', idsFile, '--lengths', String(N), '--mem', '1', '--samples', String(nTexts), '--batch', String(batch), '--max-steps', String(maxSteps), '--patience', String(patience), '--threads', String(threads), '--no-verify', '--out', out];
  const wrap = 'import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); u = resource.getrusage(resource.RUSAGE_CHILDREN); print("MAXRSS_KB", u.ru_maxrss, "CPU_S", u.ru_utime + u.ru_stime); sys.exit(r.returncode)';
  const p = spawnSync(PYTHON, ['-c', wrap, PYTHON, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (p.status !== 0) {
    console.error(`reference (${label}, --batch ${batch}) failed: ${p.error?.message ?? ''}\n${(p.stderr ?? '').split('\n').slice(-6).join('\n')}`);
    return undefined;
  }
  const rss = Number(/MAXRSS_KB (\d+)/.exec(p.stdout)?.[1] ?? 0);
  const cpuS = Number(/CPU_S ([\d.]+)/.exec(p.stdout)?.[1] ?? NaN); // whole child: includes model load
  const res = JSON.parse(fs.readFileSync(out, 'utf8'));
  fs.rmSync(out, { force: true });
  const agg = res.aggregate;
  const recs: any[] = res.records;
  const wallS: number = agg.opt_wall_s;
  const textSteps: number = agg.iters_total;
  const flops = cramStepFlops(model, 1, 1 + N).total * textSteps;
  const decoded = recs.filter((r) => r.best_acc === 1);
  return {
    workload: label,
    side: `torch --batch ${batch}`,
    backend: `torch ${res.meta.torch} ×${res.meta.torch_threads} threads`,
    texts: nTexts,
    N,
    wallS,
    cpuS,
    textSteps,
    textStepsPerS: textSteps / wallS,
    tokensPerS: agg.fwd_bwd_tokens_per_s,
    gflops: flops / wallS / 1e9,
    peakPct: (100 * flops) / wallS / 1e9 / peak,
    peakRssMB: rss / 1024,
    medianStepsTo100: median(decoded.map((r) => r.steps_to_best)),
    medianStepsToBest: median(recs.map((r) => r.steps_to_best ?? 0)) ?? undefined,
    decoded: decoded.length,
  };
}

function table(rows: Row[]): string {
  const head = ['workload', 'side', 'texts', 'wall s', 'cpu s', 'text-steps', 'steps/s', 'tokens/s', 'GFLOP/s', '% peak', 'RSS MB', 'tensors MB', 'med steps→100%', 'decoded'];
  const body = rows.map((r) => [
    r.workload,
    r.side,
    String(r.texts),
    r.wallS.toFixed(1),
    r.cpuS === undefined || Number.isNaN(r.cpuS) ? '' : r.cpuS.toFixed(1),
    String(r.textSteps),
    r.textStepsPerS.toFixed(1),
    r.tokensPerS.toFixed(0),
    r.gflops.toFixed(2),
    r.peakPct.toFixed(2),
    r.peakRssMB.toFixed(0),
    r.peakTensorMB === undefined ? '' : r.peakTensorMB.toFixed(1),
    r.medianStepsTo100 == null ? '' : String(r.medianStepsTo100),
    r.decoded === undefined ? '' : `${r.decoded}/${r.texts}`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
  return [line(head), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...body.map(line)].join('\n');
}

function ratios(rows: Row[]): string[] {
  const out: string[] = [];
  for (const wl of [...new Set(rows.map((r) => r.workload))]) {
    const mine = rows.find((r) => r.workload === wl && r.side === 'cramlab');
    if (!mine) continue;
    for (const ref of rows.filter((r) => r.workload === wl && r.side.startsWith('torch'))) {
      out.push(`${wl}: cramlab / ${ref.side}: wall ${(mine.wallS / ref.wallS).toFixed(2)}× (${mine.wallS <= ref.wallS ? 'cramlab faster or equal' : 'cramlab slower'}), text-steps/s ${(mine.textStepsPerS / ref.textStepsPerS).toFixed(2)}×`);
    }
  }
  return out;
}

async function main() {
  if (flag('table')) {
    // Re-print saved results: npm run bench -- --table bench/results/a.json [b.json ...]
    const files = argv.filter((a) => a.endsWith('.json'));
    const rows: Row[] = files.flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')).rows);
    console.log(table(rows) + '\n');
    for (const l of ratios(rows)) console.log(l);
    return;
  }
  const quick = flag('quick');
  const only = opt('only');
  const withRef = !flag('no-ref');
  const backend = await initBackend(opt('backend') as BackendName | undefined);
  const threads = Number(opt('threads', '2'));
  const peak = estimateCpuPeakGflops();
  const extraInit = opt('init') as InitName | undefined;
  if (withRef && !fs.existsSync(PYTHON)) throw new Error(`${PYTHON} not found: install python3-torch (Debian) or pass --no-ref`);
  console.log(`backend ${backend}; CPU ${peak.model}: ${peak.cores} cores × ${peak.ghz.toFixed(2)} GHz × ${peak.flopsPerCycle} FLOP/cycle ≈ ${peak.gflops.toFixed(0)} GFLOP/s fp32 peak; load ${os.loadavg()[0].toFixed(1)}`);
  const rows: Row[] = [];
  const outFile = opt('out') ?? path.join(ROOT, 'bench', 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const save = () => fs.writeFileSync(outFile, JSON.stringify({ date: new Date().toISOString(), argv, backend, cpu: peak, loadavg: os.loadavg(), node: process.version, rows }, null, 1));
  const show = (r?: Row) => {
    if (!r) return;
    rows.push(r);
    save(); // after every row: a long run that is cut short keeps what it measured
    console.log(`  ${r.workload} ${r.side}: ${r.wallS.toFixed(1)} s, ${r.textStepsPerS.toFixed(1)} text-steps/s, ${r.gflops.toFixed(2)} GFLOP/s`);
  };

  if (!only || only === 'W1') {
    const dir = path.join(MODELS, 'stories260K');
    if (!fs.existsSync(dir)) throw new Error(`${dir} not found (set CRAMLAB_MODELS)`);
    const model = loadFolder(dir);
    const samples: number[][] = JSON.parse(fs.readFileSync(SAMPLES, 'utf8')).samples.map((s: any) => s.ids);
    const nTexts = quick ? 4 : 16;
    const [maxSteps, patience] = quick ? [300, 2000] : [5000, 2000];
    for (const N of (opt('lengths') ?? '16,32').split(',').map(Number)) {
      const label = `W1 N=${N}`;
      const texts = samples.slice(0, nTexts).map((ids) => ids.slice(0, N));
      console.log(`${label}: ${nTexts} texts, ≤ ${maxSteps} steps`);
      show(await runCramlab(label, model, texts, maxSteps, patience, backend, peak.gflops));
      if (extraInit) show(await runCramlab(label, model, texts, maxSteps, patience, backend, peak.gflops, extraInit));
      if (withRef) {
        show(runRef(label, model, dir, SAMPLES, nTexts, N, 1, maxSteps, patience, peak.gflops, threads));
        show(runRef(label, model, dir, SAMPLES, nTexts, N, nTexts, maxSteps, patience, peak.gflops, threads));
      }
    }
    model.dispose();
  }

  if (!only || only === 'W2') {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-w2-'));
    try {
      const dir = writeW2Folder(path.join(tmp, 'model'));
      const model = loadFolder(dir);
      const [nTexts, N, steps] = [8, 128, quick ? 10 : 50];
      // Seeded token ids in the shared samples format: BOS, a random token, the model's own greedy
      // continuation (31 tokens: some predictions are right from the start, which ref_cram.py's
      // summary needs) and random tokens after that (so no text is decoded within 50 steps).
      let s = 12345;
      const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
      const texts: number[][] = [];
      for (let i = 0; i < nTexts; i++) {
        const start = [1, 3 + Math.floor(rnd() * 2045)];
        const greedy = await greedyGenerate(model, start, { maxNewTokens: 31, eosTokenIds: [] });
        const head = [...start, ...greedy];
        texts.push([...head, ...Array.from({ length: N - head.length }, () => 3 + Math.floor(rnd() * 2045))]);
      }
      const idsFile = path.join(tmp, 'ids.json');
      fs.writeFileSync(idsFile, JSON.stringify({ meta: { note: 'W2 random ids' }, samples: texts.map((ids, id) => ({ id, ids })) }));
      const label = 'W2';
      console.log(`${label}: random Llama d=256 × 4 layers, vocab 2048, ${nTexts} texts × N=${N}, ${steps} steps`);
      if (!flag('ref-only')) show(await runCramlab(label, model, texts, steps, steps, backend, peak.gflops));
      if (withRef) show(runRef(label, model, dir, idsFile, nTexts, N, nTexts, steps, steps, peak.gflops, threads));
      model.dispose();
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  console.log('\n' + table(rows) + '\n');
  for (const l of ratios(rows)) console.log(l);
  save();
  console.log(`\nwrote ${path.relative(process.cwd(), outFile)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
