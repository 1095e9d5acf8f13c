// The 2026 anchor's loss and schedule options (Tarasov et al., progressive_cramming), all off by default
// so the authors' protocol stays the default:
//   leading weight   prediction t (0-based, predicts ids[t+1]) weighs w for t < n, else 1;
//                    loss = Σ w_t·ce_t / Σ w_t    (w = 1: the plain mean; an early miss derails decoding)
//   cosine lr        lr_t = minLr + (lr - minLr)·(1 + cos(π·t / maxSteps)) / 2,  t the 0-based iteration
//   grad-norm clip   g ← g · min(1, c / (‖g‖ + 1e-6)) per text, before AdamW (torch clip_grad_norm_)
// Both engines read the resolved Schedule; recordPrint fingerprints what differs from the defaults.
import { CramError } from './error';

export type LrSchedule = 'constant' | 'cosine';
export const LR_SCHEDULES: readonly LrSchedule[] = ['constant', 'cosine'];

export interface ScheduleOptions {
  /** Weight of the first `leadingCount` predictions in each text's loss (default 1: a plain mean). */
  leadingWeight?: number;
  /** How many leading predictions get `leadingWeight` (default 0). */
  leadingCount?: number;
  /** constant (default) or cosine decay from lr to minLr over maxSteps. */
  lrSchedule?: LrSchedule;
  /** Floor of the cosine schedule (default 0). */
  minLr?: number;
  /** Clip each text's gradient to this L2 norm before AdamW (default 0: no clipping). */
  clipGradNorm?: number;
}

export type Schedule = Required<ScheduleOptions>;

export const SCHEDULE_DEFAULTS: Schedule = {
  leadingWeight: 1,
  leadingCount: 0,
  lrSchedule: 'constant',
  minLr: 0,
  clipGradNorm: 0,
};

export function resolveSchedule(o: ScheduleOptions): Schedule {
  const s = { ...SCHEDULE_DEFAULTS };
  for (const k of Object.keys(s) as (keyof Schedule)[]) if (o[k] !== undefined) (s as any)[k] = o[k];
  for (const k of ['leadingWeight', 'minLr', 'clipGradNorm'] as const)
    if (!(Number.isFinite(s[k]) && s[k] >= 0)) throw new CramError(`${k} must be a finite number ≥ 0, got ${s[k]}`);
  if (!(s.leadingWeight > 0)) throw new CramError(`leadingWeight must be above 0, got ${s.leadingWeight}`);
  if (!(Number.isInteger(s.leadingCount) && s.leadingCount >= 0))
    throw new CramError(`leadingCount must be an integer ≥ 0, got ${s.leadingCount}`);
  if (!LR_SCHEDULES.includes(s.lrSchedule))
    throw new CramError(`lrSchedule must be constant or cosine, got ${s.lrSchedule}`);
  return s;
}

/** The options that differ from the defaults (undefined when none): what a record's fingerprint adds. */
export function scheduleChanges(o: ScheduleOptions): Partial<Schedule> | undefined {
  const s = resolveSchedule(o);
  const out: Partial<Schedule> = {};
  for (const k of Object.keys(s) as (keyof Schedule)[]) if (s[k] !== SCHEDULE_DEFAULTS[k]) (out as any)[k] = s[k];
  return Object.keys(out).length ? out : undefined;
}

/** Learning rate of iteration `it` (0-based). */
export function lrAt(s: Schedule, lr: number, it: number, maxSteps: number): number {
  if (s.lrSchedule === 'constant') return lr;
  return s.minLr + ((lr - s.minLr) * (1 + Math.cos((Math.PI * it) / maxSteps))) / 2;
}

/** Loss weights of a text's R predictions, summing to 1 (exactly 1/R each without leading weight). */
export function predictionWeights(s: Schedule, R: number): Float64Array {
  const w = new Float64Array(R);
  if (s.leadingCount === 0 || s.leadingWeight === 1) return w.fill(1 / R);
  const lead = Math.min(s.leadingCount, R);
  const total = lead * s.leadingWeight + (R - lead);
  for (let t = 0; t < R; t++) w[t] = (t < lead ? s.leadingWeight : 1) / total;
  return w;
}
