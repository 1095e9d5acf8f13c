// A checkpoint file past 2 GiB (fs.readFileSync's limit; meta-llama/Llama-3.2-1B is one 2.47 GB file)
// loads by byte range, hashes in chunks and generates on the native engine. The file is sparse: the
// header and the small tensors are written, the layer weights are a hole (zeros, finite), so the
// disk holds a few MB while every byte is still read and hashed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { loadModel, weightsHashOf } from '../src/io/checkpoint';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors';
import { Weights } from '../src/models/weights';
import { greedyGenerate } from '../src/generate';
import { nativeAddon } from '../src/native/index';
import { NativeModel } from '../src/native/model';
import { sharedModel } from './helpers/shared';

// Llama, d = 1024, 19 layers of 4·d² + 3·d·8192 floats: 2.23 GB of F32 layer weights, each tensor
// ≤ 32 MiB; the embedding (the one tfjs copy NativeModel keeps) is 512 × 1024 = 2 MiB.
const D = 1024;
const FFN = 8192;
const LAYERS = 19;
const V = 512; // stories260K's tokenizer
const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: D,
  intermediate_size: FFN,
  num_hidden_layers: LAYERS,
  num_attention_heads: 8,
  num_key_value_heads: 8,
  head_dim: D / 8,
  vocab_size: V,
  max_position_embeddings: 32,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  hidden_act: 'silu',
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'float32',
};

/** Write the folder: written tensors (embedding, norms) first, then the layer weights as a hole. */
function writeLarge(dir: string): number {
  const written: [string, number[], Float32Array][] = [];
  let s = 12345;
  const embed = new Float32Array(V * D).map(
    () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), (s / 2 ** 32 - 0.5) * 0.1),
  );
  written.push(['model.embed_tokens.weight', [V, D], embed]);
  const ones = new Float32Array(D).fill(1);
  written.push(['model.norm.weight', [D], ones]);
  for (let l = 0; l < LAYERS; l++) {
    written.push([`model.layers.${l}.input_layernorm.weight`, [D], ones]);
    written.push([`model.layers.${l}.post_attention_layernorm.weight`, [D], ones]);
  }
  const holes: [string, number[]][] = [];
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}.`;
    for (const n of ['q', 'k', 'v', 'o']) holes.push([`${p}self_attn.${n}_proj.weight`, [D, D]]);
    holes.push(
      [`${p}mlp.gate_proj.weight`, [FFN, D]],
      [`${p}mlp.up_proj.weight`, [FFN, D]],
      [`${p}mlp.down_proj.weight`, [D, FFN]],
    );
  }
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, shape, data] of written) {
    header[name] = { dtype: 'F32', shape, data_offsets: [off, off + data.byteLength] };
    off += data.byteLength;
  }
  const writtenEnd = off;
  for (const [name, shape] of holes) {
    const n = shape[0] * shape[1] * 4;
    header[name] = { dtype: 'F32', shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8); // data 8-aligned, as HF writes it
  const file = path.join(dir, 'model.safetensors');
  const fd = fs.openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    fs.writeSync(fd, len, 0, 8, 0);
    fs.writeSync(fd, Buffer.from(json), 0, json.length, 8);
    let pos = 8 + json.length;
    for (const [, , data] of written) {
      fs.writeSync(fd, new Uint8Array(data.buffer), 0, data.byteLength, pos);
      pos += data.byteLength;
    }
    assert.equal(pos, 8 + json.length + writtenEnd);
    fs.ftruncateSync(fd, 8 + json.length + off);
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(CONFIG));
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }));
  return fs.statSync(file).size;
}

const FILE_BYTES = 2.3e9; // a little over what writeLarge makes (2.23 GB)
const stories = sharedModel('stories260K');
function skipReason(): string | undefined {
  if (stories.skip) return stories.skip;
  if (!nativeAddon()) return 'native engine not built (npm run build:native)';
  const st = fs.statfsSync(os.tmpdir());
  const free = st.bavail * st.bsize;
  if (free < FILE_BYTES + 2 ** 30)
    return `needs ${(FILE_BYTES / 2 ** 30 + 1).toFixed(1)} GiB free in ${os.tmpdir()} (in case it is not sparse), has ${(free / 2 ** 30).toFixed(1)} GiB`;
  // One fp32 native copy (2.2 GB) + one tensor in flight + the process: ask for 2x that.
  if (os.totalmem() < 8 * 2 ** 30)
    return `needs 8 GiB of RAM, the machine has ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`;
  if (os.freemem() < 4.5 * 2 ** 30)
    return `needs 4.5 GiB of free RAM, ${(os.freemem() / 2 ** 30).toFixed(1)} GiB free now`;
  return undefined;
}

test(
  'a > 2 GiB safetensors file loads by byte range and generates natively',
  { skip: skipReason(), timeout: 180_000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-large-'));
    try {
      for (const f of ['tokenizer.json', 'tokenizer_config.json'])
        fs.copyFileSync(path.join(stories.dir!, f), path.join(dir, f));
      const size = writeLarge(dir);
      assert.ok(size > 2 ** 31, `file is ${size} bytes, past 2 GiB`);
      const t0 = performance.now();
      const { model, weightsHash } = await loadModel(dir);
      const tLoad = performance.now() - t0;
      try {
        assert.ok(model instanceof NativeModel, `native engine model, got ${model.constructor.name}`);
        assert.ok(model.numParams * 4 > 2 ** 31, `${model.numParams} params`);
        // Zero projections leave the residual stream = the token's embedding; with tied embeddings the
        // nearest row is the token itself, so greedy decoding repeats the last prompt token.
        const out = await greedyGenerate(model, [1, 100, 37], { maxNewTokens: 3, eosTokenIds: [] });
        assert.deepEqual(out, [37, 37, 37]);
        assert.equal(weightsHashOf(dir), weightsHash, 'weightsHashOf (chunked) agrees with loadModel');
        console.log(
          `${(size / 1e9).toFixed(2)} GB file: loadModel ${(tLoad / 1000).toFixed(1)} s, total ${((performance.now() - t0) / 1000).toFixed(1)} s, maxRSS ${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)} GiB`,
        );
      } finally {
        model.dispose();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('a file tensor is read by its byte range on use, afresh each time, and refused once the file changed', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-lazy-'));
  try {
    const file = path.join(dir, 'm.safetensors');
    const a = Float32Array.from([1, -2, 3.5, 0.25]);
    writeSafetensors(file, { a: { shape: [2, 2], data: a }, b: { shape: [3], data: Float32Array.from([7, 8, 9]) } });
    const { tensors } = readSafetensors(file);
    const t = tensors.get('a')!;
    const [r1, r2] = [t.read!(), t.read!()];
    assert.notEqual(r1, r2, 'read() hands out a fresh array (kept by no one)');
    assert.deepEqual(Array.from(r1), Array.from(a));
    assert.deepEqual(Array.from(tensors.get('b')!.data), [7, 8, 9]);
    // Weights.lazyArrays: one getter per tensor, each access reads and checks again; given arrays as they are.
    const w = new Weights(tensors, 'm');
    const lazy = w.lazyArrays({ a: [2, 2], b: [3] }, { b: Float32Array.from([1, 1, 1]) });
    assert.deepEqual(Object.keys(lazy), ['a', 'b']);
    assert.notEqual(lazy.a, lazy.a);
    assert.deepEqual(Array.from(lazy.b), [1, 1, 1]);
    assert.throws(
      () => new Weights(tensors, 'm').lazyArrays({ a: [4] }).a,
      /tensor 'a' has shape \[2,2\] but the config implies \[4\]/,
    );
    fs.appendFileSync(file, Buffer.alloc(4));
    assert.throws(() => t.read!(), /changed since/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'weightsHashOf is still sha256 over config.json and the whole weight file (streamed in chunks)',
  { skip: stories.skip },
  () => {
    const dir = stories.dir!;
    const old = createHash('sha256')
      .update(fs.readFileSync(path.join(dir, 'config.json')))
      .update(fs.readFileSync(path.join(dir, 'model.safetensors')))
      .digest('hex');
    assert.equal(weightsHashOf(dir), old);
  },
);
