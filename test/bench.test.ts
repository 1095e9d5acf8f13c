// The bench's plumbing: one FLOP formula for both sides (from config + safetensors header), a crashing
// cramlab child becomes a one-line reason, and the worker reports what it ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { measured, reasonOf } from '../bench/child';
import {
  dataBytes,
  paramCount,
  realCheckpoint,
  realShape,
  realShapeDir,
  REAL_SHAPES,
  tinyShape,
  writeRealShape,
} from '../bench/real-shapes';
import { selected } from '../bench/run';
import { modelShape } from '../bench/shape';
import { W2_CONFIG, W3_CONFIG, writeLlamaFolder } from '../bench/w2model';
import { initBackend } from '../src/backend';
import { cramStepFlops } from '../src/flops';
import { loadModel, modelFromTensors } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { writeRandomCheckpoint } from './helpers/random-checkpoint';
import { sharedModel } from './helpers/shared';

/** The bench's checkpoints have no tokenizer (it feeds ids): build the model as the bench worker does. */
async function loadModelNoTokenizer(dir: string) {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  return { model: modelFromTensors(cfg, readSafetensors(path.join(dir, 'model.safetensors')).tensors) };
}

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

test('the worker splits a cram() call into setup, first step and steady steps that add up to the call', (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
  try {
    const { dir } = writeRandomCheckpoint(path.join(tmp, 'm'), 'llama');
    const ids = path.join(tmp, 'ids.json');
    const text = (s: number) => [1, ...Array.from({ length: 23 }, (_, i) => 3 + ((i * 37 + s * 11) % 500))];
    fs.writeFileSync(ids, JSON.stringify({ samples: [{ ids: text(1) }, { ids: text(2) }] }));
    const out = path.join(tmp, 'out.json');
    const steps = 5;
    const p = measured(process.execPath, [
      ...['--import', 'tsx', path.join(ROOT, 'bench', 'worker.ts'), '--model', dir, '--ids', ids],
      ...['--texts', '2', '--N', '24', '--max-steps', String(steps), '--patience', String(steps)],
      ...['--decode', '4', '--backend', 'cpu', '--out', out],
    ]);
    assert.equal(p.ok, true, p.stderr);
    const r = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(r.steps, steps);
    assert.equal(r.syncEvery, 1);
    for (const k of ['loadS', 'setupS', 'firstStepS', 'steadySPerStep', 'steadyCpuSPerStep', 'finishS'])
      assert.ok(Number.isFinite(r[k]) && r[k] >= 0, `${k} = ${r[k]}`);
    assert.ok(r.firstStepS > 0 && r.steadySPerStep > 0);
    // one wall time per step after the first, the steady value their median
    assert.equal(r.stepS.length, steps - 1);
    const sorted = [...r.stepS].sort((a: number, b: number) => a - b);
    assert.equal(r.steadySPerStep, (sorted[1] + sorted[2]) / 2);
    // the phases tile the call: setup + first + later steps + finish = the whole cram() call
    const sum = r.setupS - r.initS + r.firstStepS + r.stepS.reduce((a: number, b: number) => a + b, 0) + r.finishS;
    assert.ok(Math.abs(sum - r.wallS) < 1e-3 + 0.01 * r.wallS, `phases ${sum} s vs call ${r.wallS} s`);
    assert.ok(r.firstStepS + (steps - 1) * r.steadySPerStep <= 3 * r.wallS);
    assert.equal(r.decode.tokens, 4);
    assert.ok(Number.isFinite(r.decode.msPerToken) && r.decode.firstTokenS > 0);
    assert.ok(r.rssAfterLoadKB > 0 && r.maxRssKB >= r.rssAfterLoadKB);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('ref_cram_phases.py reports the same phases for torch', (t) => {
  const ref = path.join(ROOT, '..', 'shared', 'bench', 'llama_ref.py');
  if (!fs.existsSync('/usr/bin/python3') || !fs.existsSync(ref))
    return t.skip(`needs /usr/bin/python3 with torch and ${ref}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
  try {
    const { dir } = writeRandomCheckpoint(path.join(tmp, 'm'), 'llama');
    const ids = path.join(tmp, 'ids.json');
    fs.writeFileSync(ids, JSON.stringify({ samples: [{ ids: Array.from({ length: 20 }, (_, i) => 1 + i * 7) }] }));
    const out = path.join(tmp, 'out.json');
    const p = measured('/usr/bin/python3', [
      ...[path.join(ROOT, 'bench', 'ref_cram_phases.py'), '--model', dir, '--ids', ids, '--N', '20'],
      ...['--steps', '4', '--decode', '3', '--out', out],
    ]);
    if (/No module named 'torch'/.test(p.stderr)) return t.skip('python3 has no torch');
    assert.equal(p.ok, true, p.stderr);
    const r = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(r.steps, 4);
    assert.equal(r.stepS.length, 3);
    const sum = r.firstStepS + r.stepS.reduce((a: number, b: number) => a + b, 0);
    assert.ok(Math.abs(sum - r.wallS) < 1e-6 + 1e-3 * r.wallS, `${sum} vs ${r.wallS}`);
    assert.ok(r.loadS > 0 && r.setupS > 0 && r.steadySPerStep > 0 && r.decode.tokens === 3);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('real shapes: the Hub parameter counts, and files in the published dtype that load', async () => {
  const counts = Object.fromEntries(REAL_SHAPES.map((s) => [s.name, paramCount(s)]));
  assert.deepEqual(counts, {
    'SmolLM2-135M': 134515008,
    'Pythia-160M': 162322944,
    'Mamba-130m': 129135360,
    'OPT-350m': 331196416,
    'Pythia-410M': 405334016,
    'OLMo-1B': 1176764416,
    'Llama-3.2-1B': 1235814400,
    'Pythia-1.4B': 1414647808,
    'Llama-3.1-8B': 8030261248,
  });
  assert.equal(realShape('llama-3.2-1b').config.rope_scaling.rope_type, 'llama3');
  assert.equal(dataBytes(realShape('Llama-3.2-1B')), 2 * 1235814400); // the 2.47 GB file
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
  try {
    await initBackend('cpu');
    for (const s of REAL_SHAPES.map(tinyShape)) {
      const dir = realCheckpoint(s, tmp);
      assert.equal(realCheckpoint(s, tmp), dir); // cached: not written again
      const { tensors } = readSafetensors(path.join(dir, 'model.safetensors'));
      assert.ok(
        [...tensors.values()].every((x) => x.dtype === s.dtype),
        s.name,
      );
      assert.equal(modelShape(dir).params, paramCount(s));
      const { model } = await loadModelNoTokenizer(dir);
      assert.equal(model.info.vocabSize, 512);
      model.dispose();
    }
    const s = tinyShape(REAL_SHAPES[0]);
    writeRealShape(s, path.join(tmp, 'again'));
    assert.ok(
      fs
        .readFileSync(path.join(tmp, 'again', 'model.safetensors'))
        .equals(fs.readFileSync(path.join(realShapeDir(s, tmp), 'model.safetensors'))),
      'seeded: the same bytes twice',
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('bench --list names every row and why one would be skipped; --only picks groups and labels', () => {
  assert.ok(selected(undefined, 'R', 'R SmolLM2-135M B=1 N=64'));
  assert.ok(selected('R', 'R', 'R SmolLM2-135M B=1 N=64'));
  assert.ok(selected('w3,smollm2', 'R', 'R SmolLM2-135M B=1 N=64'));
  assert.ok(!selected('W1', 'R', 'R SmolLM2-135M B=1 N=64'));
  assert.ok(selected('Llama-3.2-1B B=4', 'R', 'R Llama-3.2-1B B=4 N=64'));
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench', 'run.ts'), '--list', '--only', 'R'],
    {
      encoding: 'utf8',
      cwd: ROOT,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => l.startsWith('R '));
  assert.equal(rows.length, 2 * REAL_SHAPES.length + 2); // B = 1 and 4 each, N = 1024 on two
  for (const l of rows)
    assert.match(l, /^R \S+ B=[14] N=(64|1024)\s+(SKIP: .+|\S+\/\S+ \(.*\), [14] texts? × N=\d+, K=1, \d+ steps)/);
  assert.match(r.stdout, /token ids are fed directly/);
});
