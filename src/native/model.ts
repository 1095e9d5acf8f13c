// NativeLlama: a Llama whose weights live only in the native engine (one copy) plus the tfjs embedding
// matrix; the tfjs Llama keeps folded/rotated copies of every weight, ~2x the checkpoint. forward() runs
// the addon's forward (and its input-gradient for tf.grad; cram() runs natively); tfjsModel() builds a tfjs twin on request.
import * as tf from '@tensorflow/tfjs-core';
import { buildModel } from '../models/index';
import { llamaInfo } from '../models/llama';
import type { CausalLM, ModelInfo } from '../models/types';
import { Weights } from '../models/weights';
import type { TensorSource } from './weights';
import { createNative, nativeAddon, registerNative, type NativeHandle } from './index';

export class NativeLlama implements CausalLM {
  readonly info: ModelInfo;
  readonly embedMatrix: tf.Tensor2D;
  readonly numParams: number;
  private handle: NativeHandle;
  private twin?: CausalLM;

  /** `source` re-reads the checkpoint for tfjsModel(); w's arrays are copied, then the caller releases w. */
  constructor(
    cfg: Record<string, any>,
    w: Weights,
    private source: TensorSource,
  ) {
    this.info = llamaInfo(cfg);
    const [d, V, I] = [cfg.hidden_size, cfg.vocab_size, cfg.intermediate_size];
    const D = cfg.head_dim ?? d / cfg.num_attention_heads;
    const [q, kv] = [cfg.num_attention_heads * D, (cfg.num_key_value_heads ?? cfg.num_attention_heads) * D];
    const shapes: Record<string, number[]> = { 'model.embed_tokens.weight': [V, d], 'model.norm.weight': [d] };
    if (!((cfg.tie_word_embeddings ?? false) && !w.has('lm_head.weight'))) shapes['lm_head.weight'] = [V, d];
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `model.layers.${i}.`;
      Object.assign(shapes, {
        [p + 'input_layernorm.weight']: [d],
        [p + 'self_attn.q_proj.weight']: [q, d],
        [p + 'self_attn.k_proj.weight']: [kv, d],
        [p + 'self_attn.v_proj.weight']: [kv, d],
        [p + 'self_attn.o_proj.weight']: [d, q],
        [p + 'post_attention_layernorm.weight']: [d],
        [p + 'mlp.gate_proj.weight']: [I, d],
        [p + 'mlp.up_proj.weight']: [I, d],
        [p + 'mlp.down_proj.weight']: [d, I],
      });
      if (w.has(p + 'self_attn.q_proj.bias')) Object.assign(shapes, { [p + 'self_attn.q_proj.bias']: [q], [p + 'self_attn.k_proj.bias']: [kv], [p + 'self_attn.v_proj.bias']: [kv] });
    }
    const flat: Record<string, Float32Array> = {};
    for (const [name, shape] of Object.entries(shapes)) flat[name] = w.array(name, shape);
    this.numParams = Object.values(flat).reduce((n, a) => n + a.length, 0);
    this.embedMatrix = tf.tensor2d(flat['model.embed_tokens.weight'], [V, d]);
    this.handle = createNative(cfg, this.info.maxPositions, flat);
    registerNative(this, this.handle);
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.gather(this.embedMatrix as tf.Tensor, ids) as tf.Tensor3D;
  }

  forward(inputsEmbeds: tf.Tensor3D): tf.Tensor3D {
    const [B, T] = inputsEmbeds.shape;
    const V = this.info.vocabSize;
    const addon = nativeAddon()!;
    // The gradient to the input embeddings runs natively too (the weights are frozen: no others).
    const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const x = args[0] as tf.Tensor;
      (args[1] as tf.GradSaveFunc)([x]);
      return {
        value: tf.tensor3d(addon.forwardLogits(this.handle, x.dataSync() as Float32Array, B, T), [B, T, V]),
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const dx = addon.backwardEmbeds(this.handle, saved[0].dataSync() as Float32Array, (dy as tf.Tensor).dataSync() as Float32Array, B, T);
          return [tf.tensor3d(dx, [B, T, this.info.hiddenSize])];
        },
      };
    });
    return f(inputsEmbeds) as tf.Tensor3D;
  }

  /** The same checkpoint as a tfjs Llama (the tfjs engine), built on first use, freed with dispose(). */
  tfjs(): CausalLM {
    if (!this.twin) {
      const w = new Weights(this.source(), 'checkpoint');
      this.twin = buildModel(this.info.raw, w);
      this.twin.info.eosTokenIds = this.info.eosTokenIds;
      w.release();
    }
    return this.twin;
  }

  dispose(): void {
    nativeAddon()!.dispose(this.handle);
    this.embedMatrix.dispose();
    this.twin?.dispose();
  }
}

/** The model the tfjs engine runs: a NativeLlama's tfjs twin, any other model itself. */
export function tfjsModel(model: CausalLM): CausalLM {
  return model instanceof NativeLlama ? model.tfjs() : model;
}
