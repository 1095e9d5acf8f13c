// A newcomer's path through the CLI: every way of launching it runs it, typos get a suggestion,
// --help tells the real defaults, paths never reach the Hub, cram shows its text back and saves it,
// decode says where a decoding differs, vectors go out to PyTorch, encode estimates before it works.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizer } from '../src/io/tokenizer';
import { findChromium } from '../src/plots';
import { SUITE_TRAINING } from '../src/train/suite';
import { sharedModel } from './helpers/shared';

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'cramlab.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-newcomer-'));
const s260 = sharedModel('stories260K');
const env = { ...process.env, OMP_NUM_THREADS: '1', CRAMLAB_DEBUG: '' };

function run(cmd: string, args: string[], cwd = ROOT): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env, timeout: 600_000 });
}
const cli = (...args: string[]) => run(process.execPath, [BIN, ...args]);

test('node bin/cramlab.js, npx cramlab, npm exec cramlab and a symlinked bin all run the CLI', () => {
  const link = path.join(tmp, 'bin', 'cramlab');
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.symlinkSync(BIN, link);
  const ways: [string, SpawnSyncReturns<string>][] = [
    ['node bin/cramlab.js', cli('--help')],
    ['npx cramlab', run('npx', ['cramlab', '--help'])],
    ['npm exec cramlab', run('npm', ['exec', '--', 'cramlab', '--help'])],
    ['symlinked bin', run(link, ['--help'], tmp)],
  ];
  for (const [how, r] of ways) {
    assert.equal(r.status, 0, `${how}: ${r.stderr}`);
    assert.match(r.stdout, /^commands:$/m, `${how} printed the command list (it printed: ${JSON.stringify(r.stdout)})`);
    assert.match(r.stdout, /^ {2}export /m, how);
  }
  // A command through npx runs too (the README's `npx cramlab env` printed nothing before).
  const env = run('npx', ['cramlab', 'train', '--help']);
  assert.match(env.stdout, /usage: cramlab train/);
});

test('a mistyped command gets the nearest one', () => {
  const r = cli('crma');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'crma'; did you mean 'cram'\?/);
});

test("train --help states the trainer's real defaults", () => {
  const r = cli('train', '--help');
  const S = SUITE_TRAINING;
  for (const [flag, v] of [
    ['steps', S.steps],
    ['weight-decay', S.weightDecay],
    ['vocab-size', S.vocabSize],
    ['lr', S.lr],
    ['batch', S.batchSize],
  ] as const)
    assert.ok(r.stdout.includes(`[--${flag} ${v}]`), `--${flag} ${v} in ${r.stdout}`);
  assert.deepEqual([S.steps, S.weightDecay, S.vocabSize], [2000, 0, 259]);
});

test('mistyped local model paths say no such folder and never reach the Hub', () => {
  for (const m of ['models/cram-llama-d46', './x', '../x', path.join(tmp, 'nope')]) {
    const r = cli('generate', '--model', m);
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(r.status, 1, m);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /model folder '.*' does not exist$/, m);
    assert.doesNotMatch(r.stderr, /Hub|huggingface/i);
  }
});

test('capacity refuses --lengths beyond the context before any text is loaded', () => {
  const t0 = performance.now();
  const r = cli(
    'capacity',
    '--model',
    'models/cram-llama-d64',
    '--texts',
    'books',
    '--mem',
    '1,4',
    '--lengths',
    '8,125',
  );
  assert.equal(r.status, 2, r.stderr);
  assert.match(
    r.stderr,
    /--lengths 125: N \+ K \(4\) exceeds the context of .* \(128 positions\); the longest N is 124/,
  );
  assert.ok(performance.now() - t0 < 60_000);
});

test(
  'cram shows the text back, the model alone, saves -o; decode --check and export to PyTorch',
  { skip: s260.skip },
  () => {
    const model = s260.dir!;
    const file = path.join(tmp, 'tom.cram');
    const r = cli('cram', '--model', model, '--text', 'Tom found a blue key.', '--mem', '2', '--quiet', '-o', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^original {11}"Tom found a blue key\."$/m);
    assert.match(r.stdout, /^decoded from mem {3}"Tom found a blue key\."$/m);
    assert.match(r.stdout, /^diff {15}identical$/m);
    const alone = /^model alone {8}(\d+) of 14 predicted tokens/m.exec(r.stdout);
    assert.ok(alone && Number(alone[1]) < 14, r.stdout);
    assert.doesNotMatch(r.stdout, /information gain ≤ 0/);
    const j = JSON.parse(
      cli('cram', '--model', model, '--text', 'Tom found a blue key.', '--mem', '2', '--json').stdout.trim(),
    );
    assert.equal(j.decodedText, 'Tom found a blue key.');
    assert.equal(j.identical, true);
    const d = cli('decode', file, '--model', model, '--check');
    assert.equal(d.status, 0, d.stderr);
    assert.equal(d.stdout, 'Tom found a blue key.\n');
    const dj = JSON.parse(cli('decode', file, '--model', model, '--json').stdout);
    assert.equal(dj.text, 'Tom found a blue key.');
    assert.equal(dj.firstMismatch, -1);

    // Out to Python: .npy + .json, then greedy decoding in torch from inputs_embeds = cat([mem, embed(first)]).
    const e = cli('export', file, '--to', 'npy');
    assert.equal(e.status, 0, e.stderr);
    const npy = fs.readFileSync(path.join(tmp, 'tom.npy'));
    assert.equal(npy.subarray(1, 6).toString(), 'NUMPY');
    assert.equal(npy.length, 128 + 2 * 64 * 4);
    const meta = JSON.parse(fs.readFileSync(path.join(tmp, 'tom.json'), 'utf8'));
    assert.deepEqual([meta.K, meta.mem_dim, meta.tokens, meta.first_id], [2, 64, 15, 1]);
    const st = cli('export', file, '--to', 'safetensors', '-o', path.join(tmp, 'tom-plain.safetensors'));
    assert.equal(st.status, 0, st.stderr);
    const torch = run('/usr/bin/python3', ['-c', 'import torch, numpy']);
    const ref = path.join(ROOT, '..', 'shared', 'bench', 'llama_ref.py');
    if (torch.status !== 0 || !fs.existsSync(ref)) {
      console.log(
        `# skipped the PyTorch half: ${torch.status !== 0 ? 'no torch in /usr/bin/python3' : `${ref} absent`}`,
      );
      return;
    }
    const py = run('/usr/bin/python3', ['examples/decode_with_torch.py', path.join(tmp, 'tom.npy'), model]);
    assert.equal(py.status, 0, py.stdout + py.stderr);
    assert.match(py.stdout, /matches cramlab's ids: True/);
  },
);

test('decode --check names the first differing token and both texts around it', { skip: s260.skip }, () => {
  const model = s260.dir!;
  const file = path.join(tmp, 'mia.cram');
  // One vector of stories260K cannot hold this sentence: the file decodes something else.
  const r = cli('cram', '--model', model, '--text', 'Mia flew a red kite.', '--mem', '1', '--quiet', '-o', file);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /^diff {15}identical$/m);
  const d = cli('decode', file, '--model', model, '--check');
  assert.equal(d.status, 1);
  const lines = d.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, d.stderr);
  assert.match(lines[0], /first differing token (\d+) of 14: encoded ".*Mia flew a red kite\.", decoded ".*Mia flew a/);
});

test('cram warns when the model alone already knows the text', { skip: s260.skip }, () => {
  const r = cli(
    'cram',
    '--model',
    s260.dir!,
    '--text',
    'Once upon a time, there was a little girl named Lily.',
    '--quiet',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^model alone {8}15 of 15 predicted tokens/m);
  assert.match(r.stdout, /^warning {12}information gain ≤ 0/m);
});

test(
  'encode without --mem estimates first and refuses a text that cannot fit; --max-minutes stops it',
  { skip: s260.skip },
  () => {
    const words =
      'The lighthouse keeper counted ships each night writing names in a green book storm lamp window dawn sea wind'.split(
        ' ',
      );
    let seed = 3;
    const pick = () => words[(seed = (seed * 1103515245 + 12345) % 2147483648) % words.length];
    const long = path.join(tmp, 'long.txt');
    // About 490 tokens: the 512-position context leaves room for ~20 vectors, far fewer than its CE needs.
    const tokenizer = loadTokenizer(s260.dir!);
    const text: string[] = [];
    while (tokenizer.encode(text.join(' ')).length < 490) text.push(pick());
    fs.writeFileSync(long, text.join(' '));
    const r = cli('encode', long, '-o', path.join(tmp, 'long.cram'), '--model', s260.dir!, '--quiet');
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /will not fit: the text's CE is \d+ bits and one vector gained [\d.]+ bits .* leaves room for \d+; try --progressive/,
    );
    assert.ok(!fs.existsSync(path.join(tmp, 'long.cram')));
    const para = path.join(tmp, 'para.txt');
    fs.writeFileSync(para, Array.from({ length: 60 }, pick).join(' '));
    const m = cli(
      'encode',
      para,
      '-o',
      path.join(tmp, 'para.cram'),
      '--model',
      s260.dir!,
      '--quiet',
      '--max-minutes',
      '0.05',
    );
    assert.equal(m.status, 1, m.stdout + m.stderr);
    assert.match(m.stdout, /^estimate: .* vectors are needed \(room for \d+\)$/m);
    assert.match(m.stdout, /^trying K=\d+: the fewest K lies in \d+\.\.\d+, about \d+ tries left after this one$/m);
    assert.match(m.stderr, /stopped at --max-minutes 0.05 while trying K=\d+ .*; --progressive gives/);
  },
);

test("the README's library example is examples/cram-and-decode.ts and runs", { skip: s260.skip }, () => {
  const example = fs.readFileSync(path.join(ROOT, 'examples', 'cram-and-decode.ts'), 'utf8');
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.equal(block, example, 'the README shows the example file as it is');
  assert.match(readme, /npx tsx examples\/cram-and-decode\.ts/);
  const r = run('npx', ['tsx', 'examples/cram-and-decode.ts']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^decoded {5}"Tom found a blue key\." \(decoded after \d+ steps\)$/m);
  assert.match(r.stdout, /model alone: 7 of 14/);
});

test('the library example without ../shared names the embedded model, and the command it gives runs', () => {
  // run from a folder where ../shared/models/stories260K does not resolve (a clone outside /work)
  const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
  const away = run(tsx, [path.join(ROOT, 'examples', 'cram-and-decode.ts')], tmp);
  assert.equal(away.status, 1);
  const hint = /try the embedded model: npx tsx (examples\/cram-and-decode\.ts) (\S+) "([^"]+)"$/m.exec(
    away.stderr.trim(),
  );
  assert.ok(hint, away.stderr);
  const r = run(tsx, [hint[1], hint[2], hint[3]]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^decoded {5}".+" \(\w+ after \d+ steps\)$/m);
  assert.match(r.stdout, /^info gain {3}\d+\.\d bits in 2 vectors$/m);
});

test('plot draws a run folder: figures as offline HTML (+ PNG with Chromium), Table 1 with the paper beside', () => {
  const runDir = path.join(tmp, 'run');
  const c = cli(
    'capacity',
    '--model',
    'models/cram-llama-d64',
    '--texts',
    'unseen',
    '--count',
    '2',
    '--mem',
    '1,2',
    '--lengths',
    '4,8',
    '--max-steps',
    '100',
    '--quiet',
    '--out',
    runDir,
  );
  assert.equal(c.status, 0, c.stderr);
  const r = cli('plot', runDir);
  assert.equal(r.status, 0, r.stderr);
  const out = path.join(runDir, 'plots');
  for (const name of ['accuracy-vs-n', 'ce-scatter', 'capacity-vs-k']) {
    const html = fs.readFileSync(path.join(out, `${name}.html`), 'utf8');
    assert.match(html, /Plotly\.newPlot/);
    assert.doesNotMatch(html, /<script src="http/, 'plotly.js inlined: the file opens offline');
    assert.ok(html.length > 1e6, 'plotly.js inside');
    if (findChromium()) assert.ok(fs.statSync(path.join(out, `${name}.png`)).size > 5000, `${name}.png drawn`);
  }
  const t1 = fs.readFileSync(path.join(out, 'table1.md'), 'utf8');
  assert.match(t1, /\|model\|set\|K\|decoding_capacity\|paper_capacity\|theoretical\|/);
  assert.equal(t1.trim().split('\n').length, 4, 'header, rule, one row per K');
  assert.match(r.stdout, /8 records → /);
});

test('notebooks default to the interactive budget; a ci run labels its figures and tables a smoke test', () => {
  const wb = require('../src/workbook');
  const saved = process.env.CRAMLAB_BUDGET;
  delete process.env.CRAMLAB_BUDGET;
  const logged: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void logged.push(a.join(' '));
  try {
    assert.equal(wb.budget().name, 'interactive');
    const fig = { data: [{ type: 'scatter', x: [1], y: [2] }], layout: { title: { text: 'Accuracy' } } };
    wb.show(fig);
    wb.showTable([{ a: 1 }]);
    assert.doesNotMatch(logged.join('\n'), /smoke test/);
    wb.budget('ci');
    wb.show(fig);
    wb.showTable([{ a: 1 }]);
    const out = logged.join('\n');
    assert.equal(out.match(/smoke test \(ci budget/g)?.length, 2, out);
    assert.equal(fig.layout.title.text, 'Accuracy', "the caller's figure is left as it was");
  } finally {
    console.log = log;
    if (saved === undefined) delete process.env.CRAMLAB_BUDGET;
    else process.env.CRAMLAB_BUDGET = saved;
  }
});

test("demo --model stories260K states its own context, not the default model's", { skip: s260.skip }, () => {
  const r = cli('demo', '--model', s260.dir!, '--chars', '20', '--max-steps', '300');
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /^why this long {5}a ~200-character passage \(\d+ tokens\) fits the context of 512 positions/m,
  );
  assert.doesNotMatch(r.stdout, /does not fit/);
  const d = cli('demo', '--chars', '20', '--max-steps', '300'); // the default model: context 128
  assert.equal(d.status, 0, d.stderr);
  assert.match(
    d.stdout,
    /^why this long {5}context 128 positions = text \+ K vectors, so a ~200-character passage does not fit;$/m,
  );
});
