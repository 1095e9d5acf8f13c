// The cramlab side of one bench workload, in its own process (bench/run.ts spawns it), so a crash
// (tfjs-wasm's "memory access out of bounds" on a 135M model) costs one row, not the bench.
//   node --import tsx bench/worker.ts --model DIR --ids FILE --texts n --N n --max-steps n --patience n
//        [--K 1] [--sync-every 1] [--decode 0] [--init randn|mean-embedding] [--backend wasm|cpu] --out FILE.json
// The engine comes from the environment (CRAMLAB_ENGINE), as for any cram() user.
// Phases, each timed on its own (what the user waits for, in order):
//   load      the checkpoint read and the model built (loadModel when the folder has a tokenizer, else
//             readSafetensors + modelFromTensors: the same build, without the tokenizer and weights hash)
//   setup     from cram() being called until its step loop starts (checks, embedding std and mem init,
//             native copy or batch building) = the first read-back's wall time minus cram()'s own clock
//             (ProgressInfo.seconds, which starts with the loop); plus the init of --init when not randn
//   first     the first step (syncEvery 1: one step per read-back)
//   steady    the median of the steps after the first (wall and CPU seconds per step)
//   decode    greedy decoding after the best mem of text 0 and its first token: (time for 1 + n tokens
//             − time for 1 token) / n, so the prefill is left out (--decode n, 0 = none); beside it the
//             memory-bandwidth bound (native engine): bytes one token reads (every matrix as stored, but an
//             untied input embedding) / the GB/s of a streaming read over 512 MB with the same threads
// Beside load: readS, the checkpoint's files read once from a warm page cache (an fs read loop, the
// second of two passes), and the RSS after load apart from the peak (the weights vs the activations).
// hashS (readSafetensors loads only): loadModel's weights hash, uncached, timed on its own after the load;
// a first loadModel runs it on a worker thread beside the load, later ones find it cached by file identity.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../src/backend';
import { cram } from '../src/cram/cram';
import { initByName, type InitName } from '../src/cram/init';
import { greedyGenerate } from '../src/generate';
import { loadModel, modelFromTensors, weightsHashOf } from '../src/io/checkpoint';
import { existingNative, nativeAddon } from '../src/native/index';
import { readSafetensors } from '../src/io/safetensors';
import type { CausalLM } from '../src/models/types';
import { engineName } from './engine';

const argv = process.argv.slice(2);
const opt = (name: string, def?: string): string => {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? argv[i + 1] : def;
  if (v === undefined) throw new Error(`worker: --${name} is required`);
  return v;
};
const now = () => performance.now() / 1000;
const cpuNow = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};
const median = (xs: number[]): number | null => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Seconds to read the checkpoint's .safetensors files from a warm page cache (the second of two passes). */
function warmReadS(dir: string): number {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  const buf = Buffer.allocUnsafe(1 << 24);
  const pass = () => {
    const t = now();
    for (const f of files) {
      const fd = fs.openSync(path.join(dir, f), 'r');
      try {
        while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
      } finally {
        fs.closeSync(fd);
      }
    }
    return now() - t;
  };
  pass();
  return pass();
}

async function load(dir: string): Promise<{ model: CausalLM; loader: string }> {
  if (fs.existsSync(path.join(dir, 'tokenizer.json')))
    return { model: (await loadModel(dir)).model, loader: 'loadModel' };
  if (!fs.existsSync(dir)) throw new Error(`model folder '${dir}' does not exist`);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const model = modelFromTensors(cfg, readSafetensors(path.join(dir, 'model.safetensors')).tensors);
  return { model, loader: 'readSafetensors+modelFromTensors' };
}

/** One read-back of cram(): when it came (wall and CPU since the call) and cram()'s own clock. */
type Mark = { step: number; wall: number; cpu: number; seconds: number };

/** The phase split of one cram() call from its read-backs (see the header). */
export function phases(marks: Mark[], callS: number) {
  if (!marks.length) return null;
  const [m0] = marks;
  const setupS = m0.wall - m0.seconds;
  const firstStepS = m0.step === 1 ? m0.seconds : null; // a first read-back of several steps hides it
  const per: number[] = [];
  const perCpu: number[] = [];
  for (let i = 1; i < marks.length; i++) {
    const n = marks[i].step - marks[i - 1].step;
    if (n <= 0) continue;
    per.push((marks[i].seconds - marks[i - 1].seconds) / n);
    perCpu.push((marks[i].cpu - marks[i - 1].cpu) / n);
  }
  const last = marks[marks.length - 1];
  return {
    setupS,
    firstStepS,
    steadySPerStep: median(per),
    steadyCpuSPerStep: median(perCpu),
    /** Wall seconds of each step after the first (read-back to read-back). */
    stepS: per,
    /** cram() after its last step: the results built and returned. */
    finishS: callS - last.wall,
  };
}

async function main() {
  const dir = opt('model');
  const backend = await initBackend(opt('backend', 'wasm') as BackendName);
  const readS = fs.existsSync(dir) ? warmReadS(dir) : null;
  const tl = now();
  const { model, loader } = await load(dir);
  const loadS = now() - tl;
  const rssAfterLoadKB = process.resourceUsage().maxRSS;
  let hashS: number | null = null;
  if (loader !== 'loadModel') {
    const th = now();
    process.env.CRAMLAB_HASH_CACHE = 'off';
    weightsHashOf(dir);
    hashS = now() - th;
  }
  const N = Number(opt('N'));
  const K = Number(opt('K', '1'));
  const syncEvery = Number(opt('sync-every', '1'));
  const texts: number[][] = JSON.parse(fs.readFileSync(opt('ids'), 'utf8'))
    .samples.slice(0, Number(opt('texts')))
    .map((s: { ids: number[] }) => s.ids.slice(0, N));
  const ti = now();
  const initMem = initByName(opt('init', 'randn') as InitName, model, texts, K, 0);
  const initS = now() - ti;
  let peakBytes = tf.memory().numBytes;
  const marks: Mark[] = [];
  const c0 = cpuNow();
  const t0 = now();
  const rs = await cram(model, texts, {
    K,
    maxSteps: Number(opt('max-steps')),
    patience: Number(opt('patience')),
    syncEvery,
    quiet: true,
    initMem,
    onProgress: (p) => {
      marks.push({ step: p.step, wall: now() - t0, cpu: cpuNow() - c0, seconds: p.seconds });
      peakBytes = Math.max(peakBytes, tf.memory().numBytes);
    },
  });
  const wallS = now() - t0;
  const cpuS = cpuNow() - c0;
  const ph = phases(marks, wallS);

  let decode:
    | { tokens: number; firstTokenS: number; msPerToken: number; boundMs?: number; readGBs?: number; bytes?: number }
    | undefined;
  const nDecode = Number(opt('decode', '0'));
  if (nDecode > 0) {
    const prefix = tf.tensor2d(rs[0].bestMem, [K, model.info.memDim]);
    const gen = async (n: number) => {
      const t = now();
      const out = await greedyGenerate(model, texts[0].slice(0, 1), { prefix, maxNewTokens: n, eosTokenIds: [] });
      return { s: now() - t, n: out.length };
    };
    await gen(1); // warm: first-call allocations (KV cache, buffers) are not per token
    const one = await gen(1);
    const many = await gen(1 + nDecode);
    prefix.dispose();
    decode = {
      tokens: many.n - one.n,
      firstTokenS: one.s,
      msPerToken: (1000 * (many.s - one.s)) / Math.max(1, many.n - one.n),
    };
  }
  const maxRssKB = process.resourceUsage().maxRSS; // before the bandwidth probe's 1 GB buffer
  const handle = existingNative(model);
  const addon = nativeAddon();
  if (decode && handle && addon) {
    const bytes = addon.modelInfo(handle).decodeBytes;
    const readGBs = addon.readBandwidth(512);
    decode = { ...decode, bytes, readGBs, boundMs: (1000 * bytes) / (readGBs * 1e9) };
  }
  const out = {
    engine: await engineName(),
    backend,
    loader,
    loadS,
    readS,
    hashS,
    initS,
    /** Until the first step starts: --init's own init (0 for randn) and cram()'s setup. */
    setupS: ph ? initS + ph.setupS : null,
    firstStepS: ph?.firstStepS ?? null,
    steadySPerStep: ph?.steadySPerStep ?? null,
    steadyCpuSPerStep: ph?.steadyCpuSPerStep ?? null,
    stepS: ph?.stepS ?? [],
    finishS: ph?.finishS ?? null,
    syncEvery,
    /** The whole cram() call: setup, every step, the results. */
    wallS,
    cpuS,
    textSteps: rs.reduce((a, r) => a + r.steps, 0),
    steps: Math.max(...rs.map((r) => r.steps)),
    stepsToBest: rs.map((r) => r.stepsToBest),
    decodedStepsToBest: rs.filter((r) => r.bestAccuracy === 1).map((r) => r.stepsToBest),
    decode,
    peakTensorMB: peakBytes / 2 ** 20,
    rssAfterLoadKB,
    maxRssKB,
  };
  fs.writeFileSync(opt('out'), JSON.stringify(out));
  model.dispose();
}

if (require.main === module)
  main().catch((e) => {
    // One line for run.ts's row: "RuntimeError: memory access out of bounds", not a stack.
    console.error(e instanceof Error ? (e.name === 'Error' ? e.message : `${e.name}: ${e.message}`) : String(e));
    process.exit(1);
  });
