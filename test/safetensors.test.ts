// The safetensors reader: dtypes widened exactly, and every malformed file rejected with a named reason.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-st-'));

/** Build a file by hand from a header object and raw data bytes (independent of writeSafetensors). */
function handMade(header: Record<string, unknown>, data: Buffer, headerLenOverride?: number): string {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLenOverride ?? json.length));
  const file = path.join(tmp(), 'x.safetensors');
  fs.writeFileSync(file, Buffer.concat([len, json, data]));
  return file;
}

test('F32 and I32 round-trip through the writer, with metadata', () => {
  const file = path.join(tmp(), 'rt.safetensors');
  const a = Float32Array.from([1.5, -2, 3.25, 0, 1e-8, -7]);
  const b = Int32Array.from([7, -3]);
  writeSafetensors(file, { a: { shape: [2, 3], data: a }, b: { shape: [2], data: b } }, { kind: 'test' });
  const { tensors, metadata } = readSafetensors(file);
  assert.deepEqual(Array.from(tensors.get('a')!.data), Array.from(a));
  assert.deepEqual(tensors.get('a')!.shape, [2, 3]);
  assert.deepEqual(Array.from(tensors.get('b')!.data), [7, -3]);
  assert.equal(metadata.kind, 'test');
  // The data section starts 8-aligned, as the format recommends.
  const n = Number(fs.readFileSync(file).readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0);
});

test('F16 and BF16 are widened to the exact float32 values', () => {
  // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal 2^-24 = 0x0001.
  const f16 = Buffer.alloc(8);
  [0x3c00, 0xc000, 0x7bff, 0x0001].forEach((v, i) => f16.writeUInt16LE(v, 2 * i));
  // BF16: the top 16 bits of float32: 1.0 = 0x3F80, -0.5 = 0xBF00, 3.140625 = 0x4049.
  const bf16 = Buffer.alloc(6);
  [0x3f80, 0xbf00, 0x4049].forEach((v, i) => bf16.writeUInt16LE(v, 2 * i));
  const file = handMade(
    {
      h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] },
      b: { dtype: 'BF16', shape: [3], data_offsets: [8, 14] },
      __metadata__: { format: 'pt' },
    },
    Buffer.concat([f16, bf16]),
  );
  const { tensors } = readSafetensors(file);
  assert.deepEqual(Array.from(tensors.get('h')!.data), [1, -2, 65504, 2 ** -24]);
  assert.deepEqual(Array.from(tensors.get('b')!.data), [1, -0.5, 3.140625]);
});

test('malformed files get errors that name the problem', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  assert.throws(
    () => readSafetensors(handMade(ok, Buffer.alloc(4))),
    /tensor 'w' ends at byte 8 but the data is 4 bytes \(truncated file\?\)/,
  );
  assert.throws(
    () => readSafetensors(handMade(ok, Buffer.alloc(8), 1e12)),
    /header length 1000000000000 is out of bounds/,
  );
  assert.throws(
    () => readSafetensors(handMade(ok, Buffer.alloc(8), 500)),
    /header says 500 bytes but the file has only/,
  );
  assert.throws(
    () => readSafetensors(handMade({ w: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, Buffer.alloc(8))),
    /tensor 'w' has unknown dtype 'Q4'/,
  );
  assert.throws(
    () => readSafetensors(handMade({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(8))),
    /tensor 'w' holds 8 bytes but F32\[3\] needs 12/,
  );
  assert.throws(
    () => readSafetensors(handMade({ w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, Buffer.alloc(8))),
    /invalid offsets/,
  );
  assert.throws(
    () => readSafetensors(handMade({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, Buffer.alloc(8))),
    /invalid shape/,
  );
  const garbage = path.join(tmp(), 'g.safetensors');
  fs.writeFileSync(garbage, Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{oops')]));
  assert.throws(() => readSafetensors(garbage), /header is not valid JSON/);
  assert.throws(() => readSafetensors('/nonexistent.safetensors'), /file not found/);
});
