// How many bits other compressors need for a text, next to what [mem] vectors cost:
//   gzip (level 9), brotli (quality 11), xz (preset 9, liblzma via lzma-native)   on the text's UTF-8
//   arithmetic coding under the model alone (no mem): the real code, decodable back to the ids
//   the model's cross-entropy in bits (the ideal the coder approaches) and the coder's overhead
//   the raw mem: K·d numbers at 16 and 32 bits, and text tokens per vector
// The first token (BOS) is given to the arithmetic coder as it is to mem decoding; N-1 are coded.
import * as zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../models/types';
import { ModelError } from '../models/types';
import { ArithDecoder, ArithEncoder, interval, MAX_TOTAL, quantise, symbolAt, type ArithCode } from './arith';

export interface Codec {
  name: 'gzip' | 'brotli' | 'xz';
  compress(data: Buffer): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

// lzma-native ships no types: the two calls used here (they return promises without a callback).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const lzma: {
  compress(b: Buffer, o: { preset: number }): Promise<Buffer>;
  decompress(b: Buffer): Promise<Buffer>;
} = require('lzma-native');

export const CODECS: Codec[] = [
  { name: 'gzip', compress: async (d) => zlib.gzipSync(d, { level: 9 }), decompress: async (d) => zlib.gunzipSync(d) },
  {
    name: 'brotli',
    compress: async (d) =>
      zlib.brotliCompressSync(d, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: d.length,
        },
      }),
    decompress: async (d) => zlib.brotliDecompressSync(d),
  },
  { name: 'xz', compress: (d) => lzma.compress(d, { preset: 9 }), decompress: (d) => lzma.decompress(d) },
];

/** Compressed bits of `text` (UTF-8) per codec, each checked by decompressing it back. */
export async function classicBits(text: string): Promise<Record<Codec['name'], number>> {
  const raw = Buffer.from(text, 'utf8');
  const out = {} as Record<Codec['name'], number>;
  for (const c of CODECS) {
    const packed = await c.compress(raw);
    if (!(await c.decompress(packed)).equals(raw)) throw new Error(`${c.name} did not give the text back`);
    out[c.name] = packed.length * 8;
  }
  return out;
}

/** Frequencies of the model's next token after `prefix`: one forward of exactly these ids, so encoder and decoder compute the same numbers. */
function nextFreqs(model: CausalLM, prefix: number[]): { probs: Float32Array; freq: Uint32Array } {
  const probs = tf.tidy(() => {
    const logits = model.forward(model.embed(tf.tensor2d([prefix], [1, prefix.length], 'int32')));
    const T = logits.shape[1];
    return tf.softmax(tf.reshape(tf.slice(logits, [0, T - 1, 0], [1, 1, -1]), [-1]));
  });
  const p = probs.dataSync() as Float32Array;
  probs.dispose();
  return { probs: p, freq: quantise(p, MAX_TOTAL) };
}

function checkIds(model: CausalLM, ids: number[]): void {
  if (ids.length < 1) throw new ModelError('nothing to code: no tokens');
  if (ids.length > model.info.maxPositions)
    throw new ModelError(
      `text of ${ids.length} tokens is longer than the model's context (${model.info.maxPositions})`,
    );
  const bad = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= model.info.vocabSize);
  if (bad !== undefined) throw new ModelError(`token id ${bad} is outside the vocabulary [0, ${model.info.vocabSize})`);
}

export interface ModelCode extends ArithCode {
  /** Tokens coded (N-1: the first is given). */
  coded: number;
  /** The model's cross-entropy of the coded tokens, in bits (float probabilities). */
  ceBits: number;
  /** -log2 of the quantised probabilities the coder used: what an ideal coder would need. */
  idealBits: number;
}

/** Arithmetic-code ids[1..] under the model's next-token distributions (ids[0] is given). */
export function arithEncode(model: CausalLM, ids: number[]): ModelCode {
  checkIds(model, ids);
  const enc = new ArithEncoder();
  let ceBits = 0;
  let idealBits = 0;
  for (let t = 1; t < ids.length; t++) {
    const { probs, freq } = nextFreqs(model, ids.slice(0, t));
    const [lo, hi] = interval(freq, ids[t]);
    enc.encode(lo, hi, MAX_TOTAL);
    ceBits -= Math.log2(probs[ids[t]]);
    idealBits -= Math.log2((hi - lo) / MAX_TOTAL);
  }
  return { ...enc.finish(), coded: ids.length - 1, ceBits, idealBits };
}

/** The ids back from a code: firstId, then `tokens - 1` tokens read under the same model. */
export function arithDecode(model: CausalLM, code: ArithCode, firstId: number, tokens: number): number[] {
  checkIds(model, [firstId]);
  if (!Number.isInteger(tokens) || tokens < 1)
    throw new ModelError(`token count must be a positive integer, got ${tokens}`);
  const dec = new ArithDecoder(code);
  const ids = [firstId];
  while (ids.length < tokens) {
    const { freq } = nextFreqs(model, ids);
    const { s, lo, hi } = symbolAt(freq, dec.target(MAX_TOTAL));
    dec.consume(lo, hi, MAX_TOTAL);
    ids.push(s);
  }
  return ids;
}

/** Raw size of K mem vectors of width d. */
export function memBits(K: number, d: number): { fp16: number; fp32: number } {
  return { fp16: K * d * 16, fp32: K * d * 32 };
}

export interface CompressionRow {
  id?: string;
  tokens: number;
  /** Characters (code points) and UTF-8 bytes of the text the ids spell. */
  chars: number;
  bytes: number;
  gzipBits: number;
  brotliBits: number;
  xzBits: number;
  /** Model cross-entropy without mem, over the N-1 predicted tokens. */
  ceBits: number;
  /** The arithmetic code's real length, and its excess over ceBits (≈ 2 bits; below 0 when many tokens
   *  are improbable, since quantise() gives every symbol at least 1/2^20 of the mass). */
  arithBits: number;
  arithOverheadBits: number;
  K: number;
  memFp16Bits: number;
  memFp32Bits: number;
  tokensPerVector: number;
  /** Bits per character of each. */
  bpc: Record<'gzip' | 'brotli' | 'xz' | 'ce' | 'arith' | 'memFp16' | 'memFp32', number>;
}

/** Every size above for one text (`text` = what the ids spell, for the byte compressors). */
export async function compressionRow(
  model: CausalLM,
  ids: number[],
  text: string,
  K = 1,
  id?: string,
): Promise<CompressionRow> {
  const classic = await classicBits(text);
  const code = arithEncode(model, ids);
  const back = arithDecode(model, code, ids[0], ids.length);
  if (back.some((x, i) => x !== ids[i])) throw new Error('the arithmetic code did not decode back to the ids');
  const mem = memBits(K, model.info.memDim);
  const chars = [...text].length;
  const per = (bits: number) => bits / chars;
  return {
    id,
    tokens: ids.length,
    chars,
    bytes: Buffer.byteLength(text, 'utf8'),
    gzipBits: classic.gzip,
    brotliBits: classic.brotli,
    xzBits: classic.xz,
    ceBits: code.ceBits,
    arithBits: code.bits,
    arithOverheadBits: code.bits - code.ceBits,
    K,
    memFp16Bits: mem.fp16,
    memFp32Bits: mem.fp32,
    tokensPerVector: ids.length / K,
    bpc: {
      gzip: per(classic.gzip),
      brotli: per(classic.brotli),
      xz: per(classic.xz),
      ce: per(code.ceBits),
      arith: per(code.bits),
      memFp16: per(mem.fp16),
      memFp32: per(mem.fp32),
    },
  };
}
