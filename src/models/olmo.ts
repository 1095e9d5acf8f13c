// OlmoForCausalLM (allenai/OLMo-1B-hf, OLMo-1B-0724-hf, OLMo-7B), after HF modeling_olmo.
// A Llama-shaped decoder whose norms have no parameters at all:
//   norm(x) = layer_norm(x, eps=1e-5)           (mean subtracted, no weight, no bias)
//   per layer:  q, k, v = clip(q_proj(norm(h))), clip(k_proj(..)), clip(v_proj(..))   (clip_qkv, when set)
//               h += o_proj(attn(rope(q), rope(k), v))
//               h += down_proj(silu(gate_proj(norm(h))) * up_proj(norm(h)))
//   logits = lm_head(norm(h))
import * as tf from '@tensorflow/tfjs-core';
import {
  applyRope,
  causalAttention,
  layerNorm,
  linear,
  mergeHeads,
  repeatKv,
  ropeInvFreq,
  ropeTables,
  silu,
  splitHeads,
} from './layers';
import type { CausalLM, ModelInfo } from './types';
import { infoFromConfig } from './types';
import { ModelError } from './types';
import type { Weights } from './weights';

/** OlmoLayerNorm's eps is fixed; the config's rms_norm_eps (some versions write one) is not read. */
const EPS = 1e-5;

/** ModelInfo, after the checks every engine shares (the native one too). */
export function olmoInfo(cfg: Record<string, any>): ModelInfo {
  const H = cfg.num_attention_heads;
  const Hkv = cfg.num_key_value_heads ?? H;
  if (H % Hkv !== 0) throw new ModelError(`num_attention_heads ${H} is not a multiple of num_key_value_heads ${Hkv}`);
  if (cfg.attention_bias) throw new ModelError('olmo attention_bias true is not supported (no released OLMo uses it)');
  if (cfg.rope_scaling) throw new ModelError('olmo rope_scaling is not supported');
  if (cfg.clip_qkv != null && !(cfg.clip_qkv > 0))
    throw new ModelError(`olmo clip_qkv must be a positive number or null, got ${cfg.clip_qkv}`);
  return infoFromConfig(cfg);
}

/** RoPE inverse frequencies over the whole head (shared with the native engine). */
export function olmoInvFreq(cfg: Record<string, any>): Float32Array {
  return ropeInvFreq(cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads, cfg.rope_theta ?? 10000);
}

interface OlmoLayer {
  q_proj: tf.Tensor;
  k_proj: tf.Tensor;
  v_proj: tf.Tensor;
  o_proj: tf.Tensor;
  gate_proj: tf.Tensor;
  up_proj: tf.Tensor;
  down_proj: tf.Tensor;
}

export class Olmo implements CausalLM {
  readonly info: ModelInfo;
  readonly embedMatrix: tf.Tensor2D;
  readonly numParams: number;
  private layers: OlmoLayer[] = [];
  private lmHead: tf.Tensor;
  private nHeads: number;
  private nKv: number;
  private headDim: number;
  private clip: number | null;
  private invFreq: Float32Array;

  constructor(cfg: Record<string, any>, w: Weights) {
    const d = cfg.hidden_size;
    const V = cfg.vocab_size;
    const I = cfg.intermediate_size;
    this.info = olmoInfo(cfg);
    this.nHeads = cfg.num_attention_heads;
    this.nKv = cfg.num_key_value_heads ?? this.nHeads;
    this.headDim = cfg.head_dim ?? d / this.nHeads;
    this.clip = cfg.clip_qkv ?? null;
    const qDim = this.nHeads * this.headDim;
    const kvDim = this.nKv * this.headDim;

    this.embedMatrix = w.get('model.embed_tokens.weight', [V, d]) as tf.Tensor2D;
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `model.layers.${i}.`;
      this.layers.push({
        q_proj: w.get(p + 'self_attn.q_proj.weight', [qDim, d]),
        k_proj: w.get(p + 'self_attn.k_proj.weight', [kvDim, d]),
        v_proj: w.get(p + 'self_attn.v_proj.weight', [kvDim, d]),
        o_proj: w.get(p + 'self_attn.o_proj.weight', [d, qDim]),
        gate_proj: w.get(p + 'mlp.gate_proj.weight', [I, d]),
        up_proj: w.get(p + 'mlp.up_proj.weight', [I, d]),
        down_proj: w.get(p + 'mlp.down_proj.weight', [d, I]),
      });
    }
    const tied = cfg.tie_word_embeddings ?? false;
    this.lmHead = tied && !w.has('lm_head.weight') ? this.embedMatrix : w.get('lm_head.weight', [V, d]);
    this.numParams = w.count();
    this.invFreq = olmoInvFreq(cfg);
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.gather(this.embedMatrix as tf.Tensor, ids) as tf.Tensor3D;
  }

  /** A projection, clamped to ±clip_qkv before the head split and RoPE (OLMo's training-stability trick). */
  private proj(x: tf.Tensor, w: tf.Tensor, heads: number): tf.Tensor4D {
    const y = linear(x, w);
    return splitHeads(this.clip == null ? y : tf.clipByValue(y, -this.clip, this.clip), heads);
  }

  forward(inputsEmbeds: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const T = inputsEmbeds.shape[1];
      const { cos, sin } = ropeTables(T, this.invFreq);
      const rep = this.nHeads / this.nKv;
      let h: tf.Tensor = inputsEmbeds;
      for (const L of this.layers) {
        const x = layerNorm(h, undefined, undefined, EPS);
        const q = applyRope(this.proj(x, L.q_proj, this.nHeads), cos, sin);
        const k = applyRope(this.proj(x, L.k_proj, this.nKv), cos, sin);
        const v = this.proj(x, L.v_proj, this.nKv);
        const attn = causalAttention(q, repeatKv(k, rep), repeatKv(v, rep), 1 / Math.sqrt(this.headDim));
        h = tf.add(h, linear(mergeHeads(attn), L.o_proj));
        const y = layerNorm(h, undefined, undefined, EPS);
        h = tf.add(h, linear(tf.mul(silu(linear(y, L.gate_proj)), linear(y, L.up_proj)), L.down_proj));
      }
      return linear(layerNorm(h, undefined, undefined, EPS), this.lmHead) as tf.Tensor3D;
    });
  }

  dispose(): void {
    const all = new Set<tf.Tensor>([this.embedMatrix, this.lmHead]);
    for (const L of this.layers) for (const t of Object.values(L)) all.add(t);
    for (const t of all) t.dispose();
  }
}
