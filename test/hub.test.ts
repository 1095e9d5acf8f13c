// Hub ids versus local paths, and the cache layout shared with Python's huggingface_hub.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hubCacheDir, hubSnapshot, isLocal, parseHubId } from '../src/io/hub';

test('Hub ids and local paths are told apart', () => {
  assert.equal(isLocal('EleutherAI/pythia-160m'), false);
  assert.equal(isLocal('meta-llama/Llama-3.2-1B@main'), false);
  assert.equal(isLocal('./models/x'), true);
  assert.equal(isLocal('/abs/path'), true);
  assert.equal(isLocal('~/models/x'), true);
  assert.equal(isLocal('just-a-name'), true);
  assert.deepEqual(parseHubId('org/name@v1.0'), { repo: 'org/name', revision: 'v1.0' });
  assert.deepEqual(parseHubId('org/name'), { repo: 'org/name', revision: 'main' });
});

test('cache folder follows CRAMLAB_CACHE, then HF_HUB_CACHE, then HF_HOME', () => {
  const saved = { ...process.env };
  try {
    delete process.env.CRAMLAB_CACHE;
    delete process.env.HF_HUB_CACHE;
    process.env.HF_HOME = '/x/hf';
    assert.equal(hubCacheDir(), '/x/hf/hub');
    process.env.HF_HUB_CACHE = '/y/hub';
    assert.equal(hubCacheDir(), '/y/hub');
    process.env.CRAMLAB_CACHE = '/z';
    assert.equal(hubCacheDir(), '/z');
  } finally {
    process.env = saved;
  }
});

test('a cached snapshot is used offline without any network', async () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-cache-'));
  const saved = { ...process.env };
  try {
    process.env.CRAMLAB_CACHE = cache;
    process.env.HF_HUB_OFFLINE = '1';
    const snap = path.join(cache, 'models--org--tiny', 'snapshots', 'main');
    fs.mkdirSync(snap, { recursive: true });
    fs.writeFileSync(path.join(snap, 'config.json'), '{}');
    assert.equal(await hubSnapshot('org/tiny', ['config.json', 'generation_config.json?']), snap);
    await assert.rejects(
      hubSnapshot('org/tiny', ['model.safetensors']),
      /'org\/tiny' is not in the cache .*offline mode is on/,
    );
  } finally {
    process.env = saved;
  }
});

test('offline, a revision is found through refs/<revision> (the huggingface_hub layout); a damaged ref is named', async () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-cache-'));
  const saved = { ...process.env };
  try {
    process.env.CRAMLAB_CACHE = cache;
    process.env.HF_HUB_OFFLINE = '1';
    const commit = '0123456789abcdef0123456789abcdef01234567';
    const repo = path.join(cache, 'models--org--reffed');
    fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
    fs.mkdirSync(path.join(repo, 'snapshots', commit), { recursive: true });
    fs.writeFileSync(path.join(repo, 'refs', 'v1.0'), commit + '\n');
    fs.writeFileSync(path.join(repo, 'snapshots', commit, 'config.json'), '{}');
    assert.equal(await hubSnapshot('org/reffed@v1.0', ['config.json']), path.join(repo, 'snapshots', commit));
    assert.equal(await hubSnapshot(`org/reffed@${commit}`, ['config.json']), path.join(repo, 'snapshots', commit));
    fs.writeFileSync(path.join(repo, 'refs', 'main'), '<html>');
    await assert.rejects(hubSnapshot('org/reffed', ['config.json']), /refs\/main: not a commit hash \("<html>"\)/);
  } finally {
    process.env = saved;
  }
});
