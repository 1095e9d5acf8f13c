// The weights hash (io/weights-hash.ts): sha256 over config.json and the weight files, remembered by file
// identity (device, inode, size, mtime, ctime) so that a later load skips hashing gigabytes; a rewritten
// file is hashed again even with its old mtime put back; a damaged cache is ignored; the worker-thread
// hash loadModel runs beside the native load gives the same digest.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { hashCacheFile, startWeightsHash, weightsHash } from '../src/io/weights-hash';

const sha = (...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest('hex');
const bytes = (n: number, seed: number) =>
  Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 255));

async function withCache<T>(value: string, body: () => Promise<T>): Promise<T> {
  const old = process.env.CRAMLAB_HASH_CACHE;
  process.env.CRAMLAB_HASH_CACHE = value;
  try {
    return await body();
  } finally {
    if (old === undefined) delete process.env.CRAMLAB_HASH_CACHE;
    else process.env.CRAMLAB_HASH_CACHE = old;
  }
}

test('weights hash: remembered by file identity, recomputed when a file is rewritten (old mtime put back)', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-hash-'));
  try {
    const cfg = path.join(root, 'config.json');
    const w = path.join(root, 'model.safetensors');
    fs.writeFileSync(cfg, '{"model_type":"llama"}');
    fs.writeFileSync(w, bytes(3 << 20, 1));
    await new Promise((r) => setTimeout(r, 3200)); // files changed in the last 3 s are not remembered
    await withCache(path.join(root, 'cache'), async () => {
      const file = hashCacheFile()!;
      const h1 = weightsHash(cfg, [w]);
      assert.equal(h1, sha(fs.readFileSync(cfg), fs.readFileSync(w)), 'sha256 of config.json then the weights');
      const cache = JSON.parse(fs.readFileSync(file, 'utf8'));
      assert.deepEqual(
        Object.values(cache).map((e: any) => e.hash),
        [h1],
      );
      // a hit reads the cache instead of the files: a planted digest comes back
      const key = Object.keys(cache)[0];
      fs.writeFileSync(file, JSON.stringify({ [key]: { ...cache[key], hash: 'f'.repeat(64) } }));
      assert.equal(weightsHash(cfg, [w]), 'f'.repeat(64));
      // rewritten in place, same size, mtime put back: the ctime still tells, so it is hashed again
      const { atime, mtime } = fs.statSync(w);
      fs.writeFileSync(w, bytes(3 << 20, 2));
      fs.utimesSync(w, atime, mtime);
      const h2 = weightsHash(cfg, [w]);
      assert.equal(h2, sha(fs.readFileSync(cfg), fs.readFileSync(w)));
      assert.notEqual(h2, h1);
      // just written: not remembered (a second same-size write within the clock's step could keep the stamps)
      assert.ok(!fs.readFileSync(file, 'utf8').includes(h2), 'a file changed just now was remembered');
      // the other config gives another digest, from the same weights
      fs.writeFileSync(cfg, '{"model_type":"llama","x":1}');
      assert.equal(weightsHash(cfg, [w]), sha(fs.readFileSync(cfg), fs.readFileSync(w)));
      // a damaged cache is ignored (and replaced on the next remembered hash)
      fs.writeFileSync(file, '{not json');
      assert.equal(weightsHash(cfg, [w]), sha(fs.readFileSync(cfg), fs.readFileSync(w)));
    });
    await withCache('off', async () => {
      assert.equal(hashCacheFile(), undefined);
      assert.equal(weightsHash(cfg, [w]), sha(fs.readFileSync(cfg), fs.readFileSync(w)));
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('weights hash on a worker thread: the same digest over several files; a missing file rejects', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-hash-'));
  try {
    const cfg = path.join(root, 'config.json');
    fs.writeFileSync(cfg, '{}');
    const files = [1, 2].map((i) => path.join(root, `model-0000${i}.safetensors`));
    files.forEach((f, i) => fs.writeFileSync(f, bytes((70 << 20) + i, i))); // past one 64 MiB chunk
    await withCache('off', async () => {
      const job = startWeightsHash(cfg, files);
      assert.equal(await job.hash, weightsHash(cfg, files));
      assert.equal(await job.hash, sha(fs.readFileSync(cfg), ...files.map((f) => fs.readFileSync(f))));
      const gone = startWeightsHash(cfg, files);
      fs.rmSync(files[1]);
      await assert.rejects(gone.hash, /ENOENT|no such file/);
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
