// The workbook's experiments, cached in run folders (runs/folder.ts): cram texts at one (N, K); walk
// N upwards to find each text's capacity at K. Every finished text is a CramRecord line in the
// folder's results.jsonl, so re-running a notebook crams only what is missing.
import * as path from 'node:path';
import { initialMem } from '../cram/cram';
import { loadTexts, type Text } from '../datasets/index';
import { loadModel, type LoadedModel } from '../io/checkpoint';
import { groupBy, mean } from '../math';
import { DECODED_THRESHOLD, groupByLength, type ModelShape } from '../metrics/summary';
import type { RecordFile } from '../runs/folder';
import { localExecutor, type Sink } from '../runs/executor';
import { checkTextIds } from '../runs/plan';
import { decodeMem, encodeMem, recordPrint, seedOf, type CramRecord } from '../runs/record';
import type { CramUnit } from '../runs/unit';
import { cramRecord } from '../runs/writer';
import type { Budget } from './budget';
import { gridEstimate, roughly, seconds, stepCost } from './estimate';
import { modelPath, sharedModel } from './paths';

/** A loaded model plus the name the notebook gave it (what records and legends show). */
export interface WorkbookModel extends LoadedModel {
  name: string;
}

/** Load models by id or path ('models/cram-llama-d64', 'stories260K' = the shared one, Hub ids). */
export async function openModels(ids: string[]): Promise<WorkbookModel[]> {
  const out: WorkbookModel[] = [];
  for (const id of ids) {
    const where = id === 'stories260K' ? sharedModel('stories260K') : modelPath(id);
    if (!where)
      throw new Error(`model '${id}' not found (stories260K is read from CRAMLAB_MODELS or ../shared/models)`);
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

const printOf = (m: WorkbookModel, t: Text, o: CramAtOptions): string =>
  recordPrint({
    ids: t.ids.slice(0, o.N),
    K: o.K,
    seed: seedOf(t.id),
    init: o.init?.get(t.id),
    weightsHash: m.weightsHash,
    options: { maxSteps: o.budget.maxSteps, patience: o.budget.patience },
  });

/** Which texts the run file already holds at (N, K), by the fingerprint of everything that decides a result. */
function storedAt(m: WorkbookModel, texts: Text[], o: CramAtOptions) {
  const key = (t: Text) => ({ model: m.name, set: o.set, id: t.id, N: o.N, K: o.K });
  // A stored record with another (or no) fingerprint is redone.
  const prints = new Map(texts.map((t) => [t.id, printOf(m, t, o)]));
  return { prints, stored: (t: Text) => o.file.get(key(t), prints.get(t.id)!) };
}

/**
 * Cram the first N tokens of each text (texts shorter than N are left out) into K vectors, one batch,
 * reading finished texts from the run file. Returns the records in text order. With CRAMLAB_QUEUE
 * set (redis://…), the batch is one job for `cramlab worker`s (runs/queue.ts) instead of this kernel.
 */
export async function cramAt(m: WorkbookModel, texts: Text[], o: CramAtOptions): Promise<CramRecord[]> {
  if (o.N + o.K > m.model.info.maxPositions) return [];
  const eligible = texts.filter((t) => t.ids.length >= o.N);
  checkTextIds(eligible);
  const { prints, stored } = storedAt(m, eligible, o);
  const todo = eligible.filter((t) => !stored(t));
  if (todo.length) {
    const queue = process.env.CRAMLAB_QUEUE;
    if (!o.quiet) {
      const cost = queue ? undefined : await stepCost(m, todo.length, o.K, o.N);
      const most = cost ? seconds(m, cost, todo.length, o.N, o.K, o.budget.maxSteps) : 0;
      console.log(
        `${m.name} · ${o.set} · N=${o.N} K=${o.K}: cramming ${todo.length} text(s)${eligible.length > todo.length ? `, ${eligible.length - todo.length} from the run folder` : ''}${queue ? ' on the queue' : most >= 5 ? `, at most about ${roughly(most)}` : ''}`,
      );
    }
    const seeds = todo.map((t) => seedOf(t.id));
    const unit: CramUnit = {
      kind: 'cram',
      model: { id: m.id, weightsHash: m.weightsHash },
      N: o.N,
      K: o.K,
      texts: todo.map((t, i) => ({
        id: t.id,
        ids: t.ids.slice(0, o.N),
        text: m.tokenizer.decode(t.ids.slice(0, o.N)), // the record's bits
        seed: seeds[i],
        ...(o.init ? { init: encodeMem(o.init.get(t.id) ?? initialMem(m.model, o.K, seeds[i])) } : {}),
      })),
      prints: todo.map((t) => prints.get(t.id)!),
      options: { maxSteps: o.budget.maxSteps, patience: o.budget.patience, curveEvery: o.curveEvery },
      curve: Boolean(o.curveEvery),
    };
    const ctx = {
      model: m.name,
      weightsHash: m.weightsHash,
      set: o.set,
      options: unit.options,
      decode: (ids: number[]) => m.tokenizer.decode(ids),
      saveMem: true,
    };
    // Write each text as soon as it is known: an interrupt loses no finished text.
    const sink: Sink = (print, out) => {
      const i = unit.prints.indexOf(print);
      if (i < 0 || out.kind !== 'cram') return;
      const t = todo[i];
      const warmStart = Boolean(o.init?.has(t.id));
      o.file.add(cramRecord(out, { ...unit.texts[i], fingerprint: print, warmStart }, ctx));
    };
    const exec = queue
      ? (require('../runs/queue') as typeof import('../runs/queue')).queueExecutor(queue, {
          runDir: path.dirname(o.file.file),
          log: o.quiet ? () => {} : console.log,
        })
      : localExecutor(m.model, { quiet: o.quiet, log: () => {} });
    try {
      const failed = await exec.run([unit], sink);
      for (const f of failed) console.log(`${m.name} · ${o.set} · N=${o.N} K=${o.K}: failed on the queue: ${f.reason}`);
    } finally {
      await exec.close?.();
    }
  }
  return eligible.map(stored).filter((r): r is CramRecord => r !== undefined);
}

/**
 * cramAt for every N of a length grid. One cram call per N, not one for the whole grid: padding
 * every text to the longest costs more than the bigger batch saves (measured on the wasm backend:
 * 4 lengths × 4 texts took 232 s in one call, 80 s in four).
 */
export async function cramGrid(
  m: WorkbookModel,
  texts: Text[],
  o: Omit<CramAtOptions, 'N'> & { lengths: number[] },
): Promise<CramRecord[]> {
  const out: CramRecord[] = [];
  await sayEstimate(m, texts, o, 'texts stop early once decoded');
  for (const N of o.lengths) {
    const recs = await cramAt(m, texts, { ...o, N });
    out.push(...recs);
    const meanAcc = mean(recs.map((r) => r.bestAccuracy));
    if (recs.length && meanAcc < o.budget.stopBelow) {
      if (!o.quiet)
        console.log(
          `${m.name} · ${o.set}: mean accuracy ${meanAcc.toFixed(2)} < ${o.budget.stopBelow} at N=${N}; longer lengths skipped (budget.stopBelow)`,
        );
      break;
    }
  }
  return out;
}

/**
 * Said before a long cell's work, quiet or not: the most these lengths can take here (the per-N lines
 * follow as it goes). Nothing when it is a few seconds or runs on a queue.
 */
async function sayEstimate(
  m: WorkbookModel,
  texts: Text[],
  o: Omit<CramAtOptions, 'N'> & { lengths: number[] },
  note: string,
): Promise<void> {
  if (process.env.CRAMLAB_QUEUE) return;
  const jobs = o.lengths.map((N) => {
    const { stored } = storedAt(m, texts, { ...o, N });
    return { N, B: texts.filter((t) => t.ids.length >= N && !stored(t)).length };
  });
  const est = await gridEstimate(m, jobs, o.K, o.budget, note);
  if (est.seconds >= 5) console.log(`${m.name} · ${o.set} · K=${o.K}: ${est.line}`);
}

/**
 * A walk's bound over all lengths is far above what it takes (it stops at the first length no text
 * decodes, and warm starts decode sooner), so it says what one length can cost, the longest one.
 * Nothing when the first length is already in the run folder (a re-run reads it all back).
 */
async function sayWalkEstimate(
  m: WorkbookModel,
  texts: Text[],
  o: Omit<CramAtOptions, 'N' | 'init'> & { lengths: number[] },
): Promise<void> {
  const fit = o.lengths.filter((N) => N + o.K <= m.model.info.maxPositions);
  if (process.env.CRAMLAB_QUEUE || !fit.length) return;
  const { stored } = storedAt(m, texts, { ...o, N: fit[0] });
  const B = texts.filter((t) => t.ids.length >= fit[0] && !stored(t)).length;
  if (!B) return;
  const top = fit[fit.length - 1];
  const cost = await stepCost(m, B, o.K, top);
  const most = seconds(m, cost, B, top, o.K, o.budget.maxSteps);
  if (most < 5) return;
  console.log(
    `${m.name} · ${o.set} · K=${o.K}: up to ${fit.length} lengths (N = ${fit[0]}…${top}), each at most about ${roughly(most)} on this machine at the ${o.budget.name} budget (${B} text(s) × ≤ ${o.budget.maxSteps} steps); the walk stops at the first length no text decodes`,
  );
}

export interface CapacityRowOut {
  model: string;
  set: string;
  K: number;
  id: string;
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
export async function capacityWalk(
  m: WorkbookModel,
  texts: Text[],
  o: Omit<CramAtOptions, 'N' | 'init'> & { lengths: number[] },
): Promise<CapacityRowOut[]> {
  const capacity = new Map<string, number>(texts.map((t) => [t.id, 0]));
  const warm = new Map<string, Float32Array>();
  await sayWalkEstimate(m, texts, o);
  let alive = texts;
  let lastN = 0;
  for (const N of o.lengths) {
    const candidates = alive.filter((t) => t.ids.length >= N);
    if (!candidates.length || N + o.K > m.model.info.maxPositions) break;
    const recs = await cramAt(m, candidates, { ...o, N, init: warm });
    const decoded = new Set<string>();
    for (const r of recs) {
      if (r.bestAccuracy >= 1) {
        decoded.add(r.id);
        capacity.set(r.id, N);
        warm.set(r.id, decodeMem(r.mem!));
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
    id: t.id,
    text: t.text.slice(0, 200),
    capacity: capacity.get(t.id)!,
    censored: stillAlive.has(t.id) && capacity.get(t.id) === lastN,
  }));
}

/** Mean best accuracy per (model, set, K, N): metrics/summary groupByLength for each (model, set). */
export function accuracyTable(
  records: CramRecord[],
): { model: string; set: string; K: number; N: number; texts: number; meanAccuracy: number; decoded: number }[] {
  const groups = groupBy(records, (r) => `${r.model}|${r.set}`);
  return [...groups.values()]
    .flatMap((g) =>
      groupByLength(g).map((l) => ({
        model: g[0].model,
        set: g[0].set,
        K: l.K,
        N: l.N,
        texts: l.texts,
        meanAccuracy: l.meanBestAccuracy,
        decoded: Math.round(l.fractionDecoded * l.texts),
      })),
    )
    .sort((a, b) => a.model.localeCompare(b.model) || a.set.localeCompare(b.set) || a.K - b.K || a.N - b.N);
}

/** What table1 needs of each notebook model (d and V for the theoretical capacity). */
export function shapes(models: WorkbookModel[]): (name: string) => ModelShape | undefined {
  return (name) => models.find((m) => m.name === name)?.model.info;
}

/**
 * Per text: the longest grid length it decoded exactly (0: none), and that prefix's text. A per-text
 * view of capacity that a single hard text cannot pull to 0, unlike the Table-1 rule on the mean.
 */
export function textCapacities(
  records: CramRecord[],
): { model: string; set: string; K: number; id: string; text: string; capacity: number }[] {
  const by = new Map<string, { model: string; set: string; K: number; id: string; text: string; capacity: number }>();
  for (const r of records) {
    const k = `${r.model}|${r.set}|${r.K}|${r.id}`;
    const cur = by.get(k) ?? { model: r.model, set: r.set, K: r.K, id: r.id, text: r.text ?? '', capacity: 0 };
    if (r.bestAccuracy >= 1 && r.N > cur.capacity) Object.assign(cur, { capacity: r.N, text: r.text ?? '' });
    by.set(k, cur);
  }
  return [...by.values()];
}

/** Rows for the natural-vs-random figure: mean per-text decoded length and mean information gain, per (model, set). */
export function setComparison(
  records: CramRecord[],
): { model: string; set: string; tokens: number; infoGainBits: number }[] {
  const caps = textCapacities(records);
  const keys = [...new Set(records.map((r) => `${r.model}|${r.set}`))];
  return keys.map((k) => {
    const [model, set] = k.split('|');
    const rs = records.filter((r) => r.model === model && r.set === set);
    // Information gain of full vectors (accuracy ≤ 0.99) where there are any, else at the longest length.
    const full = rs.filter((r) => r.bestAccuracy <= DECODED_THRESHOLD);
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
    id: r.id,
    text: r.text,
    ceWithoutBits: r.ceWithoutMem.totalBits,
    ceWithBits: r.ceWithMem.totalBits,
    infoGainBits: r.infoGainBits,
  }));
}
