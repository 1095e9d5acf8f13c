// Hostile input to the CLI: unknown or value-less flags, out-of-range numbers, unwritable -o, huge or
// non-UTF-8 texts, and damaged or tampered .cram files all end with exit ≠ 0 and one line on stderr.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decode } from '../src/decode';
import { loadModel } from '../src/io/checkpoint';
import { CRAMLAB_VERSION, idsSha256, saveMem } from '../src/mem-file';
import { sharedModel } from './helpers/shared';

const ROOT = path.join(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-hostile-'));
const s260 = sharedModel('stories260K');

/** Run the CLI; expect failure with exactly one stderr line matching `re` and no stack trace. */
function fails(re: RegExp, ...args: string[]): string {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'cramlab.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, CRAMLAB_DEBUG: '' },
  });
  const lines = r.stderr.split('\n').filter((l) => l.trim());
  assert.notEqual(r.status, 0, `exit status for ${args.join(' ')}; stderr: ${r.stderr}`);
  assert.ok(r.status === 1 || r.status === 2, `a clean exit (1 or 2), not an abort: ${r.status} ${r.signal}`);
  assert.equal(lines.length, 1, `one stderr line, got: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.match(lines[0], re);
  console.log(`# ${lines[0]}`); // the message itself, for the issue's record
  return lines[0];
}

test('unknown flags name the nearest known flag, and value flags need a value', () => {
  fails(
    /^cramlab generate: unknown flag --max-new-token; did you mean --max-new-tokens\?$/,
    'generate',
    '--model',
    'x',
    '--max-new-token',
    '5',
  );
  fails(/unknown flag --patiense; did you mean --patience\?/, 'cram', '--patiense', '3', '--model', 'x');
  fails(/^cramlab cram: --model needs a value$/, 'cram', '--model');
  fails(/^cramlab encode: -o needs a value$/, 'encode', 'a.txt', '--model', 'x', '-o');
  fails(/--quiet takes no value/, 'encode', 'a.txt', '--quiet=1');
});

test('numeric flags are checked per flag (integers, ranges, NaN) before any model is loaded', () => {
  // --model names no folder: a numeric error proves the check runs first.
  fails(/--max-new-tokens must be an integer ≥ 0, got '-5'/, 'generate', '--model', 'nope', '--max-new-tokens', '-5');
  fails(
    /--batch must be a positive integer, got '0'/,
    'capacity',
    '--model',
    'nope',
    '--texts',
    'x',
    '--lengths',
    '8',
    '--batch',
    '0',
  );
  fails(/--mem must be a positive integer, got '0'/, 'cram', '--model', 'nope', '--text', 'hi', '--mem', '0');
  fails(
    /--mem must be a positive integer, got '0'/,
    'capacity',
    '--model',
    'nope',
    '--texts',
    'x',
    '--lengths',
    '8',
    '--mem',
    '1,0',
  );
  fails(/--lr must be a number > 0, got 'nan'/, 'cram', '--model', 'nope', '--text', 'hi', '--lr', 'nan');
  fails(/--steps must be a positive integer, got '1.5'/, 'train', '--out', path.join(tmp, 'm'), '--steps', '1.5');
  fails(/--max-steps must be a positive integer, got ''/, 'cram', '--model', 'nope', '--text', 'hi', '--max-steps=');
});

test(
  'encode refuses an unwritable -o, -o equal to the input, non-UTF-8 and over-long texts before cramming',
  { skip: s260.skip },
  () => {
    const txt = path.join(tmp, 'a.txt');
    fs.writeFileSync(txt, 'Once upon a time there was a cat.');
    fails(
      /cannot write .*x\.cram: directory .*no-such-dir does not exist/,
      'encode',
      txt,
      '-o',
      path.join(tmp, 'no-such-dir', 'x.cram'),
      '--model',
      s260.dir!,
    );
    fails(/output .*a\.txt is the input file/, 'encode', txt, '-o', txt, '--model', s260.dir!);
    const bad = path.join(tmp, 'bad.txt');
    fs.writeFileSync(bad, Buffer.from([0x4f, 0x6e, 0xff, 0xfe, 0x63, 0x65]));
    fails(
      /bad\.txt is not valid UTF-8 text \(give --utf8 replace/,
      'encode',
      bad,
      '-o',
      path.join(tmp, 'bad.cram'),
      '--model',
      s260.dir!,
    );
    fails(
      /--utf8 must be strict or replace/,
      'encode',
      bad,
      '--utf8',
      'lenient',
      '-o',
      path.join(tmp, 'bad.cram'),
      '--model',
      s260.dir!,
    );
    // 5 MB of words: refused from a prefix with the model's context in the message.
    const big = path.join(tmp, 'big.txt');
    fs.writeFileSync(big, 'the cat sat on the mat. '.repeat(5_000_000 / 24));
    fails(
      /big\.txt is 4999992 characters, over 511 tokens, more than the model's limit of 511/,
      'encode',
      big,
      '-o',
      path.join(tmp, 'big.cram'),
      '--model',
      s260.dir!,
    );
    assert.ok(!fs.existsSync(path.join(tmp, 'big.cram')));
  },
);

test(
  'decode refuses damaged and tampered .cram files with the reason, and never succeeds on nothing',
  { skip: s260.skip },
  async () => {
    const loaded = await loadModel(s260.dir!);
    const { model, tokenizer } = loaded;
    const K = 1,
      d = model.info.memDim,
      tokens = 12,
      firstId = tokenizer.bosTokenId ?? 1;
    const vectors = Float32Array.from({ length: K * d }, (_, i) => Math.sin(i + 1));
    // The ids these vectors decode to are "the text": a file whose hash matches them decodes cleanly.
    const { ids } = await decode(model, { vectors, K, tokens, firstId });
    const base = {
      vectors,
      K,
      memDim: d,
      tokens,
      firstId,
      model: loaded.id,
      weightsHash: loaded.weightsHash,
      tokenizerHash: tokenizer.hash,
      idsSha256: idsSha256(ids),
      cramlab: CRAMLAB_VERSION,
    };
    const good = path.join(tmp, 'good.cram');
    saveMem(good, base);
    const ok = spawnSync(
      process.execPath,
      [path.join(ROOT, 'bin', 'cramlab.js'), 'decode', good, '--model', s260.dir!, '--check'],
      { encoding: 'utf8' },
    );
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /12 tokens, ids match/);

    const variant = (name: string, m: Partial<typeof base>) => {
      const f = path.join(tmp, name);
      saveMem(f, { ...base, ...m });
      return f;
    };
    const dataStart = (f: string) => 8 + Number(fs.readFileSync(f).readBigUInt64LE(0));
    // Flipped exponent bits of one stored value (bytes 2–3 of float 9) make it Inf/NaN: refused as damaged.
    // (A flip that leaves the value finite is caught only if it changes the decode: see the hash case below.)
    const flipped = path.join(tmp, 'flipped.cram');
    const bytes = fs.readFileSync(good);
    bytes[dataStart(good) + 4 * 9 + 3] |= 0x7f;
    bytes[dataStart(good) + 4 * 9 + 2] |= 0x80;
    fs.writeFileSync(flipped, bytes);
    fails(
      /flipped\.cram: mem vector 0 holds (NaN|-?Infinity) at \[9\]: the file is damaged/,
      'decode',
      flipped,
      '--model',
      s260.dir!,
    );
    // A float set to NaN / Infinity by editing the bytes.
    const nan = path.join(tmp, 'nan.cram');
    const nb = fs.readFileSync(good);
    nb.writeFloatLE(NaN, dataStart(good) + 4 * 5);
    fs.writeFileSync(nan, nb);
    fails(/nan\.cram: mem vector 0 holds NaN at \[5\]: the file is damaged/, 'decode', nan, '--model', s260.dir!);
    const inf = variant('inf.cram', { vectors: Float32Array.from(vectors, (x, i) => (i === 7 ? Infinity : x)) });
    fails(/inf\.cram: mem vector 0 holds Infinity at \[7\]/, 'decode', inf, '--model', s260.dir!);
    // Token counts: beyond the context, absurd, zero, one (nothing to decode), not an integer.
    fails(
      /token count 100000000 exceeds the model's context \(512 positions less K=1\)/,
      'decode',
      variant('huge.cram', { tokens: 1e8 }),
      '--model',
      s260.dir!,
    );
    fails(
      /token count '0' is not a text of at least 2 tokens/,
      'decode',
      variant('zero.cram', { tokens: 0 }),
      '--model',
      s260.dir!,
      '--check',
    );
    fails(
      /token count '1' is not a text of at least 2 tokens/,
      'decode',
      variant('one.cram', { tokens: 1 }),
      '--model',
      s260.dir!,
      '--check',
    );
    fails(/token count '2.5' is not a text/, 'decode', variant('frac.cram', { tokens: 2.5 }), '--model', s260.dir!);
    // A stored hash changed, or not a hash at all.
    fails(
      /the decoded ids differ from the stored ids hash/,
      'decode',
      variant('hash.cram', { idsSha256: idsSha256([...ids.slice(0, -1), ids.at(-1)! + 1]) }),
      '--model',
      s260.dir!,
    );
    fails(/ids_sha256 is not a sha256 hash/, 'decode', variant('nohash.cram', { idsSha256: '' }), '--model', s260.dir!);
    // Truncated and garbage files.
    const cut = path.join(tmp, 'cut.cram');
    fs.writeFileSync(cut, fs.readFileSync(good).subarray(0, 40));
    fails(/cut\.cram: not a cramlab mem file \(/, 'decode', cut, '--model', s260.dir!);
    const junk = path.join(tmp, 'junk.cram');
    fs.writeFileSync(junk, Buffer.from('\xff\xff\xff\xff\xff\xff\xff\x7fgarbage', 'latin1'));
    fails(/junk\.cram: not a cramlab mem file \(/, 'decode', junk, '--model', s260.dir!);
  },
);

test('a mamba forward on 1M positions ends in one clean error line under wasm, not an abort', () => {
  const ref = path.join(ROOT, 'test', 'fixtures', 'reference', 'mamba'); // committed: runs without ../shared
  const script = path.join(tmp, 'mamba-long.ts');
  fs.writeFileSync(
    script,
    `
    import * as fs from 'node:fs';
    import * as tf from ${JSON.stringify(require.resolve('@tensorflow/tfjs-core'))};
    import { initBackend } from ${JSON.stringify(path.join(ROOT, 'src', 'backend'))};
    import { modelFromTensors } from ${JSON.stringify(path.join(ROOT, 'src', 'io', 'checkpoint'))};
    import { readSafetensors } from ${JSON.stringify(path.join(ROOT, 'src', 'io', 'safetensors'))};
    (async () => {
      await initBackend();
      const config = JSON.parse(fs.readFileSync(${JSON.stringify(path.join(ref, 'config.json'))}, 'utf8'));
      const model = modelFromTensors(config, readSafetensors(${JSON.stringify(path.join(ref, 'model.safetensors'))}).tensors);
      try {
        model.forward(tf.zeros([1, 1_000_000, model.info.hiddenSize]) as tf.Tensor3D).dispose();
        console.log('ran');
      } catch (e) {
        console.error((e as Error).name + ': ' + (e as Error).message);
        process.exit(1);
      }
    })();
  `,
  );
  // the tfjs engine (its memory guard), then the default: the native engine where the addon is built
  const runs: [string, RegExp][] = [
    [
      'tfjs',
      /^MemoryLimitError: mamba forward on 1×1000000 positions needs about 11\.4 GiB, more than the 2\.0 GiB the wasm backend can hold/,
    ],
    [
      '',
      /^MemoryLimitError: mamba forward on 1×1000000 positions needs about 11\.4 GiB|^Error: native engine: T must be an integer in \[1, \d+\], got 1000000$/,
    ],
  ];
  for (const [engine, re] of runs) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, CRAMLAB_BACKEND: 'wasm', CRAMLAB_ENGINE: engine },
    });
    assert.equal(
      r.status,
      1,
      `engine '${engine}': exit 1, not an abort: status ${r.status} signal ${r.signal} stderr ${r.stderr.slice(0, 500)}`,
    );
    const lines = r.stderr.split('\n').filter((l) => l.trim());
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
  }
});

test(
  'cramming a batch whose activations exceed the wasm heap ends in one clean error line, not an abort',
  { skip: s260.skip },
  () => {
    const script = path.join(tmp, 'cram-huge.ts');
    fs.writeFileSync(
      script,
      `
    import { loadModel } from ${JSON.stringify(path.join(ROOT, 'src', 'io', 'checkpoint'))};
    import { cram } from ${JSON.stringify(path.join(ROOT, 'src', 'cram', 'cram'))};
    (async () => {
      const { model } = await loadModel(${JSON.stringify(s260.dir)});
      // 3000 texts × 500 tokens: the logits alone would be 3 GB, past the 32-bit heap
      const texts = Array.from({ length: 3000 }, (_, i) => Array.from({ length: 500 }, (_, t) => 3 + ((i * 31 + t * 7) % 500)));
      try {
        await cram(model, texts, { maxSteps: 1, quiet: true });
        console.log('ran');
      } catch (e) {
        console.error((e as Error).name + ': ' + (e as Error).message);
        process.exit(1);
      }
    })();
  `,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, CRAMLAB_BACKEND: 'wasm', CRAMLAB_ENGINE: 'tfjs' },
    });
    assert.equal(
      r.status,
      1,
      `exit 1, not an abort: status ${r.status} signal ${r.signal} stderr ${r.stderr.slice(0, 500)}`,
    );
    const lines = r.stderr.split('\n').filter((l) => l.trim());
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0],
      /^MemoryLimitError: cramming 3000 texts of up to 500 tokens needs about \d+\.\d GiB, more than the 2\.0 GiB the wasm backend can hold/,
    );
  },
);

// ---- round 2 (issue #23) ----

/** Run the CLI; its status, stdout and stderr. */
function runCli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [path.join(ROOT, 'bin', 'cramlab.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, CRAMLAB_DEBUG: '' },
  });
}

test('repeated flags, stray positionals, --text with --file, non-decimal numbers and --mem 1e9 are errors', () => {
  fails(
    /^cramlab cram: --mem is given twice; give it once \(a list as one comma-separated value\)$/,
    'cram',
    '--model',
    'nope',
    '--text',
    'hi',
    '--mem',
    '1',
    '--mem',
    '2',
  );
  fails(/--out is given twice/, 'encode', 'a.txt', '-o', 'x.cram', '--out', 'y.cram');
  fails(/--quiet is given twice/, 'cram', '--model', 'nope', '--text', 'hi', '--quiet', '--quiet');
  fails(
    /^cramlab score: unexpected argument 'extra'; flags start with --$/,
    'score',
    '--model',
    'nope',
    '--text',
    'hi',
    'extra',
  );
  fails(
    /^cramlab encode: unexpected argument 'b\.txt' \(takes 1: FILE\.txt\)/,
    'encode',
    'a.txt',
    'b.txt',
    '--model',
    'nope',
  );
  fails(
    /^cramlab score: give --text or --file, not both$/,
    'score',
    '--model',
    'nope',
    '--text',
    'hi',
    '--file',
    'a.txt',
  );
  fails(/--mem must be a positive integer, got '0x2'/, 'cram', '--model', 'nope', '--text', 'hi', '--mem', '0x2');
  fails(/--seed must be an integer ≥ 0, got '0b11'/, 'cram', '--model', 'nope', '--text', 'hi', '--seed', '0b11');
  fails(/--lr must be a number > 0, got 'Infinity'/, 'cram', '--model', 'nope', '--text', 'hi', '--lr', 'Infinity');
  fails(/--mem must be at most 1000000, got '1e9'/, 'cram', '--model', 'nope', '--text', 'hi', '--mem', '1e9');
});

test(
  'text files: empty is an error, a BOM is dropped (the documented rule), bad UTF-8 in .jsonl names the line',
  { skip: s260.skip },
  () => {
    const empty = path.join(tmp, 'empty.txt');
    fs.writeFileSync(empty, '');
    fails(/empty\.txt is empty: nothing to read/, 'score', '--model', s260.dir!, '--file', empty);
    const blank = path.join(tmp, 'blank.txt');
    fs.writeFileSync(blank, '\ufeff \n');
    fails(/blank\.txt is empty \(only whitespace\)/, 'score', '--model', s260.dir!, '--file', blank);
    const plain = path.join(tmp, 'plain.txt');
    const bom = path.join(tmp, 'bom.txt');
    fs.writeFileSync(plain, 'Once upon a time there was a cat.');
    fs.writeFileSync(bom, '\ufeffOnce upon a time there was a cat.');
    const a = runCli('score', '--model', s260.dir!, '--file', plain, '--json');
    const b = runCli('score', '--model', s260.dir!, '--file', bom, '--json');
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    assert.deepEqual(JSON.parse(b.stdout).tokens, JSON.parse(a.stdout).tokens);
    const jsonl = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(
      jsonl,
      Buffer.concat([Buffer.from('{"text":"fine"}\n{"text":"bro'), Buffer.from([0xff, 0xfe]), Buffer.from('ken"}\n')]),
    );
    fails(
      /bad\.jsonl: line 2 is not valid UTF-8/,
      'capacity',
      '--model',
      s260.dir!,
      '--texts',
      jsonl,
      '--lengths',
      '8',
      '--out',
      path.join(tmp, 'run-bad'),
    );
  },
);

test(
  'encode -o a link to its input is refused (real paths compared); outputs replace a link rather than write through it',
  { skip: s260.skip },
  () => {
    const txt = path.join(tmp, 'linked.txt');
    const body = 'Once upon a time there was a cat.';
    fs.writeFileSync(txt, body);
    const sym = path.join(tmp, 'sym.cram');
    fs.symlinkSync(txt, sym);
    fails(
      /output .*sym\.cram is the input file .*linked\.txt \(through a link\)/,
      'encode',
      txt,
      '-o',
      sym,
      '--model',
      s260.dir!,
    );
    const hard = path.join(tmp, 'hard.cram');
    fs.linkSync(txt, hard);
    fails(/output .*hard\.cram is the input file/, 'encode', txt, '-o', hard, '--model', s260.dir!);
    assert.equal(fs.readFileSync(txt, 'utf8'), body);
    // A link to some other file: the .cram replaces the link, the file it pointed to is untouched.
    const other = path.join(tmp, 'other.txt');
    fs.writeFileSync(other, 'keep me');
    const link = path.join(tmp, 'link.cram');
    fs.symlinkSync(other, link);
    const r = runCli('encode', txt, '-o', link, '--model', s260.dir!, '--mem', '1', '--max-steps', '5', '--quiet');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(other, 'utf8'), 'keep me');
    assert.ok(fs.lstatSync(link).isFile() && !fs.lstatSync(link).isSymbolicLink());
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.includes('.tmp-')),
      [],
      'no temporary file left behind',
    );
  },
);

test('file-system errors name the file in words: a folder, a file for a folder, a full disk', async () => {
  const { writeFileAtomic } = await import('../src/io/write');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-write-'));
  fs.mkdirSync(path.join(dir, 'folder'));
  assert.throws(
    () => writeFileAtomic(path.join(dir, 'folder'), 'x'),
    /cannot write .*folder: it is a folder \(EISDIR\)/,
  );
  fs.writeFileSync(path.join(dir, 'file'), 'x');
  assert.throws(
    () => writeFileAtomic(path.join(dir, 'file', 'x.json'), 'x'),
    /cannot write .*file\/x\.json: a part of its path is a file, not a folder \(ENOTDIR\)/,
  );
  assert.throws(() => writeFileAtomic(path.join(dir, 'nope', 'x.json'), 'x'), /its folder does not exist \(ENOENT\)/);
});

test(
  'a full disk: the write fails with one line naming the file, the old file stays whole, no temporary left',
  { skip: process.getuid?.() !== 0 ? 'needs root to mount a 64 KiB tmpfs' : s260.skip },
  async (t) => {
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-full-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    } catch {
      t.skip('mount -t tmpfs failed here');
      return;
    }
    try {
      const { writeFileAtomic } = await import('../src/io/write');
      const target = path.join(mnt, 'config.json');
      writeFileAtomic(target, '{"old": true}');
      assert.throws(
        () => writeFileAtomic(target, Buffer.alloc(200 * 1024, 0x20)),
        /cannot write .*config\.json: no space left on the device \(ENOSPC\)/,
      );
      assert.equal(fs.readFileSync(target, 'utf8'), '{"old": true}');
      assert.deepEqual(fs.readdirSync(mnt), ['config.json']);
      // The CLI: fill the disk, then encode into it.
      const filler = path.join(mnt, 'filler');
      try {
        fs.writeFileSync(filler, Buffer.alloc(64 * 1024));
      } catch {
        /* full now */
      }
      const txt = path.join(tmp, 'full.txt');
      fs.writeFileSync(txt, 'Once upon a time there was a cat.');
      const line = fails(
        /cannot write .*x\.cram: no space left on the device \(ENOSPC\)$/,
        'encode',
        txt,
        '-o',
        path.join(mnt, 'x.cram'),
        '--model',
        s260.dir!,
        '--mem',
        '1',
        '--max-steps',
        '5',
        '--quiet',
      );
      assert.ok(!fs.readdirSync(mnt).some((f) => f.includes('x.cram')), line);
    } finally {
      execFileSync('umount', [mnt]);
    }
  },
);

test(
  'train --out and capacity --out refuse a model folder or foreign files; a run folder is reused',
  { skip: s260.skip },
  () => {
    const model = path.join(tmp, 'a-model');
    fs.mkdirSync(model);
    for (const f of fs.readdirSync(s260.dir!))
      if (fs.statSync(path.join(s260.dir!, f)).isFile()) fs.copyFileSync(path.join(s260.dir!, f), path.join(model, f));
    const before = fs.readFileSync(path.join(model, 'config.json'));
    const weights = fs.statSync(path.join(model, 'model.safetensors')).mtimeMs;
    fails(
      /refusing to write a trained model into .*a-model: it holds a checkpoint \(model\.safetensors\); give another --out, or --force/,
      'train',
      '--out',
      model,
      '--steps',
      '1',
    );
    fails(
      /refusing to write a run into .*a-model: it holds a checkpoint \(model\.safetensors\); give another --out folder/,
      'capacity',
      '--model',
      s260.dir!,
      '--texts',
      'books',
      '--count',
      '1',
      '--lengths',
      '8',
      '--max-steps',
      '2',
      '--out',
      model,
    );
    assert.deepEqual(fs.readFileSync(path.join(model, 'config.json')), before);
    assert.equal(fs.statSync(path.join(model, 'model.safetensors')).mtimeMs, weights);
    // Only a config.json, but a model's: still not a run folder.
    const cfgOnly = path.join(tmp, 'cfg-only');
    fs.mkdirSync(cfgOnly);
    fs.copyFileSync(path.join(model, 'config.json'), path.join(cfgOnly, 'config.json'));
    fails(
      /refusing to write a run into .*cfg-only: it holds files of something else \(config\.json\)/,
      'capacity',
      '--model',
      s260.dir!,
      '--texts',
      'books',
      '--count',
      '1',
      '--lengths',
      '8',
      '--out',
      cfgOnly,
    );
    const notes = path.join(tmp, 'notes');
    fs.mkdirSync(notes);
    fs.writeFileSync(path.join(notes, 'thesis.tex'), '...');
    fails(
      /refusing to write a trained model into .*notes: it holds files cramlab did not write \(thesis\.tex\); give another --out, or --force/,
      'train',
      '--out',
      notes,
      '--steps',
      '1',
    );
  },
);

test('a run folder whose config.json an interrupted write left empty is not blocked; a damaged one is named', async () => {
  const { lockRunDir } = await import('../src/runs/folder');
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-run-'));
  fs.writeFileSync(path.join(run, 'config.json'), '');
  fs.writeFileSync(path.join(run, 'results.jsonl'), '');
  const release = lockRunDir(run);
  assert.ok(!fs.existsSync(path.join(run, 'config.json')), 'the empty config.json is dropped, to be written afresh');
  release();
  fs.writeFileSync(path.join(run, 'config.json'), '{"lengths": [8], "Ks": [1');
  assert.throws(() => lockRunDir(run), /config\.json: not a JSON object \(damaged\?\); fix or delete it to reuse/);
});

test(
  'control characters from files are escaped in error lines (tensor names, mem-file metadata)',
  { skip: s260.skip },
  () => {
    const dir = path.join(tmp, 'esc-model');
    fs.mkdirSync(dir);
    for (const f of fs.readdirSync(s260.dir!))
      if (fs.statSync(path.join(s260.dir!, f)).isFile()) fs.copyFileSync(path.join(s260.dir!, f), path.join(dir, f));
    const { readSafetensors, writeSafetensors } = require('../src/io/safetensors');
    const file = path.join(dir, 'model.safetensors');
    const t: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [k, v] of readSafetensors(file).tensors) t[k] = { shape: v.shape, data: v.data };
    t['evil\u001b[2J\u001b]0;owned\u0007'] = { shape: [1], data: new Float32Array(1) };
    writeSafetensors(file, t);
    const r = runCli('score', '--model', dir, '--text', 'Once upon a time');
    assert.equal(r.status, 1);
    assert.ok(!/[\u001b\u0007]/.test(r.stderr), JSON.stringify(r.stderr));
    assert.match(r.stderr, /tensors not used .*evil\\u001b\[2J\\u001b\]0;owned\\u0007/);
    // A .cram file whose model name carries escapes, made for other weights.
    const cram = path.join(tmp, 'esc.cram');
    saveMem(cram, {
      vectors: new Float32Array(64),
      K: 1,
      memDim: 64,
      tokens: 4,
      firstId: 1,
      model: 'org/x\u001b[31mRED\u009b2J',
      weightsHash: 'f'.repeat(64),
      tokenizerHash: 'f'.repeat(64),
      idsSha256: 'f'.repeat(64),
      cramlab: CRAMLAB_VERSION,
    });
    const line = fails(
      /esc\.cram was made with model 'org\/x\\u001b\[31mRED\\u009b2J'/,
      'decode',
      cram,
      '--model',
      s260.dir!,
    );
    assert.ok(!/[\u001b\u009b]/.test(line));
  },
);

test(
  'score and cram on weights so large the activations overflow (3e38): exit 1 naming the first token',
  { skip: s260.skip },
  () => {
    const dir = path.join(tmp, 'huge-model');
    fs.mkdirSync(dir);
    for (const f of fs.readdirSync(s260.dir!))
      if (fs.statSync(path.join(s260.dir!, f)).isFile()) fs.copyFileSync(path.join(s260.dir!, f), path.join(dir, f));
    const { readSafetensors, writeSafetensors } = require('../src/io/safetensors');
    const file = path.join(dir, 'model.safetensors');
    const t: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [k, v] of readSafetensors(file).tensors) t[k] = { shape: v.shape, data: v.data };
    t['model.layers.0.mlp.up_proj.weight'].data.fill(3e38);
    writeSafetensors(file, t);
    const re = /the model's cross-entropy is NaN at text token 1 \(predicting id \d+\): its activations overflow there/;
    fails(re, 'score', '--model', dir, '--text', 'Once upon a time');
    fails(re, 'cram', '--model', dir, '--text', 'Once upon a time', '--max-steps', '3', '--quiet');
  },
);
