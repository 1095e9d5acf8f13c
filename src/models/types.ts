import type * as tf from '@tensorflow/tfjs-core';

/** What every architecture tells the rest of cramlab about itself (normalised from config.json). */
export interface ModelInfo {
  /** HF `model_type`: llama, gpt_neox, mamba, opt, olmo */
  modelType: string;
  hiddenSize: number;
  /** Width of the input embeddings, i.e. of a [mem] vector (OPT-350m: word_embed_proj_dim). */
  memDim: number;
  vocabSize: number;
  numLayers: number;
  /** Longest sequence the model takes (mem + text); Infinity for recurrent models. */
  maxPositions: number;
  bosTokenId?: number;
  eosTokenIds: number[];
  /** The config.json as read. */
  raw: Record<string, any>;
}

/**
 * A frozen causal LM. The forward pass starts from input embeddings because [mem] vectors
 * live in embedding space; gradients flow back to those embeddings through tf.grad.
 */
export interface CausalLM {
  readonly info: ModelInfo;
  /** Token embeddings of `ids` ([B, T] int32) → [B, T, memDim]. */
  embed(ids: tf.Tensor2D): tf.Tensor3D;
  /** Logits [B, T, V] for input embeddings [B, T, memDim] at positions 0..T-1. */
  forward(inputsEmbeds: tf.Tensor3D): tf.Tensor3D;
  /** The input embedding matrix [V, memDim]: the std of its entries scales the mem init. */
  readonly embedMatrix: tf.Tensor2D;
  /** Number of trainable parameters in the checkpoint (for FLOP counts and cards). */
  readonly numParams: number;
  dispose(): void;
}

export class ModelError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'ModelError';
  }
}

/** ModelInfo as config.json states it; an architecture overrides only what differs (OPT's memDim, Mamba's context). */
export function infoFromConfig(cfg: Record<string, any>, overrides: Partial<ModelInfo> = {}): ModelInfo {
  const eos = cfg.eos_token_id;
  return {
    modelType: cfg.model_type,
    hiddenSize: cfg.hidden_size,
    memDim: cfg.hidden_size,
    vocabSize: cfg.vocab_size,
    numLayers: cfg.num_hidden_layers,
    maxPositions: cfg.max_position_embeddings ?? Infinity,
    bosTokenId: cfg.bos_token_id ?? undefined,
    eosTokenIds: eos == null ? [] : Array.isArray(eos) ? eos : [eos],
    raw: cfg,
    ...overrides,
  };
}

/** One checkpoint tensor as a file reader gives it (io/safetensors.ts), widened to 32 bits. */
export interface RawTensor {
  dtype: string;
  shape: number[];
  /** The values (a file's tensor reads them on first access and keeps them). */
  data: Float32Array | Int32Array;
  /** A file's tensor: read the values afresh, kept by no one (one tensor in memory at a time). */
  read?(): Float32Array | Int32Array;
  /** A file's tensor: where its bytes are (the native engine reads them itself, as stored). */
  location?: TensorLocation;
}

/** A tensor's bytes in a file: `offset` from the file's start; `size` the file's length when its header was read. */
export interface TensorLocation {
  file: string;
  offset: number;
  size: number;
}
