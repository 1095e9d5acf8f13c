// loadTexts: every text set cramlab compresses, as token ids ready for cramming.
//   'books' | 'unseen'       built-in chunks (datasets/*.jsonl), the authors' preprocessing
//   'pg19' | 'fanfics'       the authors' Hub sets, the authors' preprocessing
//   'random'                 random dictionary words (datasets/random-words.txt)
//   .csv/.parquet/.jsonl     your chunks in the authors' format (a `text` column), the authors' preprocessing
//   .txt                     one text, used as it is (no sentence dropping)
//   .json                    {samples: [{id, ids, text}]}: the ids as given (e.g. shared/datasets/stories260k-samples.json)
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Tokenizer } from '../io/tokenizer';
import { readUtf8 } from '../io/files';
import { DatasetError, HUB_SETS, loadHubChunks, readTextColumn } from './hub';
import { encodeTruncated, secondHalf } from './preprocess';
import { randomWordText, textRng } from './random';

export { DatasetError } from './hub';

export interface Text {
  id: string;
  /** The decoded `ids` (what gets crammed), special tokens left out. */
  text: string;
  ids: number[];
}

export interface LoadTextsOptions {
  tokenizer: Tokenizer;
  /** Truncate to this many tokens, BOS included (the authors' max_length). Required for 'random'. */
  maxTokens?: number;
  /** The first `count` texts (natural sets keep file order, as the authors' df['text'][:num_samples]); default: all, 50 for 'random', 'pg19', 'fanfics'. */
  count?: number;
  /** Random text only: text i is drawn from a stream seeded by (seed, i). Default 0. */
  seed?: number;
  /** Random text only: draw each text's length uniformly from [2, maxTokens], as the authors' random-text runs do. */
  randomLength?: boolean;
}

export const DATASETS_DIR = path.join(__dirname, '..', '..', 'datasets');
export const BUILT_IN = ['books', 'unseen', 'random', ...Object.keys(HUB_SETS)];

function checkOptions(source: string, o: LoadTextsOptions): void {
  if (!o || !o.tokenizer || typeof o.tokenizer.encode !== 'function')
    throw new DatasetError(`loadTexts('${source}'): opts.tokenizer is required`);
  for (const k of ['maxTokens', 'count'] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1))
      throw new DatasetError(`loadTexts('${source}'): ${k} must be a positive integer, got ${v}`);
  }
  if (o.seed !== undefined && !Number.isInteger(o.seed))
    throw new DatasetError(`loadTexts('${source}'): seed must be an integer, got ${o.seed}`);
}

function fromChunks(chunks: { id: string; text: string }[], o: LoadTextsOptions): Text[] {
  return chunks.slice(0, o.count ?? chunks.length).map((c) => {
    const ids = encodeTruncated(o.tokenizer, secondHalf(c.text), o.maxTokens);
    return { id: c.id, text: o.tokenizer.decode(ids), ids };
  });
}

function readJsonl(file: string): { id: string; text: string }[] {
  return readUtf8(file, (m) => new DatasetError(m))
    .split('\n')
    .map((l, i) => ({ l, i }))
    .filter(({ l }) => l.trim())
    .map(({ l, i }) => {
      try {
        return JSON.parse(l);
      } catch (e) {
        throw new DatasetError(`${file}: line ${i + 1} is not JSON (${(e as Error).message})`);
      }
    });
}

function fromSamplesJson(file: string, o: LoadTextsOptions): Text[] {
  let json: any;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DatasetError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(json?.samples))
    throw new DatasetError(`${file}: expected {"samples": [{"id", "ids", "text"}, ...]}`);
  const seen = new Map<string, number>();
  return json.samples.slice(0, o.count ?? json.samples.length).map((s: any, i: number) => {
    if (
      !Array.isArray(s.ids) ||
      !s.ids.every((x: unknown) => Number.isInteger(x) && (x as number) >= 0 && (x as number) < o.tokenizer.vocabSize)
    ) {
      throw new DatasetError(
        `${file}: sample ${i} has no 'ids' list of token ids below the tokenizer's vocabulary size ${o.tokenizer.vocabSize}`,
      );
    }
    const ids: number[] = o.maxTokens === undefined ? s.ids : s.ids.slice(0, o.maxTokens);
    // Records are filed by id: a number is spelled out, no id is the sample's index, anything else is refused.
    if (s.id !== undefined && typeof s.id !== 'string' && !Number.isFinite(s.id))
      throw new DatasetError(`${file}: sample ${i} has id ${JSON.stringify(s.id)}; ids must be strings or numbers`);
    const id = String(s.id ?? i);
    if (seen.has(id))
      throw new DatasetError(
        `${file}: id '${id}' appears twice (samples ${seen.get(id)} and ${i}); ids must be unique`,
      );
    seen.set(id, i);
    return { id, text: o.tokenizer.decode(ids), ids };
  });
}

function randomTexts(o: LoadTextsOptions): Text[] {
  if (o.maxTokens === undefined)
    throw new DatasetError("loadTexts('random'): maxTokens is required (the length of each random text)");
  const file = path.join(DATASETS_DIR, 'random-words.txt');
  const words = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const seed = o.seed ?? 0;
  return Array.from({ length: o.count ?? 50 }, (_, i) => {
    const r = randomWordText(words, o.tokenizer, o.maxTokens as number, textRng(seed, i), o.randomLength);
    return { id: `random-s${seed}-${i}`, text: o.tokenizer.decode(r.ids), ids: r.ids };
  });
}

export async function loadTexts(source: string, opts: LoadTextsOptions): Promise<Text[]> {
  checkOptions(source, opts);
  if (source === 'books' || source === 'unseen')
    return fromChunks(readJsonl(path.join(DATASETS_DIR, `${source}.jsonl`)), opts);
  if (source === 'random') return randomTexts(opts);
  if (source in HUB_SETS) {
    const chunks = await loadHubChunks(source);
    // 1000 chunks of 12k-25k words each: default to the authors' 50 samples.
    return fromChunks(
      chunks.map((text, i) => ({ id: `${source}-${i}`, text })),
      { ...opts, count: opts.count ?? 50 },
    );
  }
  const ext = path.extname(source).toLowerCase();
  if (!fs.existsSync(source)) {
    throw new DatasetError(
      `unknown text set '${source}': use one of ${BUILT_IN.join(', ')} or a path to a .txt, .jsonl, .csv, .parquet or .json file`,
    );
  }
  if (ext === '.json') return fromSamplesJson(source, opts);
  if (ext === '.txt') {
    const text = readUtf8(source, (m) => new DatasetError(m));
    if (!text.trim()) throw new DatasetError(`${source} is empty: nothing to cram`);
    const ids = encodeTruncated(opts.tokenizer, text, opts.maxTokens);
    return [{ id: path.basename(source, ext), text: opts.tokenizer.decode(ids), ids }];
  }
  const base = path.basename(source, ext);
  const chunks = await readTextColumn(source);
  return fromChunks(
    chunks.map((text, i) => ({ id: `${base}-${i}`, text })),
    opts,
  );
}
