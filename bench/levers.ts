// The speed levers one at a time, on one small W1-like workload (stories260K, K = 1, N = 16, 8 texts,
// 150 steps each so every variant does the same work), in one process so machine load hits all alike.
//   node --import tsx bench/levers.ts [--backend wasm|cpu] [--texts 8] [--steps 150]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, type BackendName } from '../src/backend';
import { cram } from '../src/cram/cram';
import { modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import type { CausalLM } from '../src/models/types';
import { Weights } from '../src/models/weights';
import { LlamaOld } from './llama_old';

const opt = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};

async function main() {
  const backend = await initBackend(process.argv.includes('--backend') ? (opt('backend', 'wasm') as BackendName) : undefined);
  const nTexts = Number(opt('texts', '8'));
  const steps = Number(opt('steps', '150'));
  const dir = path.join(process.env.CRAMLAB_MODELS ?? path.resolve(__dirname, '..', '..', 'shared', 'models'), 'stories260K');
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const tensors = readSafetensors(path.join(dir, 'model.safetensors')).tensors;
  const fast = modelFromTensors(cfg, tensors);
  const old: CausalLM = new LlamaOld(cfg, new Weights(tensors, 'old'));
  const samples: number[][] = JSON.parse(fs.readFileSync(path.resolve(dir, '..', '..', 'datasets', 'stories260k-samples.json'), 'utf8')).samples.map((s: any) => s.ids);
  const texts = samples.slice(0, nTexts).map((ids) => ids.slice(0, 16));
  const base = { K: 1, maxSteps: steps, patience: 10 * steps, quiet: true };
  // patience > steps and texts that stop early at 100% still count: compare text-steps per second.
  const variants: [string, () => Promise<number>][] = [
    ['batched, sync every 10 (default)', async () => sum(await cram(fast, texts, base))],
    ['batched, sync every step', async () => sum(await cram(fast, texts, { ...base, syncEvery: 1 }))],
    ['one text at a time (authors)', async () => { let n = 0; for (const t of texts) n += sum(await cram(fast, [t], base)); return n; }],
    ['batched, unoptimised Llama forward', async () => sum(await cram(old, texts, base))],
    ['batched, sync every 10 (default, again)', async () => sum(await cram(fast, texts, base))],
  ];
  console.log(`backend ${backend}; ${nTexts} texts, N = 16, ≤ ${steps} steps`);
  // Warm up both models (wasm compilation, XNNPACK operator setup, JIT) before anything is timed.
  for (const m of [fast, old]) for (const b of [1, nTexts]) await cram(m, texts.slice(0, b), { ...base, maxSteps: 12 });
  for (const [name, run] of variants) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const textSteps = await run();
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e6;
    console.log(`${name.padEnd(38)} ${textSteps} text-steps  wall ${wall.toFixed(1)} s  cpu ${cpu.toFixed(1)} s  ${(textSteps / wall).toFixed(1)} text-steps/s  ${((1000 * cpu) / textSteps).toFixed(2)} cpu-ms/text-step`);
  }
}
const sum = (rs: { steps: number }[]) => rs.reduce((a, r) => a + r.steps, 0);
main();
