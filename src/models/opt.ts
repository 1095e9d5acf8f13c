// OPTForCausalLM (facebook/opt-*), after HF modeling_opt.
//   e = embeds                                   [B, T, word_embed_proj_dim]  ([mem] vectors live here)
//   h = project_in(e) + embed_positions[t + 2]   (project_in only when word_embed_proj_dim != hidden)
//   per layer, pre-LN (do_layer_norm_before, opt-125m and >= 1.3b):
//               h += out_proj(attn(LN1(h)));  h += fc2(relu(fc1(LN2(h))))
//   per layer, post-LN (opt-350m):
//               h = LN1(h + out_proj(attn(h)));  h = LN2(h + fc2(relu(fc1(h))))
//   logits = embed_tokens^T · project_out(final_layer_norm(h))   (final_layer_norm: pre-LN only)
// LN1 = self_attn_layer_norm, LN2 = the layer's final_layer_norm; every LayerNorm has eps 1e-5.
import * as tf from '@tensorflow/tfjs-core';
import { causalAttention, layerNorm, linear, mergeHeads, splitHeads } from './layers';
import type { CausalLM, ModelInfo } from './types';
import { infoFromConfig } from './types';
import { ModelError } from './types';
import type { Weights } from './weights';

const EPS = 1e-5; // OPTConfig has no layer_norm_eps: nn.LayerNorm's default
const POSITION_OFFSET = 2; // OPTLearnedPositionalEmbedding: rows 0 and 1 are never used

/** ModelInfo ([mem] vectors word_embed_proj_dim wide), after the checks every engine shares (the native one too). */
export function optInfo(cfg: Record<string, any>): ModelInfo {
  const [d, H] = [cfg.hidden_size, cfg.num_attention_heads];
  if (d % H !== 0) throw new ModelError(`hidden_size ${d} is not a multiple of num_attention_heads ${H}`);
  const act = cfg.activation_function ?? 'relu';
  if (act !== 'relu') throw new ModelError(`opt activation_function '${act}' is not supported (supported: relu)`);
  return infoFromConfig(cfg, { memDim: cfg.word_embed_proj_dim ?? d, maxPositions: cfg.max_position_embeddings });
}

/** Hub repos name tensors with or without the 'model.' prefix; HF maps both. */
export function optPrefix(has: (name: string) => boolean): string {
  return has('model.decoder.embed_tokens.weight') ? 'model.decoder.' : 'decoder.';
}

/** A checkpoint module's tensors: <name>.weight and <name>.bias (norms may have neither). */
interface Module {
  weight?: tf.Tensor;
  bias?: tf.Tensor;
}

interface OptLayer {
  self_attn_layer_norm: Module; // [d]
  final_layer_norm: Module; // [d] (the MLP's norm)
  q_proj: Module; // self_attn.q_proj [d, d]
  k_proj: Module;
  v_proj: Module;
  out_proj: Module; // self_attn.out_proj [d, d]
  fc1: Module; // [F, d]
  fc2: Module; // [d, F]
}

export class Opt implements CausalLM {
  readonly info: ModelInfo;
  readonly embedMatrix: tf.Tensor2D;
  readonly numParams: number;
  private layers: OptLayer[] = [];
  private positions: tf.Tensor2D;
  private projectIn?: tf.Tensor;
  private projectOut?: tf.Tensor;
  private finalNorm?: Module;
  private lmHead: tf.Tensor;
  private nHeads: number;
  private preLN: boolean;

  constructor(cfg: Record<string, any>, w: Weights) {
    const d = cfg.hidden_size;
    const V = cfg.vocab_size;
    const P = cfg.word_embed_proj_dim ?? d;
    const F = cfg.ffn_dim;
    const maxPos = cfg.max_position_embeddings;
    this.info = optInfo(cfg);
    this.nHeads = cfg.num_attention_heads;
    this.preLN = cfg.do_layer_norm_before ?? true;

    const pre = optPrefix((n) => w.has(n));
    // layer_norm_elementwise_affine false (never in released OPTs) means norms without tensors.
    const norm = (name: string): Module => ({
      weight: w.maybe(name + '.weight', [d]),
      bias: w.maybe(name + '.bias', [d]),
    });
    const lin = (name: string, shape: number[]): Module => ({
      weight: w.get(name + '.weight', shape),
      bias: w.maybe(name + '.bias', [shape[0]]),
    });
    this.embedMatrix = w.get(pre + 'embed_tokens.weight', [V, P]) as tf.Tensor2D;
    this.positions = w.get(pre + 'embed_positions.weight', [maxPos + POSITION_OFFSET, d]) as tf.Tensor2D;
    if (P !== d) {
      this.projectIn = w.get(pre + 'project_in.weight', [d, P]);
      this.projectOut = w.get(pre + 'project_out.weight', [P, d]);
    }
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `${pre}layers.${i}.`;
      this.layers.push({
        self_attn_layer_norm: norm(p + 'self_attn_layer_norm'),
        final_layer_norm: norm(p + 'final_layer_norm'),
        q_proj: lin(p + 'self_attn.q_proj', [d, d]),
        k_proj: lin(p + 'self_attn.k_proj', [d, d]),
        v_proj: lin(p + 'self_attn.v_proj', [d, d]),
        out_proj: lin(p + 'self_attn.out_proj', [d, d]),
        fc1: lin(p + 'fc1', [F, d]),
        fc2: lin(p + 'fc2', [d, F]),
      });
    }
    // Post-LN checkpoints have no decoder.final_layer_norm; pre-LN ones have it unless _remove_final_layer_norm.
    if (this.preLN && !cfg._remove_final_layer_norm) this.finalNorm = norm(pre + 'final_layer_norm');
    const tied = cfg.tie_word_embeddings ?? true; // PretrainedConfig's default: real OPT configs omit it
    this.lmHead = tied && !w.has('lm_head.weight') ? this.embedMatrix : w.get('lm_head.weight', [V, P]);
    this.numParams = w.count();
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.gather(this.embedMatrix as tf.Tensor, ids) as tf.Tensor3D;
  }

  private attention(x: tf.Tensor, L: OptLayer): tf.Tensor {
    const H = this.nHeads;
    const q = splitHeads(linear(x, L.q_proj.weight!, L.q_proj.bias), H);
    const k = splitHeads(linear(x, L.k_proj.weight!, L.k_proj.bias), H);
    const v = splitHeads(linear(x, L.v_proj.weight!, L.v_proj.bias), H);
    const attn = causalAttention(q, k, v, 1 / Math.sqrt(q.shape[3]));
    return linear(mergeHeads(attn), L.out_proj.weight!, L.out_proj.bias);
  }

  private mlp(x: tf.Tensor, L: OptLayer): tf.Tensor {
    return linear(tf.relu(linear(x, L.fc1.weight!, L.fc1.bias)), L.fc2.weight!, L.fc2.bias);
  }

  forward(inputsEmbeds: tf.Tensor3D): tf.Tensor3D {
    const T = inputsEmbeds.shape[1];
    if (T > this.info.maxPositions)
      throw new ModelError(`opt: sequence of ${T} positions exceeds max_position_embeddings ${this.info.maxPositions}`);
    return tf.tidy(() => {
      const ln = (x: tf.Tensor, n: Module) => layerNorm(x, n.weight, n.bias, EPS);
      const e = this.projectIn ? linear(inputsEmbeds, this.projectIn) : inputsEmbeds;
      // Position t (all-ones attention mask) reads row t + 2 of the learned table.
      let h: tf.Tensor = tf.add(e, tf.slice(this.positions, [POSITION_OFFSET, 0], [T, -1]));
      for (const L of this.layers) {
        if (this.preLN) {
          h = tf.add(h, this.attention(ln(h, L.self_attn_layer_norm), L));
          h = tf.add(h, this.mlp(ln(h, L.final_layer_norm), L));
        } else {
          h = ln(tf.add(h, this.attention(h, L)), L.self_attn_layer_norm);
          h = ln(tf.add(h, this.mlp(h, L)), L.final_layer_norm);
        }
      }
      if (this.finalNorm) h = ln(h, this.finalNorm);
      if (this.projectOut) h = linear(h, this.projectOut);
      return linear(h, this.lmHead) as tf.Tensor3D;
    });
  }

  dispose(): void {
    const all = new Set<tf.Tensor>([this.embedMatrix, this.positions, this.lmHead]);
    for (const t of [this.projectIn, this.projectOut, this.finalNorm?.weight, this.finalNorm?.bias]) if (t) all.add(t);
    for (const L of this.layers)
      for (const m of Object.values(L) as Module[]) for (const t of [m.weight, m.bias]) if (t) all.add(t);
    for (const t of all) t.dispose();
  }
}
