// The Llama forward as it was before the speed work (commit 46ae607), kept only so bench/micro.ts --old
// can measure the levers side by side. Not used by cramlab itself.
// LlamaForCausalLM (Llama 1/2/3.x, SmolLM, TinyLlama, Sheared-LLaMA, stories), after HF modeling_llama.
//   h = embeds
//   per layer:  h += o_proj(attn(rope(q_proj(rms(h))), rope(k_proj(..)), v_proj(..)))
//               h += down_proj(silu(gate_proj(rms(h))) * up_proj(rms(h)))
//   logits = lm_head(rms(h))      (lm_head = embed_tokens when tied)
import * as tf from '@tensorflow/tfjs-core';
import { applyRope, causalAttention, linear, llama3ScaleInvFreq, mergeHeads, repeatKv, rmsNorm, ropeInvFreq, ropeTables, silu, splitHeads } from '../src/models/layers';
import type { CausalLM, ModelInfo } from '../src/models/types';
import { ModelError } from '../src/models/types';
import type { Weights } from '../src/models/weights';

interface LlamaLayer {
  input_layernorm: tf.Tensor;
  q_proj: tf.Tensor;
  k_proj: tf.Tensor;
  v_proj: tf.Tensor;
  o_proj: tf.Tensor;
  q_bias?: tf.Tensor;
  k_bias?: tf.Tensor;
  v_bias?: tf.Tensor;
  post_attention_layernorm: tf.Tensor;
  gate_proj: tf.Tensor;
  up_proj: tf.Tensor;
  down_proj: tf.Tensor;
}

export function llamaInfo(cfg: Record<string, any>): ModelInfo {
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
  };
}

export class LlamaOld implements CausalLM {
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
    const d = cfg.hidden_size;
    const V = cfg.vocab_size;
    this.nHeads = cfg.num_attention_heads;
    this.nKv = cfg.num_key_value_heads ?? this.nHeads;
    this.headDim = cfg.head_dim ?? d / this.nHeads;
    this.eps = cfg.rms_norm_eps ?? 1e-6;
    if (this.nHeads % this.nKv !== 0) throw new ModelError(`num_attention_heads ${this.nHeads} is not a multiple of num_key_value_heads ${this.nKv}`);
    const I = cfg.intermediate_size;
    const qDim = this.nHeads * this.headDim;
    const kvDim = this.nKv * this.headDim;

    this.embedMatrix = w.get('model.embed_tokens.weight', [V, d]) as tf.Tensor2D;
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `model.layers.${i}.`;
      this.layers.push({
        input_layernorm: w.get(p + 'input_layernorm.weight', [d]),
        q_proj: w.get(p + 'self_attn.q_proj.weight', [qDim, d]),
        k_proj: w.get(p + 'self_attn.k_proj.weight', [kvDim, d]),
        v_proj: w.get(p + 'self_attn.v_proj.weight', [kvDim, d]),
        o_proj: w.get(p + 'self_attn.o_proj.weight', [d, qDim]),
        q_bias: w.maybe(p + 'self_attn.q_proj.bias', [qDim]),
        k_bias: w.maybe(p + 'self_attn.k_proj.bias', [kvDim]),
        v_bias: w.maybe(p + 'self_attn.v_proj.bias', [kvDim]),
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

    let inv = ropeInvFreq(this.headDim, cfg.rope_theta ?? 10000);
    const rs = cfg.rope_scaling;
    if (rs) {
      const type = rs.rope_type ?? rs.type;
      if (type === 'llama3') inv = llama3ScaleInvFreq(inv, rs);
      else if (type !== 'default') throw new ModelError(`rope_scaling type '${type}' is not supported (supported: default, llama3)`);
    }
    this.invFreq = inv;
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.gather(this.embedMatrix as tf.Tensor, ids) as tf.Tensor3D;
  }

  forward(inputsEmbeds: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T] = inputsEmbeds.shape;
      const { cos, sin } = ropeTables(T, this.invFreq);
      const scale = 1 / Math.sqrt(this.headDim);
      const rep = this.nHeads / this.nKv;
      let h: tf.Tensor = inputsEmbeds;
      for (const L of this.layers) {
        const x = rmsNorm(h, L.input_layernorm, this.eps);
        const q = applyRope(splitHeads(linear(x, L.q_proj, L.q_bias), this.nHeads), cos, sin);
        const k = applyRope(splitHeads(linear(x, L.k_proj, L.k_bias), this.nKv), cos, sin);
        const v = splitHeads(linear(x, L.v_proj, L.v_bias), this.nKv);
        const attn = causalAttention(q, repeatKv(k, rep), repeatKv(v, rep), scale);
        h = tf.add(h, linear(mergeHeads(attn), L.o_proj));
        const y = rmsNorm(h, L.post_attention_layernorm, this.eps);
        h = tf.add(h, linear(tf.mul(silu(linear(y, L.gate_proj)), linear(y, L.up_proj)), L.down_proj));
      }
      return tf.reshape(linear(rmsNorm(h, this.norm, this.eps), this.lmHead), [B, T, this.info.vocabSize]) as tf.Tensor3D;
    });
  }

  dispose(): void {
    const all = new Set<tf.Tensor>([this.embedMatrix, this.norm, this.lmHead]);
    for (const L of this.layers) for (const t of Object.values(L)) if (t) all.add(t);
    for (const t of all) t.dispose();
  }
}
