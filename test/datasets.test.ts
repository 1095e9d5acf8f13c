// Issue 6 acceptance: built sets reproduce byte for byte, the authors' preprocessing on hand-made
// chunks, Hub-format reading (CSV, Parquet) on files written here, a clear offline failure.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildAll } from '../src/datasets/build';
import { mobyDickChapters, HELD_OUT } from '../src/datasets/corpus';
import { loadTexts, DATASETS_DIR } from '../src/datasets/index';
import { parseCsv, readTextColumn } from '../src/datasets/hub';
import {
  chunkRanges,
  encodeTruncated,
  normalizeWhitespace,
  secondHalf,
  splitSentences,
} from '../src/datasets/preprocess';
import { randomWordText } from '../src/datasets/random';
import { mulberry32 } from '../src/random';
import { loadTokenizer, type Tokenizer } from '../src/io/tokenizer';
import { sharedModel } from './helpers/shared';
import { closedPort } from './helpers/net';

const stories = sharedModel('stories260K');
const ROOT = path.join(__dirname, '..');

/** A transparent tokenizer for tests that must not depend on shared files: BOS 1, then one id per character. */
const charTok: Tokenizer = {
  encode: (t) => [1, ...Array.from(t).map((c) => 3 + (c.codePointAt(0) as number))],
  decode: (ids) => String.fromCodePoint(...ids.filter((i) => i >= 3).map((i) => i - 3)),
  tokenStrings: (ids) => ids.map((i) => (i >= 3 ? String.fromCodePoint(i - 3) : '')),
  vocabSize: 0x110003,
  bosTokenId: 1,
  eosTokenId: 2,
  hash: 'chars',
};

function withEnv<T>(env: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const old: Record<string, string | undefined> = {};
  for (const k of Object.keys(env)) {
    old[k] = process.env[k];
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  return fn().finally(() => {
    for (const k of Object.keys(old)) {
      if (old[k] === undefined) delete process.env[k];
      else process.env[k] = old[k];
    }
  });
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-ds-'));

// ---- built sets

test('rebuilding datasets/ reproduces the committed files byte for byte', () => {
  for (const [name, content] of buildAll()) {
    const file = path.join(DATASETS_DIR, name);
    assert.ok(fs.existsSync(file), `${name} missing: run npm run datasets`);
    assert.ok(
      fs.readFileSync(file).equals(Buffer.from(content, 'utf8')),
      `${name} differs from a fresh build: run npm run datasets`,
    );
    assert.ok(Buffer.byteLength(content) < 1 << 20, `${name} is over 1 MB`);
  }
});

test('books come only from train chapters and unseen only from held-out chapters, 50+ chunks each', () => {
  const read = (n: string) =>
    fs
      .readFileSync(path.join(DATASETS_DIR, n), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  const books = read('books.jsonl');
  const unseen = read('unseen.jsonl');
  assert.ok(books.length >= 50 && unseen.length >= 50, `${books.length} books, ${unseen.length} unseen`);
  const chapters = mobyDickChapters().map((c) => ({ held: HELD_OUT(c.index), text: normalizeWhitespace(c.text) }));
  const heldText = chapters
    .filter((c) => c.held)
    .map((c) => c.text)
    .join('\n');
  const trainText = chapters
    .filter((c) => !c.held)
    .map((c) => c.text)
    .join(' ');
  for (const u of unseen) {
    assert.ok(heldText.includes(u.text), `${u.id} is not a passage of one held-out chapter`);
    assert.ok(!trainText.includes(u.text.slice(0, 200)), `${u.id} also occurs in a train chapter`);
  }
  for (const b of books) {
    // Every sentence of a books chunk is in a train chapter and no held-out sentence of 60+ chars is in it.
    for (const s of splitSentences(b.text).filter((s) => s.length >= 60))
      assert.ok(trainText.includes(s), `${b.id}: '${s.slice(0, 40)}' not from train chapters`);
  }
  // What gets crammed (the second halves) never repeats between unseen chunks.
  const seenSentences = new Set<string>();
  for (const u of unseen) {
    for (const s of splitSentences(secondHalf(u.text)).filter((s) => s.length >= 60)) {
      assert.ok(!seenSentences.has(s), `${u.id}: '${s.slice(0, 40)}' is crammed twice`);
      seenSentences.add(s);
    }
  }
  const bookFile = fs.readFileSync(path.join(DATASETS_DIR, 'books.jsonl'), 'utf8');
  for (const c of chapters.filter((c) => c.held)) {
    for (const s of splitSentences(c.text).filter((s) => s.length >= 80))
      assert.ok(!bookFile.includes(JSON.stringify(s).slice(1, -1)), `held-out sentence in books: ${s.slice(0, 40)}`);
  }
});

test('random-words.txt: 100k distinct lowercase words, the most frequent corpus words first', () => {
  const words = fs.readFileSync(path.join(DATASETS_DIR, 'random-words.txt'), 'utf8').split('\n').filter(Boolean);
  assert.equal(words.length, 100000);
  assert.equal(new Set(words).size, 100000);
  assert.ok(words.every((w) => /^[a-z]+$/.test(w)));
  // Independent count: 'the' is the most frequent word of Moby-Dick + the addresses, 'of' and 'and' follow.
  assert.deepEqual(words.slice(0, 3).sort(), ['and', 'of', 'the']);
});

// ---- preprocessing

test('sentence splitting: abbreviations, initials, quotes, ? and !, ellipses, newlines, no final period', () => {
  const cases: [string, string[]][] = [
    [
      "Mr. Smith met Dr. Jones at St. Paul's. Mrs. Smith stayed.",
      ["Mr. Smith met Dr. Jones at St. Paul's.", 'Mrs. Smith stayed.'],
    ],
    ['We saw e.g. dogs and i.e. cats. They ran.', ['We saw e.g. dogs and i.e. cats.', 'They ran.']],
    [
      'Apples, pears, etc. are fruit. He ate figs, nuts, etc. Then he slept.',
      ['Apples, pears, etc. are fruit.', 'He ate figs, nuts, etc.', 'Then he slept.'],
    ],
    ['J. R. Smith wrote it. The U.S. Navy read it.', ['J. R. Smith wrote it.', 'The U.S. Navy read it.']],
    ['"Stop!" he cried. "Why?" she asked.', ['"Stop!"', 'he cried.', '"Why?"', 'she asked.']],
    [
      "'Let us stay here,' she exclaimed. 'The one room is as good.' Then silence.",
      ["'Let us stay here,' she exclaimed.", "'The one room is as good.'", 'Then silence.'],
    ],
    ['He said “go.” She went. (It was late.) Done', ['He said “go.”', 'She went.', '(It was late.)', 'Done']],
    [
      'Wait... what was that? I do not know... Maybe nothing',
      ['Wait... what was that?', 'I do not know...', 'Maybe nothing'],
    ],
    ['It cost 3.5 dollars. Really?! Yes', ['It cost 3.5 dollars.', 'Really?!', 'Yes']],
    [
      'A heading\n\nFirst line\nwraps here. Next one!\n\n  Last words without a period  ',
      ['A heading', 'First line wraps here.', 'Next one!', 'Last words without a period'],
    ],
    ['St. Mark!—St. Mark is here. ', ['St. Mark!—St. Mark is here.']],
    ['no punctuation at all', ['no punctuation at all']],
    ['', []],
  ];
  for (const [text, expected] of cases) assert.deepEqual(splitSentences(text), expected, JSON.stringify(text));
});

test('second half: sentences[floor(n/2):] joined by single spaces', () => {
  assert.equal(secondHalf('One. Two. Three. Four.'), 'Three. Four.');
  assert.equal(secondHalf('One. Two. Three.'), 'Two. Three.'); // n = 3: floor(3/2) = 1
  assert.equal(secondHalf('Only one sentence here'), 'Only one sentence here');
  assert.equal(secondHalf('A b.\n\nC\nd. E f'), 'C d. E f');
});

test('chunks are whole consecutive sentences of at least minChars, a tail under minChars/2 joins the last chunk', () => {
  for (const n of [40, 41, 42, 43, 44]) {
    const s = Array.from({ length: n }, (_, i) => `Sentence ${i} ${'x'.repeat(i % 7)}.`);
    const r = chunkRanges(s, 60);
    assert.equal(r[0][0], 0);
    assert.equal(r[r.length - 1][1], s.length);
    for (let i = 1; i < r.length; i++) assert.equal(r[i][0], r[i - 1][1]);
    const lens = r.map(([a, b]) => s.slice(a, b).join(' ').length);
    for (const len of lens.slice(0, -1)) assert.ok(len >= 60);
    assert.ok(lens[lens.length - 1] >= 30);
    // Without the last chunk's final sentences the previous chunk would already be long enough: no chunk is longer than it must be, except by a merged tail.
    for (const [a, b] of r.slice(0, -1)) assert.ok(s.slice(a, b - 1).join(' ').length < 60);
  }
  assert.deepEqual(chunkRanges(['Short.', 'Tiny.'], 60), [[0, 2]]);
});

test('loadTexts books: BOS first, truncated to maxTokens, starting at the middle sentence of the chunk', async () => {
  const texts = await loadTexts('books', { tokenizer: charTok, maxTokens: 100, count: 5 });
  const file = fs
    .readFileSync(path.join(DATASETS_DIR, 'books.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(texts.length, 5);
  texts.forEach((t, i) => {
    assert.equal(t.id, file[i].id);
    assert.equal(t.ids.length, 100);
    assert.equal(t.ids[0], 1);
    const sentences = splitSentences(file[i].text);
    const mid = sentences[Math.floor(sentences.length / 2)];
    assert.equal(t.text, (mid + ' ' + sentences.slice(Math.floor(sentences.length / 2) + 1).join(' ')).slice(0, 99));
  });
});

// ---- random text

test('random text: seeded, 5·N uniform words, N tokens; with randomLength N is uniform in [2, N]', async () => {
  const a = await loadTexts('random', { tokenizer: charTok, maxTokens: 40, count: 6, seed: 7 });
  const b = await loadTexts('random', { tokenizer: charTok, maxTokens: 40, count: 3, seed: 7 });
  const c = await loadTexts('random', { tokenizer: charTok, maxTokens: 40, count: 3, seed: 8 });
  assert.deepEqual(a.slice(0, 3), b, 'text i does not depend on count');
  assert.notDeepEqual(b, c);
  for (const t of a) assert.equal(t.ids.length, 40);
  const vocab = new Set(
    fs.readFileSync(path.join(DATASETS_DIR, 'random-words.txt'), 'utf8').split('\n').filter(Boolean),
  );
  const words = ['alpha', 'beta', 'gamma', 'delta'];
  const r = randomWordText(words, charTok, 12, mulberry32(3));
  const drawn = r.text.split(' ');
  assert.equal(drawn.length, 60);
  assert.ok(drawn.every((w) => words.includes(w)));
  for (const t of a)
    for (const w of t.text.split(' ').slice(0, -1)) assert.ok(vocab.has(w), `${w} not in the word list`);
  // Uniformity of the draws (4 words, 60,000 draws): each frequency within 0.01 of 1/4 (about 6 standard deviations).
  const counts = new Map<string, number>();
  const rng = mulberry32(11);
  for (let i = 0; i < 1000; i++)
    for (const w of randomWordText(words, charTok, 12, rng).text.split(' ')) counts.set(w, (counts.get(w) ?? 0) + 1);
  for (const w of words) assert.ok(Math.abs((counts.get(w) as number) / 60000 - 0.25) < 0.01, `${w}: ${counts.get(w)}`);
  const lens = (await loadTexts('random', { tokenizer: charTok, maxTokens: 5, count: 400, randomLength: true })).map(
    (t) => t.ids.length,
  );
  assert.deepEqual([...new Set(lens)].sort(), [2, 3, 4, 5]);
  for (const n of [2, 3, 4, 5]) assert.ok(lens.filter((l) => l === n).length > 60, `length ${n} drawn too rarely`);
});

// ---- files in the authors' format, the Hub path, bad input

const CHUNKS = [
  'First chunk. It has "quotes", commas, and a\nnewline. Mr. Brown agreed. The end.',
  'Second, shorter chunk? Yes! It ends without a period',
  'Third. Line with ""doubled"" quotes. And more text here. Last sentence.',
];

function writeCsv(file: string, texts: string[]): void {
  // As pandas' df.to_csv writes it: an unnamed index column, QUOTE_MINIMAL with doubled quotes.
  const q = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  fs.writeFileSync(file, ',text\n' + texts.map((t, i) => `${i},${q(t)}`).join('\n') + '\n');
}

async function writeParquet(file: string, texts: string[]): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { parquetWriteBuffer } = require('hyparquet-writer');
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'text', data: texts, type: 'STRING' },
      { name: '__index_level_0__', data: texts.map((_, i) => BigInt(i)), type: 'INT64' },
    ],
  });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.from(buf));
}

test('CSV (pandas layout) and Parquet (datasets layout) files are read row by row and preprocessed', async () => {
  const dir = tmp();
  writeCsv(path.join(dir, 'chunks.csv'), CHUNKS);
  await writeParquet(path.join(dir, 'chunks.parquet'), CHUNKS);
  fs.writeFileSync(path.join(dir, 'chunks.jsonl'), CHUNKS.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  for (const f of ['chunks.csv', 'chunks.parquet', 'chunks.jsonl']) {
    assert.deepEqual(await readTextColumn(path.join(dir, f)), CHUNKS, f);
    const texts = await loadTexts(path.join(dir, f), { tokenizer: charTok, maxTokens: 1000 });
    assert.deepEqual(
      texts.map((t) => t.text),
      ['Mr. Brown agreed. The end.', 'Yes! It ends without a period', 'And more text here. Last sentence.'],
      f,
    );
  }
  assert.deepEqual(parseCsv('a,b\r\n"x\r\ny",2\n'), [
    ['a', 'b'],
    ['x\r\ny', '2'],
  ]);
  fs.writeFileSync(path.join(dir, 'bad.csv'), 'id,body\n1,hello\n');
  await assert.rejects(loadTexts(path.join(dir, 'bad.csv'), { tokenizer: charTok }), /no 'text' column/);
});

test('a Hub set in the HF cache is read offline; a missing one fails at once, naming the set and the offline sets', async () => {
  const cache = tmp();
  await writeParquet(
    path.join(
      cache,
      'datasets--yurakuratov--fanfics_1k_chunks',
      'snapshots',
      'main',
      'data',
      'train-00000-of-00001.parquet',
    ),
    CHUNKS,
  );
  await withEnv({ CRAMLAB_CACHE: cache, HF_HUB_OFFLINE: '1' }, async () => {
    const texts = await loadTexts('fanfics', { tokenizer: charTok, count: 2 });
    assert.deepEqual(
      texts.map((t) => t.id),
      ['fanfics-0', 'fanfics-1'],
    );
    assert.equal(texts[1].text, 'Yes! It ends without a period');
    await assert.rejects(
      loadTexts('pg19', { tokenizer: charTok }),
      /yurakuratov\/pg19_valid_1k_chunks.*--texts books or --texts unseen/,
    );
  });
  const t0 = Date.now();
  await withEnv(
    {
      CRAMLAB_CACHE: tmp(),
      HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}`,
      HF_HUB_OFFLINE: undefined,
      CRAMLAB_OFFLINE: undefined,
    },
    async () => {
      await assert.rejects(loadTexts('pg19', { tokenizer: charTok }), (e: Error) => {
        assert.match(e.message, /'pg19'.*yurakuratov\/pg19_valid_1k_chunks.*cannot reach the Hugging Face Hub/);
        assert.match(e.message, /--texts books or --texts unseen/);
        assert.doesNotMatch(e.message, /\n/);
        return true;
      });
    },
  );
  assert.ok(Date.now() - t0 < 10000, 'the offline failure should be immediate');
});

test('bad input: unknown set, random without a length, bad counts give one clear line', async () => {
  await assert.rejects(
    loadTexts('novels', { tokenizer: charTok }),
    /unknown text set 'novels'.*books, unseen, random, pg19, fanfics/,
  );
  await assert.rejects(loadTexts('random', { tokenizer: charTok }), /maxTokens is required/);
  await assert.rejects(loadTexts('books', { tokenizer: charTok, count: 0 }), /count must be a positive integer/);
  await assert.rejects(
    loadTexts('books', { tokenizer: charTok, maxTokens: 2.5 }),
    /maxTokens must be a positive integer/,
  );
  await assert.rejects(loadTexts('random', { tokenizer: charTok, maxTokens: 1, randomLength: true }), /maxTokens >= 2/);
});

// ---- with the real stories260K tokenizer

test(
  'stories260K: books, unseen, random, a .txt and the shared samples .json load with BOS and the asked length',
  { skip: stories.skip },
  async () => {
    const tokenizer = loadTokenizer(stories.dir!);
    for (const set of ['books', 'unseen', 'random']) {
      const texts = await loadTexts(set, { tokenizer, maxTokens: 48, count: 50 });
      assert.equal(texts.length, 50, set);
      for (const t of texts) {
        assert.equal(t.ids[0], tokenizer.bosTokenId, set);
        assert.ok(t.ids.length <= 48 && t.ids.length >= 20, `${set} ${t.id}: ${t.ids.length} tokens`);
        assert.deepEqual(
          tokenizer.encode(t.text).slice(0, 10),
          t.ids.slice(0, 10),
          `${set} ${t.id}: text and ids disagree`,
        );
      }
    }
    // Encoding only a prefix of a long chunk gives the same first N tokens as encoding all of it.
    const chunk = JSON.parse(fs.readFileSync(path.join(DATASETS_DIR, 'books.jsonl'), 'utf8').split('\n')[3]).text;
    const full = tokenizer.encode(chunk);
    for (const n of [1, 2, 17, 300, 1000, 7000, full.length + 5])
      assert.deepEqual(encodeTruncated(tokenizer, chunk, n), full.slice(0, n), `N = ${n}`);
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'mine.txt'), 'Once upon a time. There was a cat.');
    const [mine] = await loadTexts(path.join(dir, 'mine.txt'), { tokenizer });
    assert.deepEqual(mine.ids, tokenizer.encode('Once upon a time. There was a cat.'), '.txt is used as it is');
    const samplesFile = path.join(stories.dir!, '..', '..', 'datasets', 'stories260k-samples.json');
    if (fs.existsSync(samplesFile)) {
      const samples = JSON.parse(fs.readFileSync(samplesFile, 'utf8')).samples;
      const got = await loadTexts(samplesFile, { tokenizer, maxTokens: 64, count: 4 });
      assert.deepEqual(
        got.map((t) => t.ids),
        samples.slice(0, 4).map((s: any) => s.ids.slice(0, 64)),
      );
    }
  },
);

test('stories260K: cramlab texts prints the texts and token statistics', { skip: stories.skip }, () => {
  const r = spawnSync(
    process.execPath,
    [
      path.join(ROOT, 'bin', 'cramlab.js'),
      'texts',
      '--texts',
      'unseen',
      '--model',
      stories.dir!,
      '--max-tokens',
      '32',
      '--count',
      '3',
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal((r.stdout.match(/^--- moby-dick-ch\d+-\d+ \(32 tokens/gm) ?? []).length, 3);
  assert.match(r.stdout, /3 texts, tokens per text mean 32\.0 min 32 max 32/);
  const bad = spawnSync(
    process.execPath,
    [path.join(ROOT, 'bin', 'cramlab.js'), 'texts', '--texts', 'nope', '--model', stories.dir!],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
});
