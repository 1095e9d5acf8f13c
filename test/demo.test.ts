// Issues 7, 15: `cramlab demo`: one vector's progressive horizon on an unseen passage, then the fewest vectors
// of the default model that hold a whole short passage, decoded back unchanged, with bits per vector and the classic compressors.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { mobyDickSplit } from '../src/datasets/corpus';
import { classicBits } from '../src/metrics/compression';
import { nativeAddon } from '../src/native/index';
import { DEFAULT_MODEL } from '../src/train/suite';

const ROOT = path.join(__dirname, '..');
const present = fs.existsSync(path.join(ROOT, DEFAULT_MODEL, 'model.safetensors'));

test(
  "cramlab demo: one vector's horizon, then the fewest vectors that hold a whole passage, decoded back unchanged",
  { skip: !present && `${DEFAULT_MODEL} is not trained yet` },
  async () => {
    // From another working directory: the demo finds the model next to the package.
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'cramlab.js'), 'demo', '--json'], {
      cwd: '/',
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(out.model, path.basename(DEFAULT_MODEL));
    // The default is a Llama, so it crams on the native engine whenever the addon is built.
    assert.equal(out.modelType, 'llama');
    assert.equal(out.engine, nativeAddon() ? 'native' : 'tfjs');
    // 1. One vector: the progressive horizon decodes back, and holds more than the first token.
    const h = out.horizon;
    assert.equal(h.K, 1);
    assert.ok(h.tokens >= 3, `horizon ${h.tokens}`);
    assert.equal(h.identical, true);
    assert.equal(h.decoded, h.original);
    assert.equal(h.diff, 'identical');
    assert.ok(h.steps > 0 && h.seconds >= 0);
    assert.ok(Math.abs(h.bitsPerVector - (h.ceWithoutMemBits - h.ceWithMemBits)) < 1e-6 && h.bitsPerVector > 0);
    // 2. The whole passage: decoded exactly from the fewest vectors the search found, within the context.
    const w = out.whole;
    assert.equal(w.identical, true);
    assert.equal(w.decoded, w.original);
    assert.equal(w.diff, 'identical');
    assert.ok(w.bytes <= out.budgetBytes && w.bytes >= 32, `${w.bytes} bytes`);
    assert.ok(w.tokens + w.K <= out.context, 'text + vectors fit the context');
    assert.ok(w.tokens > h.tokens && w.K > 1, `K = ${w.K} for ${w.tokens} tokens`);
    assert.equal(w.accuracyWithMem, 1);
    // The search's K decoded, K-1 (when tried) did not, and the steps are the attempts' sum.
    const at = w.attempts as { K: number; decoded: boolean; steps: number }[];
    assert.ok(at.some((a) => a.K === w.K && a.decoded));
    assert.ok(
      at.every((a) => a.decoded === a.K >= w.K || a.K > w.K),
      'no smaller K decoded',
    );
    assert.equal(
      w.steps,
      at.reduce((n, a) => n + a.steps, 0),
    );
    assert.ok(Math.abs(w.infoGainBits - (w.ceWithoutMemBits - w.ceWithMemBits)) < 1e-6);
    assert.ok(Math.abs(w.bitsPerVector - w.infoGainBits / w.K) < 1e-6 && w.bitsPerVector > 0);
    assert.equal(w.memFp16Bits, w.K * out.memDim * 16);
    for (const c of ['gzipBits', 'brotliBits', 'xzBits'])
      assert.ok(Number.isInteger(w[c]) && w[c] > 0 && w[c] % 8 === 0, `${c} = ${w[c]}`);
    // ... and they are the compressors' sizes of exactly the passage shown.
    const classic = await classicBits(w.original);
    assert.deepEqual([w.gzipBits, w.brotliBits, w.xzBits], [classic.gzip, classic.brotli, classic.xz]);
    assert.equal(w.chars, [...w.original].length);
    assert.equal(w.bytes, Buffer.byteLength(w.original, 'utf8'));
    assert.ok(out.seconds >= w.seconds + h.seconds - 1e-6);
    // The passage is held-out Moby-Dick text, which the model never trained on.
    const held = mobyDickSplit()
      .heldOut.map((c) => c.text)
      .join('\n');
    assert.ok(held.includes(w.original.trim().slice(0, 40)), 'the passage comes from the held-out chapters');
    assert.ok(w.original.startsWith(h.original), 'both parts are the same passage');
  },
);

test('cramlab demo: bad options get a one-line error', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'cramlab.js'), 'demo', '--chars', '1'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--chars must be an integer ≥ 2/);
});
