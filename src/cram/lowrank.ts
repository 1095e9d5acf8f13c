// Low-rank mem (Tarasov et al. 2026, `e = W z + b`): each of a text's K vectors is W·z_j + b and only
// z (K·rank numbers per text) is trained; W [memDim, rank] and b [memDim] stay fixed, drawn per text to
// the embedding's statistics: W = randn·std(E)/√rank (so W·z has E's spread for z ~ randn), b = E's mean
// row. The gradient to z is the chain rule through mem, dz_j = Wᵀ·dL/dmem_j: tf.grad through the matMul
// below, dL/dmem from the model's own backward (a NativeModel's is the native input-gradient).
// The native loop (native/src/cram.c) does the same in C, and can train W and b too (`train`: dW =
// dmemᵀ·z, db = Σ_j dmem_j) and share one W, b by the whole batch (`shared`: their gradients summed).
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../models/types';
import { randn } from '../random';
import { embeddingMeanRow } from './embedding';

export interface LowRank {
  rank: number;
  /** Per text (one for all when shared): W, memDim × rank row-major. */
  W: Float32Array[];
  /** E's mean row, memDim values (the same for every text). */
  b: Float32Array;
  /** Per text: the initial z, K × rank row-major. */
  z0: Float32Array[];
  /** W and b trained along with z (native engine). */
  train: boolean;
  /** One W, b for the whole batch (drawn from the first text's seed). */
  shared: boolean;
}

export interface LowRankOptions {
  train?: boolean;
  shared?: boolean;
}

/** Text i's W. */
export const basisOf = (lr: LowRank, i: number): Float32Array => lr.W[lr.shared ? 0 : i];

/** Numbers trained per text: K·rank for z, plus W and b (memDim·rank + memDim) when trained, split over the batch when shared. */
export function lowRankTrainable(lr: LowRank, K: number, memDim: number, texts: number): number {
  const wb = lr.train ? (memDim * lr.rank + memDim) / (lr.shared ? texts : 1) : 0;
  return K * lr.rank + wb;
}

const W_SEED = 0x9e3779b9; // W's stream apart from z's for the same text seed

/** The fixed W, b and the initial z of each text (seeds as cram()'s: one per text; std = cram's embeddingStd). */
export function lowRankBasis(
  model: CausalLM,
  K: number,
  rank: number,
  seeds: number[],
  std: number,
  o: LowRankOptions = {},
): LowRank {
  const shared = o.shared ?? false;
  const d = model.info.memDim;
  return {
    rank,
    W: (shared ? seeds.slice(0, 1) : seeds).map((s) => randn(d * rank, (s ^ W_SEED) >>> 0, std / Math.sqrt(rank))),
    b: embeddingMeanRow(model),
    z0: seeds.map((s) => randn(K * rank, s)),
    train: o.train ?? false,
    shared,
  };
}

/** mem [B, K, d] = z [B, K, rank] · Wᵀ (W [B, d, rank]) + b [d]. */
export function expandMem(z: tf.Tensor3D, W: tf.Tensor3D, b: tf.Tensor1D): tf.Tensor3D {
  return tf.tidy(() => tf.add(tf.matMul(z, W, false, true), b) as tf.Tensor3D);
}

/** The same on the host for one text: K·d values from K·rank. */
export function expandHost(z: Float32Array, W: Float32Array, b: Float32Array, rank: number): Float32Array {
  const d = b.length;
  const K = z.length / rank;
  const out = new Float32Array(K * d);
  for (let j = 0; j < K; j++)
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let r = 0; r < rank; r++) s += W[i * rank + r] * z[j * rank + r];
      out[j * d + i] = s + b[i];
    }
  return out;
}
