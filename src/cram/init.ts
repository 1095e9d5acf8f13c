// Optional mem initialisations (never the default: cram() keeps the authors' randn·std(E)).
// Pass the result as cram(model, texts, { initMem }).
//   'mean-embedding': every mem vector starts at the mean of its text's token embeddings, plus the
//   authors' noise scaled by `noise` (so K > 1 vectors differ). The mean already sits where the
//   model reads "some text like this one" instead of a random direction.
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../models/types';
import { initialMem } from './cram';

export type InitName = 'randn' | 'mean-embedding';

export function meanEmbeddingInit(
  model: CausalLM,
  texts: number[][],
  K = 1,
  opts: { seed?: number; noise?: number } = {},
): Float32Array[] {
  const d = model.info.memDim;
  const noise = opts.noise ?? 0.1;
  const seed = opts.seed ?? 0;
  return texts.map((ids, i) => {
    const mean = tf.tidy(
      () => tf.mean(model.embed(tf.tensor2d([ids], [1, ids.length], 'int32')), 1).dataSync() as Float32Array,
    );
    const rnd = initialMem(model, K, seed + i);
    return Float32Array.from(rnd, (x, j) => mean[j % d] + noise * x);
  });
}

/** initMem for cram() by name; undefined for the default. */
export function initByName(
  name: InitName,
  model: CausalLM,
  texts: number[][],
  K = 1,
  seed = 0,
): Float32Array[] | undefined {
  if (name === 'randn') return undefined;
  if (name === 'mean-embedding') return meanEmbeddingInit(model, texts, K, { seed });
  throw new Error(`unknown init '${name}'; use randn or mean-embedding`);
}
