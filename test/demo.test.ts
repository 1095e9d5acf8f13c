// Issue 7: `cramlab demo` crams an unseen passage into one vector of the default model and decodes it back.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { mobyDickSplit } from '../src/datasets/corpus';
import { DEFAULT_MODEL } from '../src/train/suite';

const ROOT = path.join(__dirname, '..');
const present = fs.existsSync(path.join(ROOT, DEFAULT_MODEL, 'model.safetensors'));

test('cramlab demo: the decoded text is the original unseen passage', { skip: !present && `${DEFAULT_MODEL} is not trained yet` }, () => {
  // From another working directory: the demo finds the model next to the package.
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'cramlab.js'), 'demo', '--json'], { cwd: '/', encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.model, path.basename(DEFAULT_MODEL));
  assert.equal(out.identical, true);
  assert.equal(out.decoded, out.original);
  assert.equal(out.K, 1);
  // The search keeps the longest opening that decodes; a steerable model holds more than a couple of bytes.
  assert.ok(out.N >= 3, `N = ${out.N}`);
  assert.ok(out.steps > 0 && out.infoGainBits > 0);
  assert.equal(out.accuracyWithMem, 1);
  // The passage is held-out Moby-Dick text, which the model never trained on.
  const held = mobyDickSplit().heldOut.map((c) => c.text).join('\n');
  assert.ok(held.includes(out.original.trim().slice(0, 40)), 'the passage comes from the held-out chapters');
});

test('cramlab demo: bad options get a one-line error', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'cramlab.js'), 'demo', '--tokens', '1'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--tokens must be 'auto' or an integer ≥ 2/);
});
