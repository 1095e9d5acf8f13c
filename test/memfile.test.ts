// .cram mem files: exact round trip of vectors and metadata, refusal of another model or tokenizer,
// and clear errors for files that are not mem files.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSafetensors } from '../src/io/safetensors';
import { CRAMLAB_VERSION, idsSha256, loadMem, MemFileError, saveMem, type MemFile } from '../src/mem-file';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-mem-'));
const ids = [1, 400, 23, 99, 7];
const mem: MemFile = {
  vectors: Float32Array.from({ length: 2 * 8 }, (_, i) => Math.fround(Math.sin(i) * 1e-3 + i)),
  K: 2,
  memDim: 8,
  tokens: ids.length,
  firstId: 1,
  model: 'org/model',
  weightsHash: 'a'.repeat(64),
  tokenizerHash: 'b'.repeat(64),
  idsSha256: idsSha256(ids),
  textSha256: 'c'.repeat(64),
  cramlab: CRAMLAB_VERSION,
  extra: { accuracy: '1', steps: '42' },
};
const me = { id: 'org/model', weightsHash: 'a'.repeat(64), tokenizer: { hash: 'b'.repeat(64) } };

test('saveMem/loadMem round-trip the vectors bit for bit and every field', () => {
  const file = path.join(tmp, 'x.cram');
  saveMem(file, mem);
  const back = loadMem(file, me);
  assert.deepEqual(back.vectors, mem.vectors);
  assert.deepEqual({ ...back, vectors: null }, { ...mem, vectors: null });
  assert.equal(
    CRAMLAB_VERSION,
    JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version,
  );
  assert.ok(fs.statSync(file).size < 2000, 'a mem file stays small');
  assert.notEqual(idsSha256([1, 2]), idsSha256([1, 2, 3]));
});

test('a mem file made for another model or tokenizer is refused with a clear message', () => {
  const file = path.join(tmp, 'y.cram');
  saveMem(file, mem);
  assert.throws(
    () => loadMem(file, { ...me, id: 'other/model', weightsHash: 'd'.repeat(64) }),
    (e: Error) => e instanceof MemFileError && /made with model 'org\/model'.*not with 'other\/model'/.test(e.message),
  );
  assert.throws(() => loadMem(file, { ...me, tokenizer: { hash: 'e'.repeat(64) } }), /another tokenizer/);
});

test('files that are not mem files fail with one line naming the problem', () => {
  assert.throws(() => loadMem(path.join(tmp, 'missing.cram')), /no such mem file/);
  const plain = path.join(tmp, 'plain.safetensors');
  writeSafetensors(plain, { w: { shape: [2], data: new Float32Array(2) } });
  assert.throws(() => loadMem(plain), /not a cramlab mem file/);
  const cut = path.join(tmp, 'cut.cram');
  saveMem(cut, mem);
  fs.writeFileSync(cut, fs.readFileSync(cut).subarray(0, 100));
  assert.throws(() => loadMem(cut), /truncated|too short|out of bounds|header/);
  assert.throws(() => saveMem(path.join(tmp, 'bad.cram'), { ...mem, K: 3 }), /16 values for K=3/);
});
