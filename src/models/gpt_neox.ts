// GPTNeoXForCausalLM (Pythia), after HF modeling_gpt_neox.
//   h = embeds
//   per layer:  a = dense(attn(rope(q), rope(k), v))   with q|k|v per head from the fused query_key_value
//               parallel:    h = h + a(ln1(h)) + mlp(ln2(h))
//               sequential:  h = h + a(ln1(h));  h = h + mlp(ln2(h))
//               mlp(x) = dense_4h_to_h(gelu(dense_h_to_4h(x)))
//   logits = embed_out(final_layer_norm(h))     (untied in every Pythia)
// Rotary covers only the first rotary_dim = head_size * rotary_pct dims of each head.
import * as tf from '@tensorflow/tfjs-core';
import {
  applyRope,
  causalAttention,
  geluExact,
  layerNorm,
  linear,
  mergeHeads,
  ropeInvFreq,
  ropeTables,
} from './layers';
import type { CausalLM, ModelInfo } from './types';
import { infoFromConfig } from './types';
import { ModelError } from './types';
import type { Weights } from './weights';

/** ModelInfo, after the checks every engine shares (the native one too). */
export function gptNeoXInfo(cfg: Record<string, any>): ModelInfo {
  const [d, H] = [cfg.hidden_size, cfg.num_attention_heads];
  if (d % H !== 0) throw new ModelError(`hidden_size ${d} is not a multiple of num_attention_heads ${H}`);
  const act = cfg.hidden_act ?? 'gelu';
  if (act !== 'gelu') throw new ModelError(`gpt_neox hidden_act '${act}' is not supported (supported: gelu)`);
  if (cfg.rope_scaling) throw new ModelError('gpt_neox rope_scaling is not supported (no Pythia uses it)');
  return infoFromConfig(cfg);
}

/** Rotary dims per head: the first head_size·rotary_pct. */
export function gptNeoXRotaryDim(cfg: Record<string, any>): number {
  return Math.floor((cfg.hidden_size / cfg.num_attention_heads) * (cfg.rotary_pct ?? cfg.partial_rotary_factor ?? 1));
}

/** The rotary inverse frequencies over the rotary dims (shared with the native engine). */
export function gptNeoXInvFreq(cfg: Record<string, any>): Float32Array {
  return ropeInvFreq(gptNeoXRotaryDim(cfg), cfg.rotary_emb_base ?? cfg.rope_theta ?? 10000);
}

/** A checkpoint module's tensors: <name>.weight and <name>.bias. */
interface Module {
  weight: tf.Tensor;
  bias?: tf.Tensor;
}

interface NeoXLayer {
  input_layernorm: Module; // [d], [d]
  post_attention_layernorm: Module;
  query_key_value: Module; // attention.query_key_value [3d, d]: per head [q; k; v] rows
  dense: Module; // attention.dense [d, d]
  dense_h_to_4h: Module; // mlp.dense_h_to_4h [I, d]
  dense_4h_to_h: Module; // mlp.dense_4h_to_h [d, I]
}

export class GPTNeoX implements CausalLM {
  readonly info: ModelInfo;
  readonly embedMatrix: tf.Tensor2D;
  readonly numParams: number;
  private layers: NeoXLayer[] = [];
  private final_layer_norm: Module;
  private embed_out: tf.Tensor;
  private nHeads: number;
  private headSize: number;
  private eps: number;
  private parallel: boolean;
  private invFreq: Float32Array;

  constructor(cfg: Record<string, any>, w: Weights) {
    this.info = gptNeoXInfo(cfg);
    const d = cfg.hidden_size;
    const V = cfg.vocab_size;
    const I = cfg.intermediate_size ?? 4 * d;
    this.nHeads = cfg.num_attention_heads;
    this.headSize = d / this.nHeads;
    this.eps = cfg.layer_norm_eps ?? 1e-5;
    this.parallel = cfg.use_parallel_residual ?? true;

    this.embedMatrix = w.get('gpt_neox.embed_in.weight', [V, d]) as tf.Tensor2D;
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `gpt_neox.layers.${i}.`;
      this.layers.push({
        input_layernorm: {
          weight: w.get(p + 'input_layernorm.weight', [d]),
          bias: w.get(p + 'input_layernorm.bias', [d]),
        },
        post_attention_layernorm: {
          weight: w.get(p + 'post_attention_layernorm.weight', [d]),
          bias: w.get(p + 'post_attention_layernorm.bias', [d]),
        },
        query_key_value: {
          weight: w.get(p + 'attention.query_key_value.weight', [3 * d, d]),
          bias: w.maybe(p + 'attention.query_key_value.bias', [3 * d]),
        },
        dense: { weight: w.get(p + 'attention.dense.weight', [d, d]), bias: w.maybe(p + 'attention.dense.bias', [d]) },
        dense_h_to_4h: {
          weight: w.get(p + 'mlp.dense_h_to_4h.weight', [I, d]),
          bias: w.get(p + 'mlp.dense_h_to_4h.bias', [I]),
        },
        dense_4h_to_h: {
          weight: w.get(p + 'mlp.dense_4h_to_h.weight', [d, I]),
          bias: w.get(p + 'mlp.dense_4h_to_h.bias', [d]),
        },
      });
    }
    this.final_layer_norm = {
      weight: w.get('gpt_neox.final_layer_norm.weight', [d]),
      bias: w.get('gpt_neox.final_layer_norm.bias', [d]),
    };
    const tied = cfg.tie_word_embeddings ?? false;
    this.embed_out = tied && !w.has('embed_out.weight') ? this.embedMatrix : w.get('embed_out.weight', [V, d]);
    // Old Pythia files also hold attention.bias / masked_bias / rotary_emb.inv_freq buffers: not parameters, left unread.
    this.numParams = w.count();

    this.invFreq = gptNeoXInvFreq(cfg);
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.gather(this.embedMatrix as tf.Tensor, ids) as tf.Tensor3D;
  }

  /** The fused projection, viewed as HF does: [B, T, H, 3·hs] with q, k, v blocks per head → three [B, H, T, hs]. */
  private qkv(x: tf.Tensor, L: NeoXLayer): tf.Tensor4D[] {
    const [B, T] = x.shape;
    const fused = tf.reshape(linear(x, L.query_key_value.weight, L.query_key_value.bias), [
      B,
      T,
      this.nHeads,
      3 * this.headSize,
    ]);
    return tf.split(fused, 3, 3).map((t) => tf.transpose(t, [0, 2, 1, 3]) as tf.Tensor4D);
  }

  private attention(x: tf.Tensor, L: NeoXLayer, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor {
    const [q, k, v] = this.qkv(x, L);
    const attn = causalAttention(applyRope(q, cos, sin), applyRope(k, cos, sin), v, 1 / Math.sqrt(this.headSize));
    return linear(mergeHeads(attn), L.dense.weight, L.dense.bias);
  }

  private mlp(x: tf.Tensor, L: NeoXLayer): tf.Tensor {
    return linear(
      geluExact(linear(x, L.dense_h_to_4h.weight, L.dense_h_to_4h.bias)),
      L.dense_4h_to_h.weight,
      L.dense_4h_to_h.bias,
    );
  }

  forward(inputsEmbeds: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const T = inputsEmbeds.shape[1];
      const { cos, sin } = ropeTables(T, this.invFreq);
      let h: tf.Tensor = inputsEmbeds;
      for (const L of this.layers) {
        const a = this.attention(layerNorm(h, L.input_layernorm.weight, L.input_layernorm.bias, this.eps), L, cos, sin);
        if (this.parallel) {
          h = tf.add(
            tf.add(h, a),
            this.mlp(layerNorm(h, L.post_attention_layernorm.weight, L.post_attention_layernorm.bias, this.eps), L),
          );
        } else {
          h = tf.add(h, a);
          h = tf.add(
            h,
            this.mlp(layerNorm(h, L.post_attention_layernorm.weight, L.post_attention_layernorm.bias, this.eps), L),
          );
        }
      }
      return linear(
        layerNorm(h, this.final_layer_norm.weight, this.final_layer_norm.bias, this.eps),
        this.embed_out,
      ) as tf.Tensor3D;
    });
  }

  dispose(): void {
    const all = new Set<tf.Tensor>([this.embedMatrix, this.embed_out]);
    for (const m of [this.final_layer_norm, ...this.layers.flatMap((L) => Object.values(L) as Module[])])
      for (const t of [m.weight, m.bias]) if (t) all.add(t);
    for (const t of all) t.dispose();
  }
}
