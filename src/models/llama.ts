// LlamaForCausalLM (Llama 1/2/3.x, SmolLM, TinyLlama, Sheared-LLaMA, stories), after HF modeling_llama.
//   h = embeds
//   per layer:  h += o_proj(attn(rope(q_proj(rms(h))), rope(k_proj(..)), v_proj(..)))
//               h += down_proj(silu(gate_proj(rms(h))) * up_proj(rms(h)))
//   logits = lm_head(rms(h))      (lm_head = embed_tokens when tied)
// Computed with the same math in fewer, bigger ops (cramming runs this thousands of times per text):
//   * RMSNorm weights folded into the next projection:  W·(g ⊙ n) = (W diag g)·n
//   * RoPE as y·cos + rotate_half(y)·sin with rotate_half(y) from its own projection (a signed row
//     permutation of W, exact): no slicing (tfjs-wasm slices copy); 1/√D rides on q's cos/sin
//   * grouped-query attention without copying k, v: the `rep` query heads sharing a kv head are
//     stacked along time, [Hkv·B, rep·T, D], against one [rep·T, T] causal mask
//   * the residual stream stays [B·T, d]; no split/slice ops at all (each one copies its input in wasm)
import * as tf from '@tensorflow/tfjs-core';
import { causalMask, dense, denseLinear, disposeDense, llama3ScaleInvFreq, rmsNorm, ropeInvFreq, ropeTables, rotateHalfRows, silu, type Dense } from './layers';
import type { CausalLM, ModelInfo } from './types';
import { infoFromConfig, ModelError } from './types';
import type { Weights } from './weights';

type Tables = { cosQ: tf.Tensor; sinQ: tf.Tensor; cos: tf.Tensor; sin: tf.Tensor; mask: tf.Tensor };

interface LlamaLayer {
  // input_layernorm folded into q, k, v; *_rot: rows giving rotate_half of the projection (for RoPE)
  q_proj: Dense;
  q_rot: Dense;
  k_proj: Dense;
  k_rot: Dense;
  v_proj: Dense;
  o_proj: Dense;
  gate_proj: Dense; // post_attention_layernorm folded in (also into up_proj)
  up_proj: Dense;
  down_proj: Dense;
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
    else if (type !== 'default') throw new ModelError(`rope_scaling type '${type}' is not supported (supported: default, llama3)`);
  }
  return inv;
}

export class Llama implements CausalLM {
  readonly info: ModelInfo;
  readonly embedMatrix: tf.Tensor2D;
  readonly numParams: number;
  private layers: LlamaLayer[] = [];
  private lmHead: Dense; // model.norm folded in
  private nHeads: number;
  private nKv: number;
  private headDim: number;
  private intermediate: number;
  private eps: number;
  private invFreq: Float32Array;

  constructor(cfg: Record<string, any>, w: Weights) {
    this.info = llamaInfo(cfg);
    const d = cfg.hidden_size;
    const V = cfg.vocab_size;
    this.nHeads = cfg.num_attention_heads;
    this.nKv = cfg.num_key_value_heads ?? this.nHeads;
    this.headDim = cfg.head_dim ?? d / this.nHeads;
    this.eps = cfg.rms_norm_eps ?? 1e-6;
    const I = (this.intermediate = cfg.intermediate_size);
    const qDim = this.nHeads * this.headDim;
    const kvDim = this.nKv * this.headDim;

    this.embedMatrix = w.get('model.embed_tokens.weight', [V, d]) as tf.Tensor2D;
    const once = (t: tf.Tensor | undefined) => {
      if (t && t !== this.embedMatrix) t.dispose();
    };
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `model.layers.${i}.`;
      const g1 = w.get(p + 'input_layernorm.weight', [d]);
      const q = w.get(p + 'self_attn.q_proj.weight', [qDim, d]);
      const k = w.get(p + 'self_attn.k_proj.weight', [kvDim, d]);
      const v = w.get(p + 'self_attn.v_proj.weight', [kvDim, d]);
      const bias = [w.maybe(p + 'self_attn.q_proj.bias', [qDim]), w.maybe(p + 'self_attn.k_proj.bias', [kvDim]), w.maybe(p + 'self_attn.v_proj.bias', [kvDim])];
      const g2 = w.get(p + 'post_attention_layernorm.weight', [d]);
      const gate = w.get(p + 'mlp.gate_proj.weight', [I, d]);
      const up = w.get(p + 'mlp.up_proj.weight', [I, d]);
      const withNorm = (t: tf.Tensor) => tf.mul(t, g1);
      const rot = (t: tf.Tensor | undefined, H: number) => t && rotateHalfRows(t, H);
      this.layers.push({
        q_proj: dense(withNorm(q), bias[0]),
        q_rot: dense(tf.tidy(() => withNorm(rotateHalfRows(q, this.nHeads))), rot(bias[0], this.nHeads)),
        k_proj: dense(withNorm(k), bias[1]),
        k_rot: dense(tf.tidy(() => withNorm(rotateHalfRows(k, this.nKv))), rot(bias[1], this.nKv)),
        v_proj: dense(withNorm(v), bias[2]),
        o_proj: dense(w.get(p + 'self_attn.o_proj.weight', [d, qDim])),
        gate_proj: dense(tf.mul(gate, g2)),
        up_proj: dense(tf.mul(up, g2)),
        down_proj: dense(w.get(p + 'mlp.down_proj.weight', [d, I])),
      });
      for (const t of [g1, q, k, v, g2, gate, up]) once(t);
    }
    const norm = w.get('model.norm.weight', [d]);
    const tied = cfg.tie_word_embeddings ?? false;
    const head = tied && !w.has('lm_head.weight') ? this.embedMatrix : w.get('lm_head.weight', [V, d]);
    this.lmHead = dense(tf.mul(head, norm));
    once(norm);
    once(head);
    this.numParams = w.count();

    this.invFreq = llamaInvFreq(cfg);
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.gather(this.embedMatrix as tf.Tensor, ids) as tf.Tensor3D;
  }

  /** RoPE tables [T, H·D] for k and, scaled by 1/√D, for q; the [rep·T, T] causal mask. Built per forward
   *  from the shared caches in layers.ts (a handful of ops; a per-model cache would hold tensors). */
  private tablesFor(T: number): Tables {
    const { cos, sin } = ropeTables(T, this.invFreq);
    const scale = 1 / Math.sqrt(this.headDim);
    return {
      cosQ: tf.tile(tf.mul(cos, scale), [1, this.nHeads]),
      sinQ: tf.tile(tf.mul(sin, scale), [1, this.nHeads]),
      cos: tf.tile(cos, [1, this.nKv]),
      sin: tf.tile(sin, [1, this.nKv]),
      mask: tf.tile(causalMask(T), [this.nHeads / this.nKv, 1]),
    };
  }

  forward(inputsEmbeds: tf.Tensor3D): tf.Tensor3D {
    const [B, T, d] = inputsEmbeds.shape;
    return tf.tidy(() => {
      const { cosQ, sinQ, cos, sin, mask } = this.tablesFor(T);
      const Hq = this.nHeads;
      const Hkv = this.nKv;
      const D = this.headDim;
      const rep = Hq / Hkv;
      let h = tf.reshape(inputsEmbeds, [B * T, d]) as tf.Tensor2D; // the residual stream
      const heads = (t: tf.Tensor, H: number) => tf.transpose(tf.reshape(t, [B, T, H, D]), [2, 0, 1, 3]); // [H, B, T, D]
      for (const L of this.layers) {
        const x = rmsNorm(h, undefined, this.eps) as tf.Tensor2D;
        // RoPE: y·cos + rotate_half(y)·sin, rotate_half(y) coming from its own (row-permuted) weights
        const q = heads(tf.add(tf.mul(tf.reshape(denseLinear(x, L.q_proj), [B, T, -1]), cosQ), tf.mul(tf.reshape(denseLinear(x, L.q_rot), [B, T, -1]), sinQ)), Hq);
        const k = heads(tf.add(tf.mul(tf.reshape(denseLinear(x, L.k_proj), [B, T, -1]), cos), tf.mul(tf.reshape(denseLinear(x, L.k_rot), [B, T, -1]), sin)), Hkv);
        const v = heads(denseLinear(x, L.v_proj), Hkv);
        // Query head g·rep + r reads kv head g: group the rep heads of each (g, b) along time.
        const qg = rep === 1 ? q : tf.transpose(tf.reshape(q, [Hkv, rep, B, T, D]), [0, 2, 1, 3, 4]);
        const scores = tf.matMul(tf.reshape(qg, [Hkv * B, rep * T, D]), tf.reshape(k, [Hkv * B, T, D]), false, true);
        const att = tf.matMul(tf.softmax(tf.add(scores, mask)), tf.reshape(v, [Hkv * B, T, D]));
        const o = tf.reshape(tf.transpose(tf.reshape(att, [Hkv, B, rep, T, D]), [1, 3, 0, 2, 4]), [B * T, Hq * D]) as tf.Tensor2D;
        h = tf.add(h, denseLinear(o, L.o_proj));
        const y2 = rmsNorm(h, undefined, this.eps) as tf.Tensor2D;
        h = tf.add(h, denseLinear(tf.mul(silu(denseLinear(y2, L.gate_proj)), denseLinear(y2, L.up_proj)) as tf.Tensor2D, L.down_proj));
      }
      return tf.reshape(denseLinear(rmsNorm(h, undefined, this.eps) as tf.Tensor2D, this.lmHead), [B, T, this.info.vocabSize]);
    });
  }

  dispose(): void {
    for (const L of this.layers) for (const p of Object.values(L)) disposeDense(p);
    disposeDense(this.lmHead);
    this.embedMatrix.dispose();
  }
}
