// LlamaForCausalLM (Llama 1/2/3.x, SmolLM, TinyLlama, Sheared-LLaMA, stories), after HF modeling_llama.
//   h = inputs_embeds                                                       [B, T, d]
//   per layer:  x = input_layernorm(h)                                      (RMSNorm with weight)
//               q, k, v = rope(q_proj(x)), rope(k_proj(x)), v_proj(x)       [B, H(kv), T, D]
//               h += o_proj(softmax(q k^T / √D + causal) · repeat_kv(v))
//               y = post_attention_layernorm(h)
//               h += down_proj(silu(gate_proj(y)) * up_proj(y))
//   logits = lm_head(norm(h))                                               (lm_head = embed_tokens when tied)
// The checkpoint's own tensors, unfused: the same class crams (frozen weights, the tfjs engine) and
// trains (Weights made trainable: gradients reach every named tensor). The fast path is the native
// engine (native/src/llama.c), checked against this file in test/native.test.ts.
import * as tf from '@tensorflow/tfjs-core';
import {
  applyRope,
  causalAttention,
  linear,
  llama3ScaleInvFreq,
  mergeHeads,
  repeatKv,
  rmsNorm,
  ropeInvFreq,
  ropeTables,
  silu,
  splitHeads,
} from './layers';
import type { CausalLM, ModelInfo } from './types';
import { infoFromConfig, ModelError } from './types';
import type { Weights } from './weights';

interface LlamaLayer {
  input_layernorm: tf.Tensor; // [d]
  q_proj: tf.Tensor; // [H·D, d]
  k_proj: tf.Tensor; // [Hkv·D, d]
  v_proj: tf.Tensor; // [Hkv·D, d]
  q_bias?: tf.Tensor; // [H·D] (attention_bias checkpoints, e.g. Qwen-style)
  k_bias?: tf.Tensor;
  v_bias?: tf.Tensor;
  o_proj: tf.Tensor; // [d, H·D]
  post_attention_layernorm: tf.Tensor; // [d]
  gate_proj: tf.Tensor; // [I, d]
  up_proj: tf.Tensor; // [I, d]
  down_proj: tf.Tensor; // [d, I]
}

export function llamaInfo(cfg: Record<string, any>): ModelInfo {
  const [H, Hkv] = [cfg.num_attention_heads, cfg.num_key_value_heads ?? cfg.num_attention_heads];
  if (H % Hkv !== 0) throw new ModelError(`num_attention_heads ${H} is not a multiple of num_key_value_heads ${Hkv}`);
  return infoFromConfig(cfg);
}

/** RoPE's inverse frequencies per config (llama3 scaling applied): shared with the native engine. */
export function llamaInvFreq(cfg: Record<string, any>): Float32Array {
  let inv = ropeInvFreq(cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads, cfg.rope_theta ?? 10000);
  const rs = cfg.rope_scaling;
  if (rs) {
    const type = rs.rope_type ?? rs.type;
    if (type === 'llama3') inv = llama3ScaleInvFreq(inv, rs);
    else if (type !== 'default')
      throw new ModelError(`rope_scaling type '${type}' is not supported (supported: default, llama3)`);
  }
  return inv;
}

export class Llama implements CausalLM {
  readonly info: ModelInfo;
  readonly embedMatrix: tf.Tensor2D;
  readonly numParams: number;
  private layers: LlamaLayer[] = [];
  private norm: tf.Tensor;
  private lmHead: tf.Tensor;
  private nHeads: number;
  private nKv: number;
  private headDim: number;
  private eps: number;
  private invFreq: Float32Array;

  constructor(cfg: Record<string, any>, w: Weights) {
    this.info = llamaInfo(cfg);
    const [d, V, I] = [cfg.hidden_size, cfg.vocab_size, cfg.intermediate_size];
    this.nHeads = cfg.num_attention_heads;
    this.nKv = cfg.num_key_value_heads ?? this.nHeads;
    this.headDim = cfg.head_dim ?? d / this.nHeads;
    this.eps = cfg.rms_norm_eps ?? 1e-6;
    const [qDim, kvDim] = [this.nHeads * this.headDim, this.nKv * this.headDim];

    this.embedMatrix = w.get('model.embed_tokens.weight', [V, d]) as tf.Tensor2D;
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `model.layers.${i}.`;
      this.layers.push({
        input_layernorm: w.get(p + 'input_layernorm.weight', [d]),
        q_proj: w.get(p + 'self_attn.q_proj.weight', [qDim, d]),
        k_proj: w.get(p + 'self_attn.k_proj.weight', [kvDim, d]),
        v_proj: w.get(p + 'self_attn.v_proj.weight', [kvDim, d]),
        q_bias: w.maybe(p + 'self_attn.q_proj.bias', [qDim]),
        k_bias: w.maybe(p + 'self_attn.k_proj.bias', [kvDim]),
        v_bias: w.maybe(p + 'self_attn.v_proj.bias', [kvDim]),
        o_proj: w.get(p + 'self_attn.o_proj.weight', [d, qDim]),
        post_attention_layernorm: w.get(p + 'post_attention_layernorm.weight', [d]),
        gate_proj: w.get(p + 'mlp.gate_proj.weight', [I, d]),
        up_proj: w.get(p + 'mlp.up_proj.weight', [I, d]),
        down_proj: w.get(p + 'mlp.down_proj.weight', [d, I]),
      });
    }
    this.norm = w.get('model.norm.weight', [d]);
    const tied = cfg.tie_word_embeddings ?? false;
    this.lmHead = tied && !w.has('lm_head.weight') ? this.embedMatrix : w.get('lm_head.weight', [V, d]);
    this.numParams = w.count();
    this.invFreq = llamaInvFreq(cfg);
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.gather(this.embedMatrix as tf.Tensor, ids) as tf.Tensor3D;
  }

  forward(inputsEmbeds: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const T = inputsEmbeds.shape[1];
      const { cos, sin } = ropeTables(T, this.invFreq); // [T, D]
      const rep = this.nHeads / this.nKv;
      let h: tf.Tensor = inputsEmbeds; // the residual stream [B, T, d]
      for (const L of this.layers) {
        const x = rmsNorm(h, L.input_layernorm, this.eps);
        const q = applyRope(splitHeads(linear(x, L.q_proj, L.q_bias), this.nHeads), cos, sin); // [B, H, T, D]
        const k = applyRope(splitHeads(linear(x, L.k_proj, L.k_bias), this.nKv), cos, sin); // [B, Hkv, T, D]
        const v = splitHeads(linear(x, L.v_proj, L.v_bias), this.nKv);
        const attn = causalAttention(q, repeatKv(k, rep), repeatKv(v, rep), 1 / Math.sqrt(this.headDim));
        h = tf.add(h, linear(mergeHeads(attn), L.o_proj));
        const y = rmsNorm(h, L.post_attention_layernorm, this.eps);
        h = tf.add(h, linear(tf.mul(silu(linear(y, L.gate_proj)), linear(y, L.up_proj)), L.down_proj));
      }
      return linear(rmsNorm(h, this.norm, this.eps), this.lmHead) as tf.Tensor3D; // [B, T, V]
    });
  }

  dispose(): void {
    const all = new Set<tf.Tensor>([this.embedMatrix, this.norm, this.lmHead]);
    for (const L of this.layers) for (const t of Object.values(L)) if (t) all.add(t);
    for (const t of all) t.dispose();
  }
}
