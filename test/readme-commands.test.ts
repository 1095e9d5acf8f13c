// Every command the README shows is run here, as written, or listed in NOT_RUN with the reason.
// readmeCommands() extracts them (fenced bash blocks and indented command lines); the last test fails
// on one that is neither run nor listed. They run in a scratch folder (or the repository root where
// the command needs package.json), with `npx cramlab` → `node <repo>/bin/cramlab.js` and `../shared` →
// the shared folder. Where the README's command is long, the test shortens it with extra flags
// (SHORTER) and says so; the command text itself is the README's.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { MODELS_DIR, sharedModel } from './helpers/shared';
import { findPython } from '../scripts/run-notebooks';

const ROOT = path.join(__dirname, '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const s260 = sharedModel('stories260K');

/** The first fenced block of `lang` after `heading`. */
function blockAfter(heading: string, lang: string): string {
  const at = README.indexOf(heading);
  assert.ok(at >= 0, `README has '${heading}'`);
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(README.slice(at));
  assert.ok(m, `a ${lang} block after '${heading}'`);
  return m![1];
}

function runBlock(block: string, cwd: string, env: NodeJS.ProcessEnv = {}) {
  const shared = path.dirname(MODELS_DIR);
  const script = block
    .replace(/\bnpx cramlab\b/g, `node ${path.join(ROOT, 'bin', 'cramlab.js')}`)
    .replace(/\.\.\/shared\//g, shared + '/')
    .replace(/(^|\s)examples\//g, `$1${path.join(ROOT, 'examples')}/`);
  return spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '1', ...env },
    timeout: 900_000,
  });
}

/**
 * The README's commands: each line of its fenced bash blocks and each 4-space-indented line that starts
 * with a command, comments cut, `\` continuations joined.
 */
export function readmeCommands(readme = README): string[] {
  const out: string[] = [];
  const add = (body: string) => {
    for (const line of body.replace(/\s*\\\n\s*/g, ' ').split('\n')) {
      const cmd = line.replace(/(^|\s)#\s.*$/, '').trim();
      if (cmd) out.push(cmd);
    }
  };
  const fence = /^( *)```(?:bash|sh|shell)\n([\s\S]*?)^ *```/gm;
  for (const m of readme.matchAll(fence)) add(m[2]);
  const rest = readme.replace(/^( *)```[\s\S]*?^ *```/gm, '');
  for (const m of rest.matchAll(/^ {4}((?:npm|npx|node|python3|\/usr\/bin\/python3|bash|jupyter)\b.*(?:\\\n.*)*)$/gm))
    add(m[1]);
  return out;
}

/** The README command matching `re` (exactly one), as the README writes it. */
function command(re: RegExp): string {
  const hits = readmeCommands().filter((c) => re.test(c));
  assert.equal(hits.length, 1, `one README command matches ${re}: ${JSON.stringify(hits)}`);
  return hits[0];
}

// What each test below runs (the walk-through and export blocks run whole).
const RUN: RegExp[] = [
  /^npx cramlab (cram|decode|encode|capacity|plot|export) /,
  /^printf 'Tom found a blue key\.' > story\.txt$/,
  /^\/usr\/bin\/python3 examples\/decode_with_torch\.py /,
  /^npm ci && npm run demo$/,
  /^npx cramlab generate --model \.\/models\/cram-llama-d64 /,
  /^npx cramlab (generate|score) +--model (EleutherAI|meta-llama)\//,
  /^node bin\/cramlab\.js texts /,
  /^npx cramlab train --out models\/my-llama /,
  /^npm run bench -- /,
  /^python3 -m nbformat\.sign notebooks\/\*\.ipynb$/,
  /^jupyter trust notebooks\/\*\.ipynb$/,
];

// Commands no test runs, and why.
const NOT_RUN: [RegExp, string][] = [
  [/^npm ci && npm run test:all$/, 'the test run itself (.ci/run runs it)'],
  [/^node --import tsx --test test\//, 'test files that npm test runs'],
  [/^npm run datasets$/, 'rewrites datasets/ in place; test/datasets.test.ts rebuilds them and compares byte for byte'],
  [
    /^npm run train:tiny/,
    'retrains the committed models/ (tens of minutes); the same trainer runs here through `npx cramlab train`',
  ],
  [
    /10\.0\.0\.5/,
    'a several-machine queue; test/queue.test.ts runs redis-server, workers and capacity --queue on 127.0.0.1',
  ],
  [/^sudo apt-get install /, 'installs Debian packages (.ci/run and scripts/setup-test-env.sh do)'],
  [/^python3 -m pip install jupyterlab$/, 'installs from PyPI, which this environment cannot reach'],
  [
    /^npm ci && bash scripts\/setup-jupyter\.sh$/,
    "registers the user's kernel too; npm run test:all runs it with --local-only",
  ],
  [
    /^jupyter (notebook|lab) notebooks\/$/,
    'starts an interactive server; test/notebooks.test.ts runs every notebook through the same kernel',
  ],
];

test('the README command extraction finds fenced, indented and continued commands', () => {
  const md = [
    'text `npx inline` is prose',
    '```bash',
    'npx cramlab a --x 1   # a comment',
    'npx cramlab b \\',
    '    --y 2',
    '```',
    '',
    '    npm run bench -- --quick   # smoke',
    '    not a command',
    '```',
    '$ output block',
    '```',
  ].join('\n');
  assert.deepEqual(readmeCommands(md), ['npx cramlab a --x 1', 'npx cramlab b --y 2', 'npm run bench -- --quick']);
});

test('every README command is run by a test here or listed with the reason it is not', () => {
  const cmds = readmeCommands();
  assert.ok(cmds.length >= 25, `README commands found: ${cmds.length}`);
  const orphans = cmds.filter((c) => !RUN.some((re) => re.test(c)) && !NOT_RUN.some(([re]) => re.test(c)));
  assert.deepEqual(orphans, [], `README commands neither run nor listed in NOT_RUN:\n${orphans.join('\n')}`);
  const both = cmds.filter((c) => RUN.some((re) => re.test(c)) && NOT_RUN.some(([re]) => re.test(c)));
  assert.deepEqual(both, [], 'a command both run and listed as not run');
  // Each listed pattern still names a README command (a stale entry would hide nothing).
  for (const re of [...RUN, ...NOT_RUN.map(([r]) => r)])
    assert.ok(
      cmds.some((c) => re.test(c)),
      `${re} matches no README command`,
    );
});

test("the README's CLI walk-through and export block run as written", { skip: s260.skip }, () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-readme-'));
  const cli = runBlock(blockAfter('### Cramming from the command line and from code', 'bash'), cwd);
  assert.equal(cli.status, 0, cli.stdout.slice(-2000) + cli.stderr);
  assert.match(cli.stdout, /^diff {15}identical$/m);
  // cram's last progress line shows the final loss and accuracy (it printed 'loss -  acc -' once all were done).
  assert.match(cli.stdout, /^cram step \d+\/5000 {2}loss \d+\.\d{4} {2}acc 100\.0% \(best 100\.0%\) {2}done 1\/1 /m);
  assert.doesNotMatch(cli.stdout, /loss - {2}acc -/);
  assert.match(cli.stdout, /^Tom found a blue key\.$/m, 'decode prints the text back');
  assert.match(cli.stdout, /wrote story\.cram/);
  assert.match(cli.stdout, /records → runs\/stories260k-quick\/plots/);
  for (const f of [
    'tom.cram',
    'story.cram',
    'runs/stories260k-quick/results.jsonl',
    'runs/stories260k-quick/plots/table1.md',
  ])
    assert.ok(fs.existsSync(path.join(cwd, f)), f);
  const exp = runBlock(blockAfter('### Using crammed vectors from Python', 'bash'), cwd);
  assert.equal(exp.status, 0, exp.stderr);
  for (const f of ['tom.npy', 'tom.json', 'tom.safetensors']) assert.ok(fs.existsSync(path.join(cwd, f)), f);
  const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch, numpy']);
  if (torch.status !== 0) return void console.log('# skipped the Python line: no torch in /usr/bin/python3');
  const line = /^ {4}(\/usr\/bin\/python3 examples\/decode_with_torch\.py .*)$/m.exec(README)![1];
  const py = runBlock(line, cwd);
  assert.equal(py.status, 0, py.stdout + py.stderr);
  assert.match(py.stdout, /matches cramlab's ids: True/);
});

test(
  "the README's demo runs (npm ci is done before any test) and prints what its sample output shows",
  { skip: s260.skip },
  () => {
    const demo = command(/^npm ci && npm run demo$/).replace(/^npm ci && /, '');
    const r = runBlock(demo, ROOT);
    assert.equal(r.status, 0, r.stdout.slice(-2000) + r.stderr);
    const sample = /```\n(1\/2 progressive[\s\S]*?)```/.exec(README)![1];
    // Same sections and labels, same texts decoded; steps and seconds depend on the machine and engine.
    const labels = (s: string) => [...s.matchAll(/^([a-z][a-z ,]+?) {2,}/gm)].map((m) => m[1]);
    assert.deepEqual(labels(r.stdout), labels(sample), 'the README sample shows the labels the demo prints');
    for (const line of sample.split('\n').filter((l) => /^(original|decoded from mem|diff|passage|model) /.test(l)))
      assert.ok(r.stdout.includes(line), `the demo printed: ${line}`);
  },
);

test("the README's generate command on the embedded model runs", () => {
  const r = runBlock(command(/^npx cramlab generate --model \.\/models\/cram-llama-d64 /), ROOT);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Call me/);
});

test("the README's Hub-id commands fail offline with one line naming the id and the way out", async () => {
  // A port with nothing listening stands for the unreachable Hub; an empty cache has nothing to fall back on.
  const port = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-readme-hub-'));
  const env = {
    HF_ENDPOINT: `http://127.0.0.1:${port}`,
    CRAMLAB_CACHE: cache,
    HF_HUB_OFFLINE: '',
    CRAMLAB_OFFLINE: '',
  };
  for (const [re, id] of [
    [/^npx cramlab generate --model EleutherAI\//, 'EleutherAI/pythia-160m'],
    [/^npx cramlab score +--model meta-llama\//, 'meta-llama/Llama-3.2-1B@main'],
  ] as const) {
    const r = runBlock(command(re), cache, env);
    assert.notEqual(r.status, 0);
    const err = r.stderr.trim();
    assert.equal(err.split('\n').length, 1, `one line: ${err}`);
    assert.match(
      err,
      new RegExp(
        `cannot reach the Hugging Face Hub to download '${id.replace('/', '\\/')}'.*--model \\./path/to/folder`,
      ),
    );
  }
  fs.rmSync(cache, { recursive: true, force: true });
});

test("the README's texts command shows five texts", { skip: s260.skip }, () => {
  const r = runBlock(command(/^node bin\/cramlab\.js texts /), ROOT);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((r.stdout.match(/^\S+\s.*\d+ tokens/gm) ?? []).length, 5, r.stdout);
});

// SHORTER: flags a test adds to a README command that takes minutes (the rest runs as written).
const SHORTER = {
  train: ['--steps 1000', '--steps 20'], // 1000 steps: ~7 min on 2 loaded cores
  bench: ' --only W1 --no-ref', // --quick also writes multi-GB real-shape checkpoints and times them
};

test("the README's train command trains and saves a model (20 steps instead of 1000)", () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-readme-train-'));
  const cmd = command(/^npx cramlab train --out models\/my-llama /);
  assert.ok(cmd.includes(SHORTER.train[0]), cmd);
  const r = runBlock(cmd.replace(SHORTER.train[0], SHORTER.train[1]), cwd);
  assert.equal(r.status, 0, r.stdout.slice(-1500) + r.stderr);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json'])
    assert.ok(fs.existsSync(path.join(cwd, 'models', 'my-llama', f)), f);
  assert.match(r.stdout, /saved models\/my-llama/);
  fs.rmSync(cwd, { recursive: true, force: true });
});

test("the README's bench commands run (W1 only, no torch side, results in a scratch file)", { skip: s260.skip }, () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-readme-bench-'));
  const cmds = readmeCommands().filter((c) => /^npm run bench -- /.test(c));
  assert.equal(cmds.length, 3, cmds.join('\n'));
  for (const [i, cmd] of cmds.entries()) {
    const file = path.join(out, `${i}.json`);
    const full = cmd.includes('--table')
      ? cmd
      : `${cmd}${cmd.includes('--only') ? '' : SHORTER.bench}${cmd.includes('--quick') ? '' : ' --quick --no-ref'} --out ${file}`;
    const r = runBlock(full, ROOT);
    assert.equal(r.status, 0, `${full}\n${r.stdout.slice(-1500)}${r.stderr}`);
    assert.match(r.stdout, /\| workload \| side/, `${cmd} prints the table`);
    if (!cmd.includes('--table')) assert.ok(fs.existsSync(file), `${full} wrote its results`);
  }
  fs.rmSync(out, { recursive: true, force: true });
});

test("the README's trust commands sign the notebooks (in a scratch copy and signature store)", (t) => {
  const py = findPython();
  if (!py) return t.skip('no python3 with nbformat (scripts/setup-jupyter.sh says what to install)');
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-readme-trust-'));
  fs.cpSync(path.join(ROOT, 'notebooks'), path.join(cwd, 'notebooks'), { recursive: true });
  const env = { JUPYTER_DATA_DIR: path.join(cwd, 'data') };
  const sign = runBlock(command(/^python3 -m nbformat\.sign /).replace(/^python3\b/, py), cwd, env);
  assert.equal(sign.status, 0, sign.stderr);
  assert.match(sign.stdout + sign.stderr, /Signing notebook: notebooks\/00-quickstart\.ipynb/);
  const trust = command(/^jupyter trust /);
  if (spawnSync('jupyter', ['trust', '--help'], { stdio: 'ignore' }).status === 0) {
    const r = runBlock(trust, cwd, env);
    assert.equal(r.status, 0, r.stderr);
  } else console.log(`# '${trust}' not run: jupyter-notebook is not installed (it signs as nbformat.sign did)`);
  fs.rmSync(cwd, { recursive: true, force: true });
});
