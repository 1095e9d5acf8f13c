// The cramlab side of one bench workload, in its own process (bench/run.ts spawns it), so a crash
// (tfjs-wasm's "memory access out of bounds" on a 135M model) costs one row, not the bench.
//   node --import tsx bench/worker.ts --model DIR --ids FILE --texts n --N n --max-steps n --patience n
//        [--init randn|mean-embedding] [--backend wasm|cpu] --out FILE.json
// The engine comes from the environment (CRAMLAB_ENGINE), as for any cram() user.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../src/backend';
import { cram } from '../src/cram/cram';
import { initByName, type InitName } from '../src/cram/init';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { engineName } from './engine';

const argv = process.argv.slice(2);
const opt = (name: string, def?: string): string => {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? argv[i + 1] : def;
  if (v === undefined) throw new Error(`worker: --${name} is required`);
  return v;
};

async function main() {
  const dir = opt('model');
  const backend = await initBackend(opt('backend', 'wasm') as BackendName);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const model = modelFromTensors(cfg, readSafetensors(path.join(dir, 'model.safetensors')).tensors);
  const N = Number(opt('N'));
  const texts: number[][] = JSON.parse(fs.readFileSync(opt('ids'), 'utf8'))
    .samples.slice(0, Number(opt('texts')))
    .map((s: { ids: number[] }) => s.ids.slice(0, N));
  const K = 1;
  const initMem = initByName(opt('init', 'randn') as InitName, model, texts, K, 0);
  let peakBytes = tf.memory().numBytes;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const rs = await cram(model, texts, {
    K,
    maxSteps: Number(opt('max-steps')),
    patience: Number(opt('patience')),
    quiet: true,
    initMem,
    onProgress: () => {
      peakBytes = Math.max(peakBytes, tf.memory().numBytes);
    },
  });
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const out = {
    engine: await engineName(),
    backend,
    wallS,
    cpuS: (cpu.user + cpu.system) / 1e6,
    textSteps: rs.reduce((a, r) => a + r.steps, 0),
    steps: Math.max(...rs.map((r) => r.steps)),
    stepsToBest: rs.map((r) => r.stepsToBest),
    decodedStepsToBest: rs.filter((r) => r.bestAccuracy === 1).map((r) => r.stepsToBest),
    peakTensorMB: peakBytes / 2 ** 20,
    maxRssKB: process.resourceUsage().maxRSS,
  };
  fs.writeFileSync(opt('out'), JSON.stringify(out));
  model.dispose();
}

main().catch((e) => {
  // One line for run.ts's row: "RuntimeError: memory access out of bounds", not a stack.
  console.error(e instanceof Error ? (e.name === 'Error' ? e.message : `${e.name}: ${e.message}`) : String(e));
  process.exit(1);
});
