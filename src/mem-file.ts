// .cram files: [mem] vectors in a small safetensors file, with what is needed to decode them and to
// refuse the wrong model: model id, weights hash, tokenizer hash, K, token count, first token,
// sha256 of the ids (and of the text when known), cramlab version.
// Stored at a chosen precision (precision.ts): mem as F32, BF16 or F16, or I8 codes with a float32
// scale per vector in mem_scale; loadMem gives back the float32 values the stored numbers stand for.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { clean } from './io/files';
import { readSafetensors, writeSafetensors, type WriteTensor } from './io/safetensors';
import { bf16Bits, dequantise, f16Bits, quantise, type Precision } from './precision';

/** Precisions a .cram file can be written at. */
export const FILE_PRECISIONS = ['fp32', 'bf16', 'fp16', 'int8'] as const satisfies readonly Precision[];
export type FilePrecision = (typeof FILE_PRECISIONS)[number];

export interface MemFile {
  vectors: Float32Array;
  K: number;
  memDim: number;
  tokens: number;
  firstId: number;
  model: string;
  weightsHash: string;
  tokenizerHash: string;
  idsSha256: string;
  textSha256?: string;
  cramlab: string;
  /** Storage precision of the vectors (absent: fp32): saveMem rounds them to it, loadMem reads them back. */
  precision?: FilePrecision;
  /** Free-form extras (accuracy, steps, seconds, …), stored as strings. */
  extra?: Record<string, string>;
}

export class MemFileError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'MemFileError';
  }
}

export const CRAMLAB_VERSION: string = require('../package.json').version;

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
export const idsSha256 = (ids: number[]): string => sha256(JSON.stringify(ids));

const REQUIRED = [
  'K',
  'mem_dim',
  'tokens',
  'first_id',
  'model',
  'weights_sha256',
  'tokenizer_sha256',
  'ids_sha256',
  'cramlab',
];

export function saveMem(file: string, m: MemFile): void {
  if (m.vectors.length !== m.K * m.memDim)
    throw new MemFileError(`saveMem: ${m.vectors.length} values for K=${m.K} × ${m.memDim}`);
  const meta: Record<string, string> = {
    format: 'cramlab-mem',
    K: String(m.K),
    mem_dim: String(m.memDim),
    tokens: String(m.tokens),
    first_id: String(m.firstId),
    model: m.model,
    weights_sha256: m.weightsHash,
    tokenizer_sha256: m.tokenizerHash,
    ids_sha256: m.idsSha256,
    cramlab: m.cramlab,
  };
  if (m.textSha256) meta.text_sha256 = m.textSha256;
  const precision = m.precision ?? 'fp32';
  if (!(FILE_PRECISIONS as readonly string[]).includes(precision))
    throw new MemFileError(`saveMem: precision '${precision}' is not one of ${FILE_PRECISIONS.join(', ')}`);
  meta.precision = precision;
  for (const [k, v] of Object.entries(m.extra ?? {})) meta[`x_${k}`] = String(v);
  writeSafetensors(file, memTensors(m.vectors, m.K, m.memDim, precision), meta);
}

function memTensors(v: Float32Array, K: number, d: number, p: FilePrecision): Record<string, WriteTensor> {
  const shape = [K, d];
  switch (p) {
    case 'fp32':
      return { mem: { shape, data: v } };
    case 'bf16':
      return { mem: { shape, data: Uint16Array.from(v, bf16Bits), dtype: 'BF16' } };
    case 'fp16':
      return { mem: { shape, data: Uint16Array.from(v, f16Bits), dtype: 'F16' } };
    case 'int8': {
      const { codes, scales } = quantise(v, K, 'int8');
      return { mem: { shape, data: codes }, mem_scale: { shape: [K], data: scales } };
    }
  }
}

/**
 * Save the vectors that decode `ids` (the first `ids.length` tokens of `text`) for the loaded model:
 * the identity fields (model, hashes, first token, ids) filled in one place for every CLI writer.
 */
export function saveCram(
  file: string,
  who: { id: string; weightsHash: string; tokenizer: { hash: string }; model: { info: { memDim: number } } },
  c: {
    vectors: Float32Array;
    K: number;
    ids: number[];
    text: string;
    precision?: FilePrecision;
    extra: Record<string, string>;
  },
): void {
  saveMem(file, {
    precision: c.precision,
    vectors: c.vectors,
    K: c.K,
    memDim: who.model.info.memDim,
    tokens: c.ids.length,
    firstId: c.ids[0],
    model: who.id,
    weightsHash: who.weightsHash,
    tokenizerHash: who.tokenizer.hash,
    idsSha256: idsSha256(c.ids),
    textSha256: sha256(c.text),
    cramlab: CRAMLAB_VERSION,
    extra: { ids: JSON.stringify(c.ids), ...c.extra }, // the ids: decode --check says where a decoding differs
  });
}

export interface ModelIdentity {
  id: string;
  weightsHash: string;
  tokenizer: { hash: string };
  /** With it, a token count beyond the model's context (or 1e6 without one) is refused. */
  model?: { info: { maxPositions: number } };
}

/** Token cap for models without a position limit (recurrent ones). */
export const MAX_MEM_TOKENS = 1_000_000;

/** Read a .cram file; with `model`, refuse vectors made for different weights or another tokenizer. */
export function loadMem(file: string, model?: ModelIdentity): MemFile {
  if (!fs.existsSync(file)) throw new MemFileError(`${file}: no such mem file`);
  let read;
  try {
    read = readSafetensors(file);
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new MemFileError(
      `${file}: not a cramlab mem file (${msg.startsWith(file) ? msg.slice(file.length).replace(/^[:\s]+/, '') : msg})`,
    );
  }
  const { tensors, metadata } = read;
  const missing = REQUIRED.filter((k) => !(k in metadata));
  const t = tensors.get('mem');
  if (metadata.format !== 'cramlab-mem' || missing.length || !t) {
    throw new MemFileError(
      `${file}: not a cramlab mem file${missing.length ? ` (missing ${missing.join(', ')})` : ''}`,
    );
  }
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) if (k.startsWith('x_')) extra[k.slice(2)] = v;
  const precision = (metadata.precision ?? 'fp32') as FilePrecision;
  if (!(FILE_PRECISIONS as readonly string[]).includes(precision))
    throw new MemFileError(`${file}: precision '${precision}' is not one of ${FILE_PRECISIONS.join(', ')}`);
  const scale = tensors.get('mem_scale');
  if (precision === 'int8' && (t.dtype !== 'I8' || !scale || scale.data.length !== Number(metadata.K)))
    throw new MemFileError(
      `${file}: an int8 mem file needs I8 codes and one mem_scale per vector: the file is damaged`,
    );
  const m: MemFile = {
    vectors: precision === 'int8' ? dequantise(t.data, scale!.data) : (t.data as Float32Array),
    ...(precision !== 'fp32' ? { precision } : {}),
    K: Number(metadata.K),
    memDim: Number(metadata.mem_dim),
    tokens: Number(metadata.tokens),
    firstId: Number(metadata.first_id),
    model: metadata.model,
    weightsHash: metadata.weights_sha256,
    tokenizerHash: metadata.tokenizer_sha256,
    idsSha256: metadata.ids_sha256,
    textSha256: metadata.text_sha256,
    cramlab: metadata.cramlab,
    extra,
  };
  if (t.shape[0] !== m.K || t.shape[1] !== m.memDim)
    throw new MemFileError(`${file}: mem tensor is [${t.shape}] but the metadata says K=${m.K}, width ${m.memDim}`);
  checkContents(file, m, model?.model?.info.maxPositions);
  if (model) checkModel(file, m, model);
  return m;
}

// What a damaged or tampered file shows: vectors that are not numbers, a token count no model could
// decode, a first id or hash that is not one.
function checkContents(file: string, m: MemFile, maxPositions?: number): void {
  const bad = m.vectors.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0)
    throw new MemFileError(
      `${file}: mem vector ${Math.floor(bad / m.memDim)} holds ${m.vectors[bad]} at [${bad % m.memDim}]: the file is damaged`,
    );
  if (!Number.isInteger(m.firstId) || m.firstId < 0)
    throw new MemFileError(`${file}: first token id '${m.firstId}' is not a token id: the file is damaged`);
  if (!Number.isInteger(m.tokens) || m.tokens < 2)
    throw new MemFileError(
      `${file}: token count '${m.tokens}' is not a text of at least 2 tokens: the file is damaged`,
    );
  const cap = maxPositions === undefined || !Number.isFinite(maxPositions) ? MAX_MEM_TOKENS : maxPositions - m.K;
  if (m.tokens > cap)
    throw new MemFileError(
      `${file}: token count ${m.tokens} exceeds ${maxPositions !== undefined && Number.isFinite(maxPositions) ? `the model's context (${maxPositions} positions less K=${m.K})` : `the limit of ${cap}`}: the file is damaged`,
    );
  if (!/^[0-9a-f]{64}$/.test(m.idsSha256))
    throw new MemFileError(`${file}: ids_sha256 is not a sha256 hash: the file is damaged`);
}

export function checkModel(file: string, m: MemFile, model: ModelIdentity): void {
  if (m.weightsHash !== model.weightsHash) {
    throw new MemFileError(
      `${file} was made with model '${clean(m.model)}' (weights ${m.weightsHash.slice(0, 12)}…), not with '${model.id}' (weights ${model.weightsHash.slice(0, 12)}…): its vectors mean nothing to another model`,
    );
  }
  if (m.tokenizerHash !== model.tokenizer.hash) {
    throw new MemFileError(
      `${file} was made with another tokenizer (${m.tokenizerHash.slice(0, 12)}…) than '${model.id}' has (${model.tokenizer.hash.slice(0, 12)}…)`,
    );
  }
}
