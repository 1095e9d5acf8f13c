// The bench's plumbing: one FLOP formula for both sides (from config + safetensors header), a crashing
// cramlab child becomes a one-line reason, and the worker reports what it ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { measured, reasonOf } from '../bench/child';
import { modelShape } from '../bench/shape';
import { W2_CONFIG, W3_CONFIG, writeLlamaFolder } from '../bench/w2model';
import { initBackend } from '../src/backend';
import { cramStepFlops } from '../src/flops';
import { loadModel } from '../src/io/checkpoint';
import { sharedModel } from './helpers/shared';

const ROOT = path.resolve(__dirname, '..');

test('modelShape counts the same parameters and FLOPs per step as the loaded model', async (t) => {
  const { dir, skip } = sharedModel('stories260K');
  if (!dir) return t.skip(skip);
  await initBackend('cpu');
  const { model } = await loadModel(dir);
  const shape = modelShape(dir);
  assert.equal(shape.params, model.numParams);
  assert.equal(shape.weightBytes, 4 * model.numParams);
  for (const T of [17, 33]) assert.equal(shape.stepFlops(T), cramStepFlops(model, 1, T).total);
  model.dispose();
});

test('W3 has SmolLM2-135M shape; random Llama folders are deterministic', () => {
  assert.deepEqual(
    [
      W3_CONFIG.hidden_size,
      W3_CONFIG.num_hidden_layers,
      W3_CONFIG.num_attention_heads,
      W3_CONFIG.num_key_value_heads,
      W3_CONFIG.head_dim,
      W3_CONFIG.intermediate_size,
      W3_CONFIG.vocab_size,
      W3_CONFIG.rope_theta,
      W3_CONFIG.max_position_embeddings,
      W3_CONFIG.tie_word_embeddings,
    ],
    [576, 30, 9, 3, 64, 1536, 49152, 100000, 2048, true],
  );
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
  try {
    const a = writeLlamaFolder(path.join(tmp, 'a'), W2_CONFIG);
    const b = writeLlamaFolder(path.join(tmp, 'b'), W2_CONFIG);
    assert.ok(
      fs.readFileSync(path.join(a, 'model.safetensors')).equals(fs.readFileSync(path.join(b, 'model.safetensors'))),
    );
    // d·V embeddings + 4 layers of (4·d² + 3·d·I + 2·d) + final norm
    const d = 256,
      I = 688;
    assert.equal(modelShape(a).params, 2048 * d + 4 * (4 * d * d + 3 * d * I + 2 * d) + d);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('a crashing child is reported, not thrown: its error as one line, and its peak RSS', () => {
  const p = measured(process.execPath, ['-e', "throw new WebAssembly.RuntimeError('memory access out of bounds')"]);
  assert.equal(p.ok, false);
  assert.equal(reasonOf(p.stderr, 'none'), 'RuntimeError: memory access out of bounds');
  if (fs.existsSync('/usr/bin/time')) assert.ok((p.maxRssKB ?? 0) > 1000, `peak RSS ${p.maxRssKB} KB`);
});

test('the worker crams and reports engine, steps and RSS; a bad model folder is a one-line failure', (t) => {
  const { dir, skip } = sharedModel('stories260K');
  if (!dir) return t.skip(skip);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
  try {
    const ids = path.join(tmp, 'ids.json');
    fs.writeFileSync(
      ids,
      JSON.stringify({
        samples: [{ ids: [1, 400, 300, 200, 100, 50, 60, 70, 80] }, { ids: [1, 10, 20, 30, 40, 50, 60, 70, 80] }],
      }),
    );
    const out = path.join(tmp, 'out.json');
    const args = [
      '--import',
      'tsx',
      path.join(ROOT, 'bench', 'worker.ts'),
      '--ids',
      ids,
      '--texts',
      '2',
      '--N',
      '8',
      '--max-steps',
      '3',
      '--patience',
      '3',
      '--backend',
      'cpu',
      '--out',
      out,
    ];
    const env = { ...process.env, CRAMLAB_ENGINE: 'tfjs' };
    const ok = measured(process.execPath, [...args, '--model', dir], env);
    assert.equal(ok.ok, true, ok.stderr);
    const r = JSON.parse(fs.readFileSync(out, 'utf8'));
    if (!fs.existsSync(path.join(ROOT, 'src', 'native', 'index.ts'))) assert.equal(r.engine, 'tfjs');
    assert.equal(r.backend, 'cpu');
    assert.ok(r.steps >= 1 && r.steps <= 3 && r.textSteps <= 6 && r.maxRssKB > 0);
    const bad = measured(process.execPath, [...args, '--model', path.join(tmp, 'nope')], env);
    assert.equal(bad.ok, false);
    const reason = reasonOf(bad.stderr, 'none');
    assert.match(reason, /nope/);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
