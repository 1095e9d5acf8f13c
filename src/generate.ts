// Greedy decoding, from token ids or from input embeddings (a [mem] prefix) plus ids.
// tfjs: no KV cache, each step re-runs the prefix (simple and exact). The native engine
// decodes with a KV cache, so a long text costs one position per token.
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from './models/types';
import { ModelError } from './models/types';
import { engineFor, nativeAddon, nativeModel, type Engine } from './native/index';
import { tfjsModel } from './native/model';

export interface GenerateOptions {
  /** Embeddings [K, memDim] placed before the ids (the [mem] vectors). */
  prefix?: tf.Tensor2D;
  maxNewTokens: number;
  /** Stop when one of these is produced (it is kept in the output); default: the model's eos ids. */
  eosTokenIds?: number[];
  onToken?: (id: number) => void;
  /** Default: CRAMLAB_ENGINE, else native where it can run. */
  engine?: Engine;
}

/** Embeddings of [prefix; ids] as one [1, K+T, memDim] tensor. */
export function prefixedEmbeds(model: CausalLM, ids: number[], prefix?: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const parts: tf.Tensor3D[] = [];
    if (prefix) parts.push(tf.expandDims(prefix, 0) as tf.Tensor3D);
    if (ids.length) parts.push(model.embed(tf.tensor2d([ids], [1, ids.length], 'int32')));
    if (!parts.length) throw new ModelError('nothing to run: no prefix and no ids');
    return parts.length === 1 ? parts[0] : (tf.concat(parts, 1) as tf.Tensor3D);
  });
}

/** Greedy continuation of `ids` (after the optional prefix). Returns only the new ids. */
export async function greedyGenerate(model: CausalLM, ids: number[], opts: GenerateOptions): Promise<number[]> {
  const K = opts.prefix ? opts.prefix.shape[0] : 0;
  const limit = model.info.maxPositions;
  if (K + ids.length > limit) {
    throw new ModelError(
      `prompt of ${ids.length} tokens${K ? ` plus ${K} mem vectors` : ''} is longer than the model's context (max_position_embeddings = ${limit})`,
    );
  }
  const eos = new Set(opts.eosTokenIds ?? model.info.eosTokenIds);
  if (engineFor(model, opts.engine) === 'native') {
    const x = prefixedEmbeds(model, ids, opts.prefix);
    const prefix = (await x.data()) as Float32Array;
    x.dispose();
    const maxNew = Math.max(0, Math.min(opts.maxNewTokens, limit - K - ids.length));
    const out = Array.from(
      nativeAddon()!.generate(nativeModel(model), prefix, K + ids.length, maxNew, Int32Array.from(eos)),
    );
    out.forEach((id) => opts.onToken?.(id));
    return out;
  }
  model = tfjsModel(model);
  const out: number[] = [];
  const seq = [...ids];
  for (let i = 0; i < opts.maxNewTokens && K + seq.length < limit; i++) {
    const next = tf.tidy(() => {
      const logits = model.forward(prefixedEmbeds(model, seq, opts.prefix));
      const T = logits.shape[1];
      return tf.argMax(tf.slice(logits, [0, T - 1, 0], [1, 1, -1]), -1);
    });
    const id = (await next.data())[0];
    next.dispose();
    out.push(id);
    seq.push(id);
    opts.onToken?.(id);
    if (eos.has(id)) break;
  }
  return out;
}
