// The authors' preprocessing of a natural-text chunk (hidden_capacity/train.py):
//   sentences = nltk.sent_tokenize(chunk)
//   text = ' '.join(sentences[len(sentences) // 2:])
//   ids = tokenizer(text, max_length=N, truncation=True)   # BOS kept and counted in N
// NLTK is Python, so splitSentences follows Punkt's English behaviour with explicit rules:
// a sentence ends at . ? ! (with any closing quotes or brackets) followed by whitespace or the end;
// '?' and '!' always end one (Punkt does the same: '"Stop!" he cried.' is two sentences);
// a '.' after a known abbreviation (Mr., Dr., St., e.g., ...), an initial (J.) or a dotted
// acronym (U.S.) does not; 'etc.' and an ellipsis end one only when a capitalised word follows.
// Blank lines always end a sentence (a heading has no period); other whitespace runs become one space.

/** Lowercase, without the final period. Never end a sentence. */
const ABBREVIATIONS = new Set([
  'mr',
  'mrs',
  'ms',
  'messrs',
  'mme',
  'mlle',
  'dr',
  'st',
  'prof',
  'rev',
  'hon',
  'capt',
  'col',
  'gen',
  'lt',
  'sgt',
  'gov',
  'sen',
  'jr',
  'sr',
  'e.g',
  'i.e',
  'viz',
  'vs',
  'cf',
  'mt',
  'ft',
  'vol',
  'jan',
  'feb',
  'apr',
  'jun',
  'jul',
  'aug',
  'sep',
  'sept',
  'oct',
  'nov',
  'dec',
]);
/** Abbreviations that often end a sentence too: a break when the next word is capitalised. */
const FINAL_ABBREVIATIONS = new Set(['etc', 'inc', 'ltd', 'co', 'al']);

// Regex character-class bodies (brackets escaped).
const CLOSERS = `"'”’)\\]}»`;
const OPENERS = `"'“‘(\\[{«`;

/** Whitespace runs → one space, trimmed (the authors ran ' '.join(text.split()) over their books). */
export function normalizeWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function startsCapitalised(word: string): boolean {
  const w = word.replace(new RegExp(`^[${OPENERS}]+`), '');
  return /^[A-Z0-9]/.test(w) || (w.length > 0 && w[0] !== w[0].toLowerCase());
}

/** Does the punctuation `punct` after `word`, followed by `next` (the next word, '' at the end), end a sentence? */
function endsSentence(word: string, punct: string, next: string): boolean {
  if (next === '') return true;
  if (/[?!]/.test(punct)) return true;
  if (punct.length > 1 || punct === '…') return startsCapitalised(next); // ellipsis: a pause unless a new sentence starts
  const stripped = (word.match(/[A-Za-z.]*$/) as RegExpMatchArray)[0]; // the last word: 'Mark!—St' → 'St', '"Mr' → 'Mr'
  const bare = stripped.toLowerCase();
  if (ABBREVIATIONS.has(bare)) return false;
  if (FINAL_ABBREVIATIONS.has(bare)) return startsCapitalised(next);
  if (/^[A-Z]$/.test(stripped) && stripped !== 'I' && stripped !== 'A') return false; // an initial: 'J. Smith'
  if (/^([a-z]\.)+[a-z]$/.test(bare)) return false; // dotted acronym: U.S., A.D.
  return true;
}

/** Split one paragraph (no blank lines) into sentences. */
function splitParagraph(paragraph: string): string[] {
  const text = normalizeWhitespace(paragraph);
  if (!text) return [];
  // A candidate end: the word before, its run of . ? ! … , closing quotes/brackets, then a space or the end.
  const re = new RegExp(`(\\S*?)((?:\\.\\s?){2,}\\.?|[.?!…]+)([${CLOSERS}]*)(?= |$)`, 'g');
  const nextWord = /\s*(\S*)/y; // sticky: reads only the word after `end`, keeping the split linear in the text length
  const out: string[] = [];
  let start = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const end = m.index + m[0].length;
    nextWord.lastIndex = end;
    const next = (nextWord.exec(text) as RegExpExecArray)[1];
    if (endsSentence(m[1], m[2].replace(/\s/g, ''), next)) {
      out.push(text.slice(start, end).trim());
      start = end;
    }
  }
  const rest = text.slice(start).trim();
  if (rest) out.push(rest); // no final period: the rest is the last sentence
  return out.filter((s) => s.length > 0);
}

/** Sentences of `text`, in order, each with single spaces inside. */
export function splitSentences(text: string): string[] {
  return text.split(/\n[ \t\r]*\n/).flatMap(splitParagraph);
}

/** The authors' text to compress: the second half of the sentences, sentences[floor(n/2):], joined by spaces. */
export function secondHalf(text: string): string {
  const s = splitSentences(text);
  return s.slice(Math.floor(s.length / 2)).join(' ');
}

/** Tokens kept past maxTokens before trusting a prefix's encoding (only the cut word can tokenize differently). */
const PREFIX_MARGIN = 32;

/**
 * Tokenize and truncate to maxTokens, keeping the BOS the tokenizer adds (it counts towards
 * maxTokens, as in HF truncation). The authors' chunks are ~100k characters, so only a prefix cut at
 * a space is encoded when it already gives maxTokens + PREFIX_MARGIN tokens; otherwise the whole text.
 */
export function encodeTruncated(
  tokenizer: { encode(text: string): number[] },
  text: string,
  maxTokens?: number,
): number[] {
  if (maxTokens === undefined) return tokenizer.encode(text);
  const cut = text.lastIndexOf(' ', (maxTokens + PREFIX_MARGIN) * 12);
  if (cut > 0 && cut < text.length) {
    const ids = tokenizer.encode(text.slice(0, cut));
    if (ids.length >= maxTokens + PREFIX_MARGIN) return ids.slice(0, maxTokens);
  }
  return tokenizer.encode(text).slice(0, maxTokens);
}

/**
 * Cut a list of sentences into chunks of whole consecutive sentences, each the shortest run at
 * least `minChars` long when joined by spaces; the tail becomes a last chunk when it has at least
 * minChars/2 characters and otherwise joins the chunk before it.
 * Returns [start, end) sentence ranges.
 */
export function chunkRanges(sentences: string[], minChars: number): [number, number][] {
  const ranges: [number, number][] = [];
  let start = 0;
  let len = -1; // n sentences joined by spaces: sum of lengths + n - 1
  for (let i = 0; i < sentences.length; i++) {
    len += sentences[i].length + 1;
    if (len >= minChars) {
      ranges.push([start, i + 1]);
      start = i + 1;
      len = -1;
    }
  }
  if (start < sentences.length) {
    if (ranges.length && len < minChars / 2) ranges[ranges.length - 1][1] = sentences.length;
    else ranges.push([start, sentences.length]);
  }
  return ranges;
}

export function chunkSentences(sentences: string[], minChars: number): string[] {
  return chunkRanges(sentences, minChars).map(([a, b]) => sentences.slice(a, b).join(' '));
}
