// The README's command blocks, run as written: the CLI walk-through ("Cramming from the command line")
// and the export block ("Using crammed vectors from Python"), then the Python decode line. They run in
// a scratch folder, with `npx cramlab` → `node <repo>/bin/cramlab.js` and `../shared` → the shared folder.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MODELS_DIR, sharedModel } from './helpers/shared';

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

function runBlock(block: string, cwd: string) {
  const shared = path.dirname(MODELS_DIR);
  const script = block
    .replace(/\bnpx cramlab\b/g, `node ${path.join(ROOT, 'bin', 'cramlab.js')}`)
    .replace(/\.\.\/shared\//g, shared + '/')
    .replace(/examples\//g, path.join(ROOT, 'examples') + '/');
  return spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '1' },
    timeout: 900_000,
  });
}

test("the README's CLI walk-through and export block run as written", { skip: s260.skip }, () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-readme-'));
  const cli = runBlock(blockAfter('### Cramming from the command line and from code', 'bash'), cwd);
  assert.equal(cli.status, 0, cli.stdout.slice(-2000) + cli.stderr);
  assert.match(cli.stdout, /^diff {15}identical$/m);
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
