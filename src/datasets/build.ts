// The offline text sets in datasets/, built deterministically from npm packages (no randomness
// except a fixed-seed shuffle for the word-list top-up). scripts/build-datasets.ts writes them;
// a test rebuilds them and compares byte for byte.
import { mobyDickChapters, HELD_OUT, sotuPre1919, type Chapter } from './corpus';
import { chunkRanges, normalizeWhitespace, splitSentences } from './preprocess';
import { mulberry32 } from '../random';

/** books: 56 chunks of whole sentences, >= 14,000 characters each, so the second half holds ~1568 tokens of a Llama-3-size tokenizer. */
export const BOOKS = { chunks: 56, minChars: 14000 };
/** unseen: the 13 held-out chapters (90,588 characters) in passages of >= 1,500 characters, one chunk per passage. */
export const UNSEEN = { minChars: 1500 };
export const WORDS = { size: 100000, seed: 1568 };

export interface Chunk {
  id: string;
  source: string;
  text: string;
}

function chapterSentences(c: Chapter): string[] {
  // As the authors did for PG-19: whitespace-normalise the text, then split into sentences.
  return splitSentences(normalizeWhitespace(c.text));
}

/** books: the train chapters read as one stream, chunked, then BOOKS.chunks chunks taken at even strides. */
export function buildBooks(): Chunk[] {
  // Entry 0 is the table of contents (a list of headings, not prose): left out.
  const train = mobyDickChapters().filter((c) => !HELD_OUT(c.index) && c.title !== 'Contents');
  // Chunks may run across chapter boundaries (as PG-19 chunks do); remember where each starts.
  const sentences = train.flatMap((c) => chapterSentences(c).map((s) => ({ s, ch: c.index })));
  const ranges = chunkRanges(
    sentences.map((x) => x.s),
    BOOKS.minChars,
  );
  const picked: Chunk[] = [];
  for (let k = 0; k < BOOKS.chunks; k++) {
    const j = Math.floor((k * ranges.length) / BOOKS.chunks);
    const [start, end] = ranges[j];
    picked.push({
      id: `moby-dick-${String(j).padStart(3, '0')}`,
      source: `Moby-Dick, train chapters, from chapter index ${sentences[start].ch}`,
      text: sentences
        .slice(start, end)
        .map((x) => x.s)
        .join(' '),
    });
  }
  return picked;
}

/**
 * unseen: the held-out chapters cut into passages of >= UNSEEN.minChars; chunk k is passage k
 * preceded by as many sentences as it has (its chapter permitting), so the authors' preprocessing
 * (keep sentences[floor(n/2):]) crams exactly passage k. The 90,588 held-out characters would give
 * only half as much crammable text as disjoint chunks. Chunks stay inside a chapter: held-out chapters are not contiguous.
 */
export function buildUnseen(): Chunk[] {
  const held = mobyDickChapters().filter((c) => HELD_OUT(c.index));
  return held.flatMap((c) => {
    const sentences = chapterSentences(c);
    return chunkRanges(sentences, UNSEEN.minChars).map(([start, end], k) => ({
      id: `moby-dick-ch${String(c.index).padStart(3, '0')}-${k}`,
      source: `Moby-Dick, held-out chapter index ${c.index} (${c.title})`,
      text: sentences.slice(Math.max(0, start - (end - start)), end).join(' '),
    }));
  });
}

/** Lowercase alphabetic words of `text` (hyphens and apostrophes split words). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z]+/g) ?? [];
}

/**
 * The 100k-word vocabulary for random text (the authors used GloVe's 100k most frequent words).
 * First every word of the books corpus (all of Moby-Dick and the pre-1919 State of the Union
 * addresses), most frequent first; then words of an-array-of-english-words, shortest first
 * (frequent words are short), ties in a fixed-seed random order, until 100k.
 */
export function buildWordList(): string[] {
  const counts = new Map<string, number>();
  const texts = [...mobyDickChapters().map((c) => c.text), ...sotuPre1919().map((s) => s.text)];
  for (const t of texts) for (const w of words(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([w]) => w);
  const have = new Set(ranked);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const english: string[] = require('an-array-of-english-words');
  const rng = mulberry32(WORDS.seed);
  const extra = english
    .filter((w) => /^[a-z]+$/.test(w) && !have.has(w))
    .map((w) => ({ w, key: rng() }))
    .sort((a, b) => a.w.length - b.w.length || a.key - b.key)
    .map((x) => x.w);
  return [...ranked, ...extra].slice(0, WORDS.size);
}

export function toJsonl(chunks: Chunk[]): string {
  return chunks.map((c) => JSON.stringify(c)).join('\n') + '\n';
}

/** File name → exact contents of every built file. */
export function buildAll(): Map<string, string> {
  return new Map([
    ['books.jsonl', toJsonl(buildBooks())],
    ['unseen.jsonl', toJsonl(buildUnseen())],
    ['random-words.txt', buildWordList().join('\n') + '\n'],
  ]);
}
