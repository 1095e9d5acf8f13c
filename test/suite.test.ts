// Issue 7 acceptance: every committed suite model reloads through loadModel and reproduces the
// numbers its training run recorded; each beats the unigram entropy of its tokenizer.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mobyDickSplit } from '../src/datasets/corpus';
import { greedyGenerate } from '../src/generate';
import { loadModel } from '../src/io/checkpoint';
import { bookStreams, evalWindows, unigramEntropyBits } from '../src/train/data';
import { evalLoss, modelLogits } from '../src/train/loop';
import { DEFAULT_MODEL, SUITE } from '../src/train/suite';

const ROOT = path.join(__dirname, '..');

test('the default demo model is part of the suite and committed', () => {
  assert.ok(
    SUITE.some((e) => path.join('models', e.name) === DEFAULT_MODEL),
    `${DEFAULT_MODEL} is a suite entry`,
  );
  assert.ok(
    fs.existsSync(path.join(ROOT, DEFAULT_MODEL, 'model.safetensors')),
    `${DEFAULT_MODEL} is in the repository`,
  );
});

for (const entry of SUITE) {
  const dir = path.join(ROOT, 'models', entry.name);
  const missing = fs.existsSync(path.join(dir, 'training.json'))
    ? false
    : `models/${entry.name} is not trained yet (npm run train:tiny -- ${entry.name})`;
  test(
    `${entry.name}: reloads to the recorded held-out loss, beats the unigram entropy, ≤ 4 MB`,
    { skip: missing },
    async () => {
      const bytes = fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
      assert.ok(bytes <= 4 * 1024 * 1024, `${bytes} bytes`);
      const rec = JSON.parse(fs.readFileSync(path.join(dir, 'training.json'), 'utf8'));
      const { model, tokenizer, config } = await loadModel(dir);
      assert.deepEqual(config, entry.config, 'the committed config is the suite entry');
      assert.equal(model.numParams, rec.params);

      // The same fixed slice the training run scored: first windows of the held-out chapters.
      const { heldOut } = bookStreams(tokenizer);
      const slice = evalWindows(heldOut, tokenizer.bosTokenId!, rec.heldout_slice.seq_len, rec.heldout_slice.windows);
      const loss = await evalLoss(modelLogits(model), slice);
      assert.ok(
        Math.abs(loss - rec.heldout_slice.loss_nats) < 1e-3,
        `held-out slice ${loss} vs recorded ${rec.heldout_slice.loss_nats}`,
      );

      // The card's bar, recomputed here from the text: unigram entropy of the held-out tokens.
      const H = unigramEntropyBits(heldOut.subarray(0, rec.heldout.tokens));
      assert.ok(Math.abs(H - rec.heldout.unigram_entropy_bits) < 1e-9);
      assert.ok(rec.heldout.loss_bits < H, `held-out ${rec.heldout.loss_bits} bits/token vs unigram ${H}`);
      assert.ok(loss / Math.LN2 < H, `slice ${loss / Math.LN2} bits/token vs unigram ${H}`);

      // The card's greedy sample comes back from the reloaded weights.
      const s = rec.samples[0];
      const ids = tokenizer.encode(s.prompt);
      const out = await greedyGenerate(model, ids, { maxNewTokens: 48, eosTokenIds: [] });
      assert.equal(tokenizer.decode([...ids, ...out]).slice(s.prompt.length), s.greedy);

      // Its tokenizer round-trips the held-out text exactly.
      const text = mobyDickSplit().heldOut[1].text;
      assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
      model.dispose();
    },
  );
}

test(
  'suite: the Llama widths share depth, head size, data, tokenizer and tokens seen',
  {
    skip:
      SUITE.filter((e) => e.config.model_type === 'llama').some(
        (e) => !fs.existsSync(path.join(ROOT, 'models', e.name, 'training.json')),
      ) && 'not every Llama is trained yet',
  },
  () => {
    const recs = SUITE.filter((e) => e.config.model_type === 'llama').map((e) => ({
      e,
      r: JSON.parse(fs.readFileSync(path.join(ROOT, 'models', e.name, 'training.json'), 'utf8')),
    }));
    assert.ok(recs.length >= 2, 'at least two widths, so capacity can be plotted against size');
    const same = (f: (x: (typeof recs)[0]) => unknown) =>
      assert.equal(new Set(recs.map((x) => JSON.stringify(f(x)))).size, 1);
    same((x) => x.e.config.num_hidden_layers);
    same((x) => x.e.config.head_dim);
    same((x) => JSON.parse(fs.readFileSync(path.join(ROOT, 'models', x.e.name, 'config.json'), 'utf8')).head_dim);
    same((x) => x.r.tokens_seen);
    same((x) => x.r.seed);
    same((x) => fs.readFileSync(path.join(ROOT, 'models', x.e.name, 'tokenizer.json'), 'utf8'));
    assert.equal(new Set(recs.map((x) => x.e.config.hidden_size)).size, recs.length, 'distinct widths');
  },
);
