// What the native engine needs to know per architecture, on the JS side (the C side is native/src/<arch>.c):
//   info     the ModelInfo, with the same checks as the tfjs class (a config the tfjs model refuses is refused)
//   tensors  every checkpoint tensor the architecture reads, with the shape the config implies (exactly the
//            tensors the tfjs model reads: loadModel's unused-tensor check holds for both)
//   config   the numbers/booleans the C *_create reads (config_int / config_float / config_bool keys)
//   derived  tensors computed here, not in the checkpoint (RoPE inverse frequencies: one home in TS)
//   slot     checkpoint name → the C slot's name (where Hub files spell names more than one way)
// Adding an architecture: a spec here, its C file (native/src/model.h says how), one row in model.c.
import { gptNeoXInfo, gptNeoXInvFreq, gptNeoXRotaryDim } from '../models/gpt_neox';
import { llamaInfo, llamaInvFreq } from '../models/llama';
import { mambaDims, mambaInfo } from '../models/mamba';
import { olmoInfo, olmoInvFreq } from '../models/olmo';
import { optInfo, optPrefix } from '../models/opt';
import type { ModelInfo } from '../models/types';

type Has = (name: string) => boolean;

export interface NativeSpec {
  info(cfg: Record<string, any>): ModelInfo;
  tensors(cfg: Record<string, any>, has: Has): Record<string, number[]>;
  /** the input embedding matrix [V, memDim] among tensors */
  embedName(has: Has): string;
  config(cfg: Record<string, any>, maxPositions: number, has: Has): Record<string, number | boolean>;
  derived(cfg: Record<string, any>): Record<string, Float32Array>;
  slot?(name: string): string;
}

/** Positions a model without a learned table may see (the RoPE tables are this long). */
const contextOf = (maxPositions: number) => (Number.isFinite(maxPositions) ? maxPositions : 4096);

/** The Llama-style decoder's shapes (Llama, OLMo): q/kv widths with grouped kv heads. */
function llamaWidths(cfg: Record<string, any>): { d: number; V: number; I: number; q: number; kv: number } {
  const d = cfg.hidden_size;
  const D = cfg.head_dim ?? d / cfg.num_attention_heads;
  return {
    d,
    V: cfg.vocab_size,
    I: cfg.intermediate_size,
    q: cfg.num_attention_heads * D,
    kv: (cfg.num_key_value_heads ?? cfg.num_attention_heads) * D,
  };
}

/** A Llama-style layer's attention and SwiGLU MLP weights, under prefix p. */
function decoderLayer(p: string, w: { d: number; I: number; q: number; kv: number }): Record<string, number[]> {
  return {
    [p + 'self_attn.q_proj.weight']: [w.q, w.d],
    [p + 'self_attn.k_proj.weight']: [w.kv, w.d],
    [p + 'self_attn.v_proj.weight']: [w.kv, w.d],
    [p + 'self_attn.o_proj.weight']: [w.d, w.q],
    [p + 'mlp.gate_proj.weight']: [w.I, w.d],
    [p + 'mlp.up_proj.weight']: [w.I, w.d],
    [p + 'mlp.down_proj.weight']: [w.d, w.I],
  };
}

/** The config keys the C side of both Llama-style decoders reads. */
function llamaStyleConfig(cfg: Record<string, any>, maxPositions: number, has: Has): Record<string, number | boolean> {
  const d = cfg.hidden_size;
  const heads = cfg.num_attention_heads;
  return {
    hidden_size: d,
    vocab_size: cfg.vocab_size,
    num_hidden_layers: cfg.num_hidden_layers,
    num_attention_heads: heads,
    num_key_value_heads: cfg.num_key_value_heads ?? heads,
    head_dim: cfg.head_dim ?? d / heads,
    intermediate_size: cfg.intermediate_size,
    max_position_embeddings: contextOf(maxPositions),
    tied: (cfg.tie_word_embeddings ?? false) && !has('lm_head.weight'),
  };
}

const llama: NativeSpec = {
  info: llamaInfo,
  tensors(cfg, has) {
    const w = llamaWidths(cfg);
    const shapes: Record<string, number[]> = { 'model.embed_tokens.weight': [w.V, w.d], 'model.norm.weight': [w.d] };
    if (!((cfg.tie_word_embeddings ?? false) && !has('lm_head.weight'))) shapes['lm_head.weight'] = [w.V, w.d];
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `model.layers.${i}.`;
      Object.assign(
        shapes,
        { [p + 'input_layernorm.weight']: [w.d], [p + 'post_attention_layernorm.weight']: [w.d] },
        decoderLayer(p, w),
      );
      if (has('model.layers.0.self_attn.q_proj.bias'))
        Object.assign(shapes, {
          [p + 'self_attn.q_proj.bias']: [w.q],
          [p + 'self_attn.k_proj.bias']: [w.kv],
          [p + 'self_attn.v_proj.bias']: [w.kv],
        });
    }
    return shapes;
  },
  embedName: () => 'model.embed_tokens.weight',
  config: (cfg, maxPositions, has) => ({
    ...llamaStyleConfig(cfg, maxPositions, has),
    rms_norm_eps: cfg.rms_norm_eps ?? 1e-6,
    attention_bias: has('model.layers.0.self_attn.q_proj.bias'),
  }),
  derived: (cfg) => ({ 'rope.inv_freq': llamaInvFreq(cfg) }), // llama3 scaling applied there
};

const gpt_neox: NativeSpec = {
  info: gptNeoXInfo,
  tensors(cfg, has) {
    const [d, V] = [cfg.hidden_size, cfg.vocab_size];
    const I = cfg.intermediate_size ?? 4 * d;
    const shapes: Record<string, number[]> = { 'gpt_neox.embed_in.weight': [V, d] };
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `gpt_neox.layers.${i}.`;
      Object.assign(shapes, {
        [p + 'input_layernorm.weight']: [d],
        [p + 'input_layernorm.bias']: [d],
        [p + 'post_attention_layernorm.weight']: [d],
        [p + 'post_attention_layernorm.bias']: [d],
        [p + 'attention.query_key_value.weight']: [3 * d, d],
        [p + 'attention.dense.weight']: [d, d],
        [p + 'mlp.dense_h_to_4h.weight']: [I, d],
        [p + 'mlp.dense_h_to_4h.bias']: [I],
        [p + 'mlp.dense_4h_to_h.weight']: [d, I],
        [p + 'mlp.dense_4h_to_h.bias']: [d],
      });
      // biases as layer 0 has them (one flag for the C side: a checkpoint that mixes them is refused)
      if (has('gpt_neox.layers.0.attention.query_key_value.bias'))
        shapes[p + 'attention.query_key_value.bias'] = [3 * d];
      if (has('gpt_neox.layers.0.attention.dense.bias')) shapes[p + 'attention.dense.bias'] = [d];
    }
    shapes['gpt_neox.final_layer_norm.weight'] = [d];
    shapes['gpt_neox.final_layer_norm.bias'] = [d];
    if (!((cfg.tie_word_embeddings ?? false) && !has('embed_out.weight'))) shapes['embed_out.weight'] = [V, d];
    return shapes;
  },
  embedName: () => 'gpt_neox.embed_in.weight',
  config: (cfg, maxPositions, has) => ({
    hidden_size: cfg.hidden_size,
    vocab_size: cfg.vocab_size,
    num_hidden_layers: cfg.num_hidden_layers,
    num_attention_heads: cfg.num_attention_heads,
    rotary_dim: gptNeoXRotaryDim(cfg),
    intermediate_size: cfg.intermediate_size ?? 4 * cfg.hidden_size,
    max_position_embeddings: contextOf(maxPositions),
    layer_norm_eps: cfg.layer_norm_eps ?? 1e-5,
    use_parallel_residual: cfg.use_parallel_residual ?? true,
    tied: (cfg.tie_word_embeddings ?? false) && !has('embed_out.weight'),
    qkv_bias: has('gpt_neox.layers.0.attention.query_key_value.bias'),
    dense_bias: has('gpt_neox.layers.0.attention.dense.bias'),
  }),
  derived: (cfg) => ({ 'rope.inv_freq': gptNeoXInvFreq(cfg) }),
};

const olmo: NativeSpec = {
  info: olmoInfo,
  tensors(cfg, has) {
    const w = llamaWidths(cfg);
    const shapes: Record<string, number[]> = { 'model.embed_tokens.weight': [w.V, w.d] };
    for (let i = 0; i < cfg.num_hidden_layers; i++) Object.assign(shapes, decoderLayer(`model.layers.${i}.`, w)); // weightless LayerNorms
    if (!((cfg.tie_word_embeddings ?? false) && !has('lm_head.weight'))) shapes['lm_head.weight'] = [w.V, w.d];
    return shapes;
  },
  embedName: () => 'model.embed_tokens.weight',
  config: (cfg, maxPositions, has) => ({ ...llamaStyleConfig(cfg, maxPositions, has), clip_qkv: cfg.clip_qkv ?? 0 }), // 0: no clamp
  derived: (cfg) => ({ 'rope.inv_freq': olmoInvFreq(cfg) }),
};

// OPT's C side reads one flag each for biases and norm tensors (as layer 0 has them) and names every
// tensor 'model.decoder.*' (slot() maps Hub files that spell them 'decoder.*').
const optFlags = (cfg: Record<string, any>, has: Has) => {
  const pre = optPrefix(has);
  return {
    pre,
    bias: has(pre + 'layers.0.self_attn.q_proj.bias'),
    affine: has(pre + 'layers.0.self_attn_layer_norm.weight'),
    finalNorm: (cfg.do_layer_norm_before ?? true) && !cfg._remove_final_layer_norm,
    tied: (cfg.tie_word_embeddings ?? true) && !has('lm_head.weight'), // PretrainedConfig's default: real OPT configs omit it
  };
};

const opt: NativeSpec = {
  info: optInfo,
  tensors(cfg, has) {
    const [d, V, F] = [cfg.hidden_size, cfg.vocab_size, cfg.ffn_dim];
    const P = cfg.word_embed_proj_dim ?? d;
    const { pre, bias, affine, finalNorm, tied } = optFlags(cfg, has);
    const shapes: Record<string, number[]> = {
      [pre + 'embed_tokens.weight']: [V, P],
      [pre + 'embed_positions.weight']: [cfg.max_position_embeddings + 2, d],
    };
    if (P !== d) Object.assign(shapes, { [pre + 'project_in.weight']: [d, P], [pre + 'project_out.weight']: [P, d] });
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `${pre}layers.${i}.`;
      for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
        shapes[`${p}self_attn.${n}.weight`] = [d, d];
        if (bias) shapes[`${p}self_attn.${n}.bias`] = [d];
      }
      Object.assign(shapes, { [p + 'fc1.weight']: [F, d], [p + 'fc2.weight']: [d, F] });
      if (bias) Object.assign(shapes, { [p + 'fc1.bias']: [F], [p + 'fc2.bias']: [d] });
      if (affine)
        for (const n of ['self_attn_layer_norm', 'final_layer_norm'])
          Object.assign(shapes, { [`${p}${n}.weight`]: [d], [`${p}${n}.bias`]: [d] });
    }
    if (finalNorm && affine)
      Object.assign(shapes, { [pre + 'final_layer_norm.weight']: [d], [pre + 'final_layer_norm.bias']: [d] });
    if (!tied) shapes['lm_head.weight'] = [V, P];
    return shapes;
  },
  embedName: (has) => optPrefix(has) + 'embed_tokens.weight',
  config(cfg, maxPositions, has) {
    const { bias, affine, finalNorm, tied } = optFlags(cfg, has);
    return {
      hidden_size: cfg.hidden_size,
      word_embed_proj_dim: cfg.word_embed_proj_dim ?? cfg.hidden_size,
      vocab_size: cfg.vocab_size,
      num_hidden_layers: cfg.num_hidden_layers,
      num_attention_heads: cfg.num_attention_heads,
      ffn_dim: cfg.ffn_dim,
      max_position_embeddings: maxPositions,
      do_layer_norm_before: cfg.do_layer_norm_before ?? true,
      final_layer_norm: finalNorm,
      enable_bias: bias,
      layer_norm_elementwise_affine: affine,
      tied,
    };
  },
  derived: () => ({}),
  slot: (name) => (name.startsWith('decoder.') ? 'model.' + name : name),
};

// Mamba: recurrent, no position tables; the C side reads one flag per bias kind (as layer 0 has them).
const mambaTied = (cfg: Record<string, any>, has: Has) => (cfg.tie_word_embeddings ?? true) && !has('lm_head.weight');
const mamba: NativeSpec = {
  info: mambaInfo,
  tensors(cfg, has) {
    const [d, V] = [cfg.hidden_size, cfg.vocab_size];
    const { I, N, K, rank } = mambaDims(cfg);
    const shapes: Record<string, number[]> = { 'backbone.embeddings.weight': [V, d] };
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      const p = `backbone.layers.${i}.`;
      Object.assign(shapes, {
        [p + 'norm.weight']: [d],
        [p + 'mixer.in_proj.weight']: [2 * I, d],
        [p + 'mixer.conv1d.weight']: [I, 1, K],
        [p + 'mixer.x_proj.weight']: [rank + 2 * N, I],
        [p + 'mixer.dt_proj.weight']: [I, rank],
        [p + 'mixer.dt_proj.bias']: [I],
        [p + 'mixer.A_log']: [I, N],
        [p + 'mixer.D']: [I],
        [p + 'mixer.out_proj.weight']: [d, I],
      });
      if (has('backbone.layers.0.mixer.in_proj.bias'))
        Object.assign(shapes, { [p + 'mixer.in_proj.bias']: [2 * I], [p + 'mixer.out_proj.bias']: [d] });
      if (has('backbone.layers.0.mixer.conv1d.bias')) shapes[p + 'mixer.conv1d.bias'] = [I];
    }
    shapes['backbone.norm_f.weight'] = [d];
    if (!mambaTied(cfg, has)) shapes['lm_head.weight'] = [V, d];
    return shapes;
  },
  embedName: () => 'backbone.embeddings.weight',
  config(cfg, maxPositions, has) {
    const { I, N, K, rank, eps } = mambaDims(cfg);
    return {
      hidden_size: cfg.hidden_size,
      vocab_size: cfg.vocab_size,
      num_hidden_layers: cfg.num_hidden_layers,
      intermediate_size: I,
      state_size: N,
      conv_kernel: K,
      time_step_rank: rank,
      layer_norm_epsilon: eps,
      max_position_embeddings: contextOf(maxPositions),
      tied: mambaTied(cfg, has),
      use_bias: has('backbone.layers.0.mixer.in_proj.bias'),
      use_conv_bias: has('backbone.layers.0.mixer.conv1d.bias'),
    };
  },
  derived: () => ({}),
};

export const NATIVE_SPECS: Record<string, NativeSpec> = { llama, gpt_neox, olmo, opt, mamba };
