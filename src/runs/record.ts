// The one record of a crammed text: what a run folder's results.jsonl holds, one JSON line each,
// written by the CLI's sweeps and the notebooks alike. It is the text's metrics (metrics/text.ts)
// plus who made it: model, weights, text set, seed, and a fingerprint of everything that decides
// its result, so a run that finds a record with another fingerprint knows it is stale.
// Records of older versions (the CLI's kind 'grid', the workbook's own shape) are read through
// fromStored(), which maps them onto this one.
import { createHash } from 'node:crypto';
import { AUTHORS_ADAMW, type AdamWConfig } from '../cram/adamw';
import { CRAM_DEFAULTS } from '../cram/cram';
import type { TextCapacity } from '../cram/capacity';
import { scheduleChanges, type ScheduleOptions } from '../cram/schedule';
import { STATUS } from '../cram/result';
import { crossEntropy, type TextMetrics } from '../metrics/text';

export interface CramRecord extends TextMetrics {
  kind: 'cram';
  /** Text id within its set. */
  id: string;
  /** The model's name (workbook) or id (CLI: its folder or Hub id). */
  model: string;
  /** First 16 hex digits of the weights hash: a retrained model under the same name does not reuse records. */
  weights: string;
  /** Text set the text came from ('natural', 'random', a file, …). */
  set: string;
  seed: number;
  /** Short sha256 of everything that decides the result (recordPrint). */
  fingerprint: string;
  maxSteps: number;
  patience: number;
  /** cram's margin target when one was set (cram/cram.ts CramOptions.margin). */
  margin?: number;
  /** Whether the optimisation started from given vectors (a warm start) instead of the authors' init. */
  warmStart: boolean;
  /** The crammed text (its first N tokens, decoded), for hover text. */
  text?: string;
  /** Best mem, K×d float32 little-endian, base64. */
  mem?: string;
  /** Sampled loss / accuracy curve. */
  curve?: { step: number[]; loss: number[]; accuracy: number[] };
}

/** A per-text capacity found by bisection (CLI `capacity --bisect`, cram/capacity.ts), in <run>/bisect.jsonl. */
export interface BisectRecord extends Omit<TextCapacity, 'index' | 'mem'> {
  kind: 'bisect';
  id: string;
  /** Largest grid N this text decoded (null when no grid record for it). */
  gridLargestDecoded: number | null;
  fingerprint: string;
}

export type RecordKey = Pick<CramRecord, 'model' | 'set' | 'id' | 'N' | 'K'>;

export const recordKey = (r: RecordKey): string => `${r.model}|${r.set}|${r.id}|${r.N}|${r.K}`;

/** A text's init seed: a hash of its id (so it does not depend on which texts share its batch) plus a base. */
export function seedOf(id: string, base = 0): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return (h + base) >>> 0;
}

/** Short sha256 of a JSON value. */
export function fingerprint(parts: object): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

export interface PrintParts {
  /** The crammed ids (the first N tokens). */
  ids: number[];
  K: number;
  seed: number;
  /** The start vectors when not the authors' random init. */
  init?: Float32Array;
  weightsHash: string;
  options: Partial<AdamWConfig> &
    ScheduleOptions & {
      maxSteps?: number;
      patience?: number;
      rank?: number;
      rankTrain?: boolean;
      rankShared?: boolean;
      margin?: number;
    };
}

/** The fingerprint of one record: ids, K, seed, init, optimiser and stopping options (defaults resolved), weights;
 *  schedule.ts's options only where they differ from the defaults (older fingerprints stay valid). */
export function recordPrint(p: PrintParts): string {
  const o = { ...AUTHORS_ADAMW, maxSteps: CRAM_DEFAULTS.maxSteps, patience: CRAM_DEFAULTS.patience };
  for (const [k, v] of Object.entries(p.options)) if (v !== undefined && k in o) (o as any)[k] = v;
  const changes = scheduleChanges(p.options);
  return fingerprint({
    ids: p.ids,
    K: p.K,
    seed: p.seed,
    init: p.init ? encodeMem(p.init) : 'authors',
    weights: p.weightsHash,
    ...o,
    ...(changes ? { schedule: changes } : {}),
    ...(p.options.rank !== undefined ? { rank: p.options.rank } : {}),
    // only when set, like rank: the low-rank mem's trained W, b and their sharing over a batch
    ...(p.options.rankTrain ? { rankTrain: true } : {}),
    ...(p.options.rankShared ? { rankShared: true } : {}),
    // only when set, so records made without a margin keep their fingerprints
    ...(p.options.margin ? { margin: p.options.margin } : {}),
  });
}

export function encodeMem(mem: Float32Array): string {
  return Buffer.from(mem.buffer, mem.byteOffset, mem.byteLength).toString('base64');
}

export function decodeMem(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

const isInt = (v: unknown, min: number): boolean => Number.isInteger(v) && (v as number) >= min;

/**
 * Why a stored kind-'cram' record cannot be trusted (undefined: it can): a hand edit or a damaged line
 * (accuracy null, a string, 7.5; a count past N) must be recomputed, not reused or averaged.
 * NaN is stored as null (JSON), so numbers may be null only in a run whose status is 'nan'.
 */
export function recordProblem(x: any): string | undefined {
  for (const k of ['id', 'model', 'set'] as const)
    if (typeof x[k] !== 'string' || (k === 'id' && !x[k])) return `${k} is not a string`;
  // No fingerprint: an older version's record, stale rather than damaged.
  if (x.fingerprint !== undefined && typeof x.fingerprint !== 'string') return 'fingerprint is not a string';
  if (!isInt(x.N, 1) || !isInt(x.K, 1)) return 'N or K is not a positive integer';
  if (!STATUS.includes(x.status)) return `status ${JSON.stringify(x.status)} is not one of ${STATUS.join(', ')}`;
  const nan = x.status === 'nan';
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v)) || (nan && v === null);
  if (!num(x.bestAccuracy) || x.bestAccuracy < 0 || x.bestAccuracy > 1)
    return `bestAccuracy ${JSON.stringify(x.bestAccuracy)} is not a number in [0, 1]`;
  if (typeof x.decoded !== 'boolean') return 'decoded is not true or false';
  for (const k of ['correctWithMem', 'correctWithoutMem'] as const)
    if (!isInt(x[k], 0) || x[k] > x.N) return `${k} ${JSON.stringify(x[k])} is not a count in [0, N]`;
  if (!isInt(x.steps, 0) || !isInt(x.seed, 0)) return 'steps or seed is not an integer ≥ 0';
  for (const k of ['tokenGain', 'infoGainNats', 'infoGainBits', 'compression'] as const)
    if (!num(x[k])) return `${k} ${JSON.stringify(x[k])} is not a number`;
  for (const k of ['ceWithMem', 'ceWithoutMem'] as const)
    if (!x[k] || !num(x[k].totalBits) || !num(x[k].totalNats)) return `${k} is not a cross-entropy`;
  for (const k of ['text', 'mem'] as const)
    if (x[k] !== undefined && typeof x[k] !== 'string') return `${k} is not a string`;
  return undefined;
}

/** What a run folder knows that old records lack (config.json's model, the folder's text set). */
export interface StoredDefaults {
  model?: string;
  weights?: string;
  set?: string;
}

/**
 * A parsed results.jsonl line as a CramRecord, or undefined when it is none. Old shapes are mapped:
 *   kind 'grid' (CLI sweeps ≤ 0.1): metrics with id and seed; model and set from the run folder; bestMem as numbers
 *   no kind (workbook ≤ 0.1): textId, correct / correctWithout, ceWithoutBits / ceWithBits (no paper totals: NaN)
 * Their fingerprints were computed another way, so a run that resumes recomputes them; tables read them as they are.
 */
export function fromStored(x: any, d: StoredDefaults = {}): CramRecord | undefined {
  if (!x || typeof x !== 'object' || !Number.isInteger(x.N) || !Number.isInteger(x.K)) return undefined;
  if (x.kind === 'cram') return x as CramRecord;
  if (x.kind === 'grid') {
    const { kind: _k, bestMem, ...m } = x;
    return {
      ...m,
      kind: 'cram',
      model: x.model ?? d.model ?? '',
      weights: x.weights ?? d.weights ?? '',
      set: x.set ?? d.set ?? '',
      maxSteps: x.maxSteps ?? NaN,
      patience: x.patience ?? NaN,
      warmStart: false,
      ...(bestMem ? { mem: encodeMem(Float32Array.from(bestMem)) } : {}),
    };
  }
  if (x.kind === undefined && typeof x.textId === 'string') {
    const n = x.N - 1;
    const without = crossEntropy(x.ceWithoutBits * Math.LN2, n);
    const withMem = crossEntropy(x.ceWithBits * Math.LN2, n);
    return {
      kind: 'cram',
      id: x.textId,
      model: x.model,
      weights: x.weights ?? d.weights ?? '',
      set: x.set,
      seed: x.seed ?? NaN,
      fingerprint: x.fingerprint ?? '',
      N: x.N,
      K: x.K,
      status: x.status,
      steps: x.steps,
      stepsToBest: x.stepsToBest,
      seconds: x.seconds,
      bestAccuracy: x.bestAccuracy,
      decoded: x.correct === n,
      correctWithMem: x.correct,
      correctWithoutMem: x.correctWithout,
      tokenGain: x.tokenGain,
      ceWithoutMem: without,
      ceWithMem: withMem,
      infoGainNats: without.totalNats - withMem.totalNats,
      infoGainBits: x.infoGainBits,
      compression: x.N / x.K,
      paperCeWithoutMemNats: NaN,
      paperCeWithMemNats: NaN,
      paperInfoGainNats: NaN,
      maxSteps: x.maxSteps,
      patience: x.patience,
      warmStart: Boolean(x.warmStart),
      text: x.text,
      mem: x.mem,
      curve: x.curve,
    };
  }
  return undefined;
}
