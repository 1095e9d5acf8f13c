// The workbook's experiments, cached in run folders: cram texts at one (N, K); walk N upwards to
// find each text's capacity at K; Table-1 summaries. Every finished text is a line in a
// results.jsonl (records.ts), so re-running a notebook crams only what is missing.
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { cram, initialMem } from '../cram/cram';
import type { CramResult } from '../cram/cram';
import { fingerprint } from '../cram/sweep';
import { loadTexts, type Text } from '../datasets/index';
import { loadModel, type LoadedModel } from '../io/checkpoint';
import { scoreText, type TextScore } from '../score';
import type { Budget } from './budget';
import { modelPath, sharedModel } from './paths';
import { decodeMem, encodeMem, type CramRecord, type RecordFile } from './records';
import { mean } from '../math';
import { decodingCapacity, DECODED_THRESHOLD } from '../metrics/summary';

/** A loaded model plus the name the notebook gave it (what records and legends show). */
export interface WorkbookModel extends LoadedModel {
  name: string;
}

/** Load models by id or path ('models/cram-llama-d64', 'stories260K' = the shared one, Hub ids). */
export async function openModels(ids: string[]): Promise<WorkbookModel[]> {
  const out: WorkbookModel[] = [];
  for (const id of ids) {
    const where = id === 'stories260K' ? sharedModel('stories260K') : modelPath(id);
    if (!where) throw new Error(`model '${id}' not found (stories260K is read from CRAMLAB_MODELS or ../shared/models)`);
    out.push({ ...(await loadModel(where)), name: id });
  }
  return out;
}

/**
 * Texts of a kind for a model. 'natural' is Moby-Dick's train chapters ('books') for cramlab's own
 * models, and the model's own sample stories for stories260K (Moby-Dick is far outside what it knows);
 * 'unseen' the held-out chapters; 'random' random dictionary words. Anything else goes to loadTexts.
 */
export async function textsFor(m: WorkbookModel, kind: string, count: number, maxTokens: number): Promise<Text[]> {
  let source = kind === 'natural' ? 'books' : kind;
  if (kind === 'natural' && /stories260K/i.test(m.name)) {
    source = path.join(path.dirname(sharedModel('stories260K')!), '..', 'datasets', 'stories260k-samples.json');
  }
  return loadTexts(source, { tokenizer: m.tokenizer, count, maxTokens, seed: 0 });
}

/** A stable seed per text, so a record does not depend on which texts shared its batch. */
export function seedOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export interface CramAtOptions {
  N: number;
  K: number;
  /** Name of the text set, stored in the records. */
  set: string;
  budget: Budget;
  file: RecordFile;
  /** Start these texts (by id) from the given mem instead of the authors' random init. */
  init?: Map<string, Float32Array>;
  /** Keep the loss/accuracy curve in the record (every `curveEvery` steps). */
  curveEvery?: number;
  quiet?: boolean;
}

const withoutCache = new Map<string, TextScore>();

async function scoreWithout(m: WorkbookModel, key: string, ids: number[]): Promise<TextScore> {
  const k = `${m.name}|${key}|${ids.length}`;
  if (!withoutCache.has(k)) withoutCache.set(k, await scoreText(m.model, ids));
  return withoutCache.get(k)!;
}

async function toRecord(m: WorkbookModel, t: Text, r: CramResult, o: CramAtOptions): Promise<CramRecord> {
  const ids = t.ids.slice(0, o.N);
  const prefix = tf.tensor2d(r.bestMem, [o.K, m.model.info.memDim]);
  const withMem = await scoreText(m.model, ids, prefix);
  prefix.dispose();
  const without = await scoreWithout(m, t.id, ids);
  return {
    model: m.name,
    weights: m.weightsHash.slice(0, 16),
    set: o.set,
    textId: t.id,
    N: o.N,
    K: o.K,
    text: m.tokenizer.decode(ids),
    bestAccuracy: r.bestAccuracy,
    correct: withMem.correct,
    correctWithout: without.correct,
    tokenGain: withMem.correct - without.correct,
    ceWithoutBits: without.totalBits,
    ceWithBits: withMem.totalBits,
    infoGainBits: without.totalBits - withMem.totalBits,
    steps: r.steps,
    stepsToBest: r.stepsToBest,
    status: r.status,
    seconds: r.seconds,
    maxSteps: o.budget.maxSteps,
    patience: o.budget.patience,
    warmStart: Boolean(o.init?.has(t.id)),
    fingerprint: recordPrint(m, t, o),
    mem: encodeMem(r.bestMem),
    ...(o.curveEvery ? { curve: { step: r.curve.step, loss: r.curve.loss, accuracy: r.curve.correct.map((c) => c / r.predicted) } } : {}),
  };
}

function recordPrint(m: WorkbookModel, t: Text, o: CramAtOptions): string {
  const init = o.init?.get(t.id);
  return fingerprint({
    ids: t.ids.slice(0, o.N), K: o.K, seed: seedOf(t.id), maxSteps: o.budget.maxSteps, patience: o.budget.patience,
    init: init ? encodeMem(init) : 'authors', weights: m.weightsHash,
  });
}

/**
 * Cram the first N tokens of each text (texts shorter than N are left out) into K vectors, one batch,
 * reading finished texts from the run file. Returns the records in text order.
 */
export async function cramAt(m: WorkbookModel, texts: Text[], o: CramAtOptions): Promise<CramRecord[]> {
  if (o.N + o.K > m.model.info.maxPositions) return [];
  const eligible = texts.filter((t) => t.ids.length >= o.N);
  const key = (t: Text) => ({ model: m.name, set: o.set, textId: t.id, N: o.N, K: o.K });
  const weights = m.weightsHash.slice(0, 16);
  // Everything that decides a record's result; a stored record with another (or no) fingerprint is redone.
  const prints = new Map(eligible.map((t) => [t.id, recordPrint(m, t, o)]));
  const todo = eligible.filter((t) => !o.file.get(key(t), weights, prints.get(t.id)));
  if (todo.length) {
    if (!o.quiet) console.log(`${m.name} · ${o.set} · N=${o.N} K=${o.K}: cramming ${todo.length} text(s)${eligible.length > todo.length ? `, ${eligible.length - todo.length} from the run folder` : ''}`);
    const seeds = todo.map((t) => seedOf(t.id));
    const initMem = o.init ? todo.map((t, i) => o.init!.get(t.id) ?? initialMem(m.model, o.K, seeds[i])) : undefined;
    let writing: Promise<void> = Promise.resolve();
    await cram(
      m.model,
      todo.map((t) => t.ids.slice(0, o.N)),
      {
        K: o.K,
        maxSteps: o.budget.maxSteps,
        patience: o.budget.patience,
        seed: seeds,
        initMem,
        curveEvery: o.curveEvery,
        quiet: o.quiet,
        // Score and write each text as soon as it finishes: an interrupt loses no finished text.
        onText: (r) => {
          writing = writing.then(async () => o.file.append(await toRecord(m, todo[r.index], r, o)));
        },
      },
    );
    await writing;
  }
  return eligible.map((t) => o.file.get(key(t), weights, prints.get(t.id))!).filter(Boolean);
}

/**
 * cramAt for every N of a length grid. One cram call per N, not one for the whole grid: padding
 * every text to the longest costs more than the bigger batch saves (measured on the wasm backend:
 * 4 lengths × 4 texts took 232 s in one call, 80 s in four).
 */
export async function cramGrid(m: WorkbookModel, texts: Text[], o: Omit<CramAtOptions, 'N'> & { lengths: number[] }): Promise<CramRecord[]> {
  const out: CramRecord[] = [];
  for (const N of o.lengths) {
    const recs = await cramAt(m, texts, { ...o, N });
    out.push(...recs);
    const meanAcc = mean(recs.map((r) => r.bestAccuracy));
    if (recs.length && meanAcc < o.budget.stopBelow) {
      if (!o.quiet) console.log(`${m.name} · ${o.set}: mean accuracy ${meanAcc.toFixed(2)} < ${o.budget.stopBelow} at N=${N}; longer lengths skipped (budget.stopBelow)`);
      break;
    }
  }
  return out;
}

export interface CapacityRowOut {
  model: string;
  set: string;
  K: number;
  textId: string;
  text: string;
  /** Longest N of the grid decoded exactly (0: not even the shortest). */
  capacity: number;
  /** True when the text ran out (or the context did) before the vectors did: a lower bound. */
  censored: boolean;
}

/**
 * Each text's capacity at K: cram growing prefixes (the grid `lengths`) until the mem stops decoding
 * them exactly; each length starts from the mem of the previous one (a warm start: the paper starts
 * every length from scratch, which finds the same capacity more slowly).
 */
export async function capacityWalk(m: WorkbookModel, texts: Text[], o: Omit<CramAtOptions, 'N' | 'init'> & { lengths: number[] }): Promise<CapacityRowOut[]> {
  const capacity = new Map<string, number>(texts.map((t) => [t.id, 0]));
  const warm = new Map<string, Float32Array>();
  let alive = texts;
  let lastN = 0;
  for (const N of o.lengths) {
    const candidates = alive.filter((t) => t.ids.length >= N);
    if (!candidates.length || N + o.K > m.model.info.maxPositions) break;
    const recs = await cramAt(m, candidates, { ...o, N, init: warm });
    const decoded = new Set<string>();
    for (const r of recs) {
      if (r.bestAccuracy >= 1) {
        decoded.add(r.textId);
        capacity.set(r.textId, N);
        warm.set(r.textId, decodeMem(r.mem));
      }
    }
    alive = candidates.filter((t) => decoded.has(t.id));
    lastN = N;
    if (!alive.length) break;
  }
  const stillAlive = new Set(alive.map((t) => t.id));
  return texts.map((t) => ({
    model: m.name,
    set: o.set,
    K: o.K,
    textId: t.id,
    text: t.text.slice(0, 200),
    capacity: capacity.get(t.id)!,
    censored: stillAlive.has(t.id) && capacity.get(t.id) === lastN,
  }));
}


/** Mean best accuracy per (model, set, K, N). */
export function accuracyTable(records: CramRecord[]): { model: string; set: string; K: number; N: number; texts: number; meanAccuracy: number; decoded: number }[] {
  const groups = new Map<string, CramRecord[]>();
  for (const r of records) {
    const k = `${r.model}|${r.set}|${r.K}|${r.N}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  return [...groups.values()]
    .map((g) => ({ model: g[0].model, set: g[0].set, K: g[0].K, N: g[0].N, texts: g.length, meanAccuracy: mean(g.map((r) => r.bestAccuracy)), decoded: g.filter((r) => r.bestAccuracy >= 1).length }))
    .sort((a, b) => a.model.localeCompare(b.model) || a.set.localeCompare(b.set) || a.K - b.K || a.N - b.N);
}

export interface Table1Row {
  model: string;
  set: string;
  K: number;
  /** Largest N of the grid whose mean best accuracy is ≥ DECODED_THRESHOLD (0.99; 0: none). */
  decodingCapacity: number;
  /** Means over the texts whose best accuracy is ≤ 0.99 (full vectors); NaN when every text decoded. */
  tokenGain: number;
  infoGainBits: number;
  fullTexts: number;
}

/** The paper's Table 1 conventions, per (model, set, K). */
export function table1(records: CramRecord[]): Table1Row[] {
  const groups = new Map<string, CramRecord[]>();
  for (const r of records) {
    const k = `${r.model}|${r.set}|${r.K}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  return [...groups.values()].map((g) => {
    const ok = g.filter((r) => Number.isFinite(r.bestAccuracy)); // NaN runs: never averaged in
    const acc = accuracyTable(ok).map((a) => ({ N: a.N, meanBestAccuracy: a.meanAccuracy }));
    const full = ok.filter((r) => r.bestAccuracy <= DECODED_THRESHOLD);
    return {
      model: g[0].model,
      set: g[0].set,
      K: g[0].K,
      decodingCapacity: decodingCapacity(acc), // the one home of the paper's rule (metrics/summary.ts)
      tokenGain: mean(full.map((r) => r.tokenGain)),
      infoGainBits: mean(full.map((r) => r.infoGainBits)),
      fullTexts: full.length,
    };
  });
}

/**
 * Per text: the longest grid length it decoded exactly (0: none). A per-text view of capacity that a
 * single hard text cannot pull to 0, unlike the Table-1 rule on the mean.
 */
export function textCapacities(records: CramRecord[]): { model: string; set: string; K: number; textId: string; capacity: number }[] {
  const by = new Map<string, { model: string; set: string; K: number; textId: string; capacity: number }>();
  for (const r of records) {
    const k = `${r.model}|${r.set}|${r.K}|${r.textId}`;
    const cur = by.get(k) ?? { model: r.model, set: r.set, K: r.K, textId: r.textId, capacity: 0 };
    if (r.bestAccuracy >= 1) cur.capacity = Math.max(cur.capacity, r.N);
    by.set(k, cur);
  }
  return [...by.values()];
}

/** Rows for the natural-vs-random figure: mean per-text decoded length and mean information gain, per (model, set). */
export function setComparison(records: CramRecord[]): { model: string; set: string; tokens: number; infoGainBits: number }[] {
  const caps = textCapacities(records);
  const keys = [...new Set(records.map((r) => `${r.model}|${r.set}`))];
  return keys.map((k) => {
    const [model, set] = k.split('|');
    const rs = records.filter((r) => r.model === model && r.set === set);
    // Information gain of full vectors (accuracy ≤ 0.99) where there are any, else at the longest length.
    const full = rs.filter((r) => r.bestAccuracy <= 0.99);
    const longest = Math.max(...rs.map((r) => r.N));
    const gainRows = full.length ? full : rs.filter((r) => r.N === longest);
    return {
      model,
      set,
      tokens: mean(caps.filter((c) => c.model === model && c.set === set).map((c) => c.capacity)),
      infoGainBits: mean(gainRows.map((r) => r.infoGainBits)),
    };
  });
}

/** Records as plot rows (charts.ts PointRow). */
export function pointRows(records: CramRecord[]) {
  return records.map((r) => ({
    model: r.model,
    N: r.N,
    K: r.K,
    accuracy: r.bestAccuracy,
    textId: r.textId,
    text: r.text,
    ceWithoutBits: r.ceWithoutBits,
    ceWithBits: r.ceWithBits,
    infoGainBits: r.infoGainBits,
  }));
}
