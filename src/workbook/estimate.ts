// How long a notebook's cram will take on this machine, said before it starts: the budget's steps ×
// texts × a per-step cost. The cost is measured, not assumed: a short probe crams random tokens (they
// never decode early) at two lengths, which splits a step into a fixed part and a part proportional
// to its FLOPs (flops.ts); other lengths are priced from those two numbers.
import { cram } from '../cram/cram';
import { cramStepFlops } from '../flops';
import type { CausalLM } from '../models/types';
import { mulberry32 } from '../random';
import type { Budget } from './budget';

/** A workbook model as far as timing goes (experiments.ts's WorkbookModel is one). */
type WorkbookModel = { name: string; model: CausalLM };

const PROBE_STEPS = 12;
const PROBE_SHORT = 8;

/** Seconds one step takes for B texts of T tokens plus K mem: fixed + flops / rate. */
export interface StepCost {
  fixed: number;
  flopsPerSecond: number;
}

const probes = new Map<string, StepCost>();

async function stepSeconds(m: WorkbookModel, B: number, T: number, K: number): Promise<number> {
  const rand = mulberry32(T * 7919 + B);
  const V = m.model.info.vocabSize;
  const texts = Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(rand() * V)));
  const t0 = performance.now();
  await cram(m.model, texts, { K, maxSteps: PROBE_STEPS, patience: PROBE_STEPS, seed: 0, quiet: true });
  return (performance.now() - t0) / 1000 / PROBE_STEPS;
}

/** Beyond any CPU this runs on (a 2-core VM peaks near 134 GFLOP/s fp32). */
const MAX_FLOPS_PER_SECOND = 1e14;

/** The per-step cost of `m` for B texts with K mem, probed once per (model, B, K, longest T). */
export async function stepCost(m: WorkbookModel, B: number, K: number, longest: number): Promise<StepCost> {
  const key = `${m.name}|${B}|${K}|${longest}`;
  const known = probes.get(key);
  if (known) return known;
  const long = Math.max(PROBE_SHORT, Math.min(longest, m.model.info.maxPositions - K));
  const f = (T: number) => cramStepFlops(m.model, B, T + K).total;
  const tShort = await stepSeconds(m, B, PROBE_SHORT, K);
  const tLong = long > PROBE_SHORT ? await stepSeconds(m, B, long, K) : tShort;
  // Two points fix the line; timing noise can tilt it (a busy machine timed the longer probe no slower),
  // so neither part goes below zero, and a FLOP never costs less than at 100 TFLOP/s: a longer text
  // always prices higher.
  const measured = long > PROBE_SHORT ? (tLong - tShort) / (f(long) - f(PROBE_SHORT)) : 0;
  const slope = Math.max(1 / MAX_FLOPS_PER_SECOND, measured);
  const cost = { fixed: Math.max(0, tShort - slope * f(PROBE_SHORT)), flopsPerSecond: 1 / slope };
  probes.set(key, cost);
  return cost;
}

/** Seconds `steps` steps of B texts at length T take at `cost`. */
export const seconds = (m: WorkbookModel, cost: StepCost, B: number, T: number, K: number, steps: number): number =>
  steps * (cost.fixed + cramStepFlops(m.model, B, T + K).total / cost.flopsPerSecond);

/** '8 s', '40 s', '3 min', '1.5 h': as precise as an estimate is. */
export function roughly(s: number): string {
  if (s < 10) return `${Math.max(1, Math.ceil(s))} s`;
  if (s < 90) return `${Math.round(s / 10) * 10} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/**
 * The line a long cell prints first: the most a grid of crams can take here (every text running the
 * budget's maxSteps; texts stop sooner once they decode or stall for `patience` steps).
 */
export async function gridEstimate(
  m: WorkbookModel,
  jobs: { B: number; N: number }[],
  K: number,
  b: Budget,
  note: string,
): Promise<{ seconds: number; line: string }> {
  const work = jobs.filter((j) => j.B > 0 && j.N + K <= m.model.info.maxPositions);
  if (!work.length) return { seconds: 0, line: '' };
  const B = Math.max(...work.map((j) => j.B));
  const cost = await stepCost(m, B, K, Math.max(...work.map((j) => j.N)));
  const total = work.reduce((s, j) => s + seconds(m, cost, j.B, j.N, K, b.maxSteps), 0);
  const texts = work.reduce((s, j) => s + j.B, 0);
  return {
    seconds: total,
    line: `at most about ${roughly(total)} on this machine at the ${b.name} budget (${texts} cram(s) over ${work.length} length(s) × ≤ ${b.maxSteps} steps; ${note})`,
  };
}
