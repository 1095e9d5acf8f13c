// Tiny random-weight checkpoints of every architecture in Hugging Face on-disk format
// (config.json + model.safetensors, tensor names and shapes as HF writes them), plus the
// stories260K tokenizer files when the shared model is present, so the CLI can load them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors, type WriteTensor } from '../../src/io/safetensors';
import { sharedModel } from './shared';

export const RANDOM_MODEL_TYPES = ['llama', 'gpt_neox', 'opt', 'olmo', 'mamba'] as const;
export type RandomModelType = (typeof RANDOM_MODEL_TYPES)[number];

/** Deterministic normal samples (mulberry32 + Box-Muller), so a checkpoint is the same on every run. */
function normals(n: number, std: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = std * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

type Spec = { shape: number[]; init: 'normal' | 'ones' | 'zeros' | Float32Array };

/** Config and tensor list of a small model of `modelType` with vocabulary `vocab` (bos 1, eos 2). */
export function randomSpec(
  modelType: RandomModelType,
  vocab = 512,
): { config: Record<string, any>; tensors: Record<string, Spec> } {
  const d = 32;
  const layers = 2;
  const t: Record<string, Spec> = {};
  const W = (name: string, ...shape: number[]) => (t[name] = { shape, init: 'normal' });
  const ones = (name: string, n: number) => (t[name] = { shape: [n], init: 'ones' });
  const zeros = (name: string, n: number) => (t[name] = { shape: [n], init: 'zeros' });
  const base = {
    model_type: modelType,
    vocab_size: vocab,
    hidden_size: d,
    num_hidden_layers: layers,
    bos_token_id: 1,
    eos_token_id: 2,
  };
  switch (modelType) {
    case 'llama':
    case 'olmo': {
      const I = 64;
      W('model.embed_tokens.weight', vocab, d);
      for (let i = 0; i < layers; i++) {
        const p = `model.layers.${i}.`;
        // 4 query heads, 2 key/value heads of size 8 (grouped-query attention).
        W(p + 'self_attn.q_proj.weight', d, d);
        W(p + 'self_attn.k_proj.weight', d / 2, d);
        W(p + 'self_attn.v_proj.weight', d / 2, d);
        W(p + 'self_attn.o_proj.weight', d, d);
        W(p + 'mlp.gate_proj.weight', I, d);
        W(p + 'mlp.up_proj.weight', I, d);
        W(p + 'mlp.down_proj.weight', d, I);
        if (modelType === 'llama') {
          ones(p + 'input_layernorm.weight', d);
          ones(p + 'post_attention_layernorm.weight', d);
        }
      }
      if (modelType === 'llama') ones('model.norm.weight', d);
      W('lm_head.weight', vocab, d);
      const extra = modelType === 'olmo' ? { clip_qkv: 8.0 } : { rms_norm_eps: 1e-5 };
      return {
        config: {
          ...base,
          architectures: [modelType === 'llama' ? 'LlamaForCausalLM' : 'OlmoForCausalLM'],
          intermediate_size: I,
          num_attention_heads: 4,
          num_key_value_heads: 2,
          max_position_embeddings: 256,
          rope_theta: 10000,
          tie_word_embeddings: false,
          ...extra,
        },
        tensors: t,
      };
    }
    case 'gpt_neox': {
      const I = 4 * d;
      W('gpt_neox.embed_in.weight', vocab, d);
      for (let i = 0; i < layers; i++) {
        const p = `gpt_neox.layers.${i}.`;
        for (const n of ['input_layernorm', 'post_attention_layernorm']) {
          ones(`${p}${n}.weight`, d);
          zeros(`${p}${n}.bias`, d);
        }
        W(p + 'attention.query_key_value.weight', 3 * d, d);
        zeros(p + 'attention.query_key_value.bias', 3 * d);
        W(p + 'attention.dense.weight', d, d);
        zeros(p + 'attention.dense.bias', d);
        W(p + 'mlp.dense_h_to_4h.weight', I, d);
        zeros(p + 'mlp.dense_h_to_4h.bias', I);
        W(p + 'mlp.dense_4h_to_h.weight', d, I);
        zeros(p + 'mlp.dense_4h_to_h.bias', d);
        // Old Pythia files carry these non-parameter buffers: the loader must ignore them.
        t[p + 'attention.rotary_emb.inv_freq'] = { shape: [2], init: 'ones' };
      }
      ones('gpt_neox.final_layer_norm.weight', d);
      zeros('gpt_neox.final_layer_norm.bias', d);
      W('embed_out.weight', vocab, d);
      return {
        config: {
          ...base,
          architectures: ['GPTNeoXForCausalLM'],
          intermediate_size: I,
          num_attention_heads: 4,
          rotary_pct: 0.25,
          rotary_emb_base: 10000,
          use_parallel_residual: true,
          hidden_act: 'gelu',
          layer_norm_eps: 1e-5,
          max_position_embeddings: 256,
          tie_word_embeddings: false,
        },
        tensors: t,
      };
    }
    case 'opt': {
      // The opt-350m layout: post-LN, word_embed_proj_dim < hidden, no 'model.' prefix (as some Hub repos).
      const P = 16;
      const F = 64;
      const maxPos = 256;
      W('decoder.embed_tokens.weight', vocab, P);
      W('decoder.embed_positions.weight', maxPos + 2, d);
      W('decoder.project_in.weight', d, P);
      W('decoder.project_out.weight', P, d);
      for (let i = 0; i < layers; i++) {
        const p = `decoder.layers.${i}.`;
        for (const n of ['q', 'k', 'v', 'out']) {
          W(`${p}self_attn.${n}_proj.weight`, d, d);
          zeros(`${p}self_attn.${n}_proj.bias`, d);
        }
        for (const n of ['self_attn_layer_norm', 'final_layer_norm']) {
          ones(`${p}${n}.weight`, d);
          zeros(`${p}${n}.bias`, d);
        }
        W(p + 'fc1.weight', F, d);
        zeros(p + 'fc1.bias', F);
        W(p + 'fc2.weight', d, F);
        zeros(p + 'fc2.bias', d);
      }
      return {
        config: {
          ...base,
          architectures: ['OPTForCausalLM'],
          word_embed_proj_dim: P,
          ffn_dim: F,
          num_attention_heads: 4,
          do_layer_norm_before: false,
          activation_function: 'relu',
          max_position_embeddings: maxPos,
          enable_bias: true,
        },
        tensors: t,
      };
    }
    case 'mamba': {
      const I = 2 * d;
      const N = 8;
      const K = 4;
      const rank = Math.ceil(d / 16);
      W('backbone.embeddings.weight', vocab, d);
      for (let i = 0; i < layers; i++) {
        const p = `backbone.layers.${i}.`;
        ones(p + 'norm.weight', d);
        W(p + 'mixer.in_proj.weight', 2 * I, d);
        W(p + 'mixer.conv1d.weight', I, 1, K);
        zeros(p + 'mixer.conv1d.bias', I);
        W(p + 'mixer.x_proj.weight', rank + 2 * N, I);
        W(p + 'mixer.dt_proj.weight', I, rank);
        // Δ ≈ softplus(-4) ≈ 0.018 and A = -(1..N): the S4D-real init Mamba uses.
        t[p + 'mixer.dt_proj.bias'] = { shape: [I], init: new Float32Array(I).fill(-4) };
        t[p + 'mixer.A_log'] = {
          shape: [I, N],
          init: Float32Array.from({ length: I * N }, (_, j) => Math.log(1 + (j % N))),
        };
        ones(p + 'mixer.D', I);
        W(p + 'mixer.out_proj.weight', d, I);
      }
      ones('backbone.norm_f.weight', d);
      return {
        config: {
          ...base,
          architectures: ['MambaForCausalLM'],
          intermediate_size: I,
          state_size: N,
          conv_kernel: K,
          time_step_rank: 'auto',
          layer_norm_epsilon: 1e-5,
          use_bias: false,
          use_conv_bias: true,
          hidden_act: 'silu',
          tie_word_embeddings: true,
        },
        tensors: t,
      };
    }
  }
}

/** float32 values → bf16 bits (round to nearest even), as torch's .to(torch.bfloat16) */
export function toBF16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  return Uint16Array.from(u, (v) => (v + 0x7fff + ((v >>> 16) & 1)) >>> 16);
}

/** float32 values → f16 bits (round to nearest even; beyond the range: ±inf), as .to(torch.float16) */
export function toF16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  return Uint16Array.from(u, (v) => {
    const sign = (v >>> 16) & 0x8000;
    const e = ((v >>> 23) & 0xff) - 112; // rebias 127 → 15
    let m = v & 0x7fffff;
    if (e >= 31) return sign | 0x7c00;
    if (e <= 0) {
      if (e < -10) return sign;
      m |= 0x800000; // subnormal: shift the implicit bit in
      const shift = 14 - e;
      const h = m >>> shift;
      const rem = m & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      return sign | (h + (rem > half || (rem === half && h & 1) ? 1 : 0));
    }
    const h = (e << 10) | (m >>> 13);
    const rem = m & 0x1fff;
    return sign | (h + (rem > 0x1000 || (rem === 0x1000 && h & 1) ? 1 : 0)); // a carry rounds up the exponent
  });
}

/**
 * Write a random-init checkpoint of `modelType` into `dir` (created if needed), its tensors stored as
 * `dtype` (default F32; BF16 / F16: rounded from the float32 draws). Copies the stories260K tokenizer
 * files (vocabulary 512) when the shared model is present; returns whether it did, so callers can skip
 * what needs a tokenizer.
 */
export function writeRandomCheckpoint(
  dir: string,
  modelType: RandomModelType,
  seed = 1,
  dtype: 'F32' | 'BF16' | 'F16' = 'F32',
  vocab?: number,
): { dir: string; config: Record<string, any>; hasTokenizer: boolean } {
  fs.mkdirSync(dir, { recursive: true });
  const { config, tensors } = randomSpec(modelType, vocab);
  const data: Record<string, WriteTensor> = {};
  let k = 0;
  for (const [name, { shape, init }] of Object.entries(tensors)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const values =
      init instanceof Float32Array
        ? init
        : init === 'ones'
          ? new Float32Array(n).fill(1)
          : init === 'zeros'
            ? new Float32Array(n)
            : normals(n, 0.2, seed * 1000 + k++);
    data[name] =
      dtype === 'F32'
        ? { shape, data: values }
        : { shape, dtype, data: dtype === 'BF16' ? toBF16(values) : toF16(values) };
  }
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeSafetensors(path.join(dir, 'model.safetensors'), data, { format: 'pt' });
  const stories = sharedModel('stories260K');
  if (stories.dir) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      const src = path.join(stories.dir, f);
      if (fs.existsSync(src)) fs.copyFileSync(src, path.join(dir, f));
    }
  }
  return { dir, config, hasTokenizer: !!stories.dir };
}
