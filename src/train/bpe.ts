// A byte-level BPE tokenizer (GPT-2 style), trained from scratch on a corpus and written as an
// HF tokenizer.json that transformers.js (and HF tokenizers) load:
//   text → GPT-2 regex pieces → UTF-8 bytes → printable stand-in chars → BPE merges
// Every byte has a token, so any text round-trips exactly. Ids 0..2 are <unk>, <s>, </s> (Llama
// order); the post-processor prepends <s>, as the paper's texts start with BOS.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/write';

export const SPECIALS = ['<unk>', '<s>', '</s>'];
export const BOS_ID = 1;
export const EOS_ID = 2;

// The regex of the ByteLevel pre-tokenizer (use_regex: true): words keep their leading space.
const PIECES = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's byte → printable char table (bytes that are already printable map to themselves). */
export function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep.includes(b) ? b : 256 + extra++);
  return out;
}

/** Distinct pre-tokenized pieces of `texts` (as byte stand-in strings) with their counts. */
function pieceCounts(texts: string[]): Map<string, number> {
  const table = bytesToUnicode();
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(PIECES)) {
      const s = Array.from(Buffer.from(m[0], 'utf8'), (b) => table[b]).join('');
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
  }
  return counts;
}

export interface BpeResult {
  /** token string → id */
  vocab: Record<string, number>;
  /** "left right" in merge order (rank 0 first) */
  merges: string[];
}

/**
 * Learn vocabSize - 3 - 256 merges: repeatedly join the most frequent adjacent pair
 * (ties broken by the pair's string, so the result is deterministic).
 */
export function trainBpe(texts: string[], vocabSize: number): BpeResult {
  const base = SPECIALS.length + 256;
  if (!Number.isInteger(vocabSize) || vocabSize < base)
    throw new Error(`vocab size must be an integer ≥ ${base} (3 specials + 256 bytes), got ${vocabSize}`);
  const vocab: Record<string, number> = {};
  SPECIALS.forEach((s, i) => (vocab[s] = i));
  for (const ch of bytesToUnicode()) vocab[ch] = Object.keys(vocab).length;
  const words = [...pieceCounts(texts)].map(([w, n]) => ({ syms: Array.from(w), n }));
  const merges: string[] = [];
  while (Object.keys(vocab).length < vocabSize) {
    const pairs = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = syms[i] + ' ' + syms[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best = '';
    let bestN = 0;
    for (const [k, n] of pairs) if (n > bestN || (n === bestN && k < best)) [best, bestN] = [k, n];
    if (bestN < 2) break; // nothing left worth merging
    const [a, b] = best.split(' ');
    const joined = a + b;
    merges.push(best);
    vocab[joined] = Object.keys(vocab).length;
    for (const w of words) {
      const s = w.syms;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) s.splice(i, 2, joined);
    }
  }
  return { vocab, merges };
}

/** The tokenizer.json object (HF tokenizers format) for a trained BPE. */
export function tokenizerJson(bpe: BpeResult): Record<string, any> {
  const added = SPECIALS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const bos = SPECIALS[BOS_ID];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [BOS_ID], tokens: [bos] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: bpe.vocab,
      merges: bpe.merges,
    },
  };
}

export function tokenizerConfig(maxLength: number): Record<string, any> {
  const decoder: Record<string, any> = {};
  SPECIALS.forEach(
    (content, id) =>
      (decoder[id] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true }),
  );
  return {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: decoder,
    bos_token: SPECIALS[BOS_ID],
    eos_token: SPECIALS[EOS_ID],
    unk_token: SPECIALS[0],
    pad_token: null,
    clean_up_tokenization_spaces: false,
    model_max_length: maxLength,
    tokenizer_class: 'PreTrainedTokenizer',
  };
}

/** Write tokenizer.json and tokenizer_config.json into `dir`. */
export function writeTokenizer(dir: string, bpe: BpeResult, maxLength: number): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(bpe)));
  writeFileAtomic(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig(maxLength), null, 2) + '\n');
}
