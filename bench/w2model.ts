// Random-init Llamas for the throughput workloads, deterministic (seeded LCG + Box-Muller), HF tensor
// names, so both cramlab and the PyTorch reference load them from an HF-format folder.
//   W2  d 256, 4 layers, vocab 2048 (small: per-op overhead matters)
//   W3  SmolLM2-135M's shape (d 576, 30 layers, 9 heads / 3 kv heads, vocab 49152): a real model size
//   W4  a random GPT-NeoX of Pythia-160M's shape (d 768, 12 layers, 12 heads, rotary_pct 0.25, vocab 50304)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors } from '../src/io/safetensors';
import type { RawTensor } from '../src/io/safetensors';

const LLAMA = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  rms_norm_eps: 1e-5,
  hidden_act: 'silu',
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'float32',
};

export const W2_CONFIG = {
  ...LLAMA,
  hidden_size: 256,
  intermediate_size: 688,
  num_hidden_layers: 4,
  num_attention_heads: 8,
  num_key_value_heads: 8,
  head_dim: 32,
  vocab_size: 2048,
  max_position_embeddings: 512,
  rope_theta: 10000.0,
};

export const W3_CONFIG = {
  ...LLAMA,
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  head_dim: 64,
  vocab_size: 49152,
  max_position_embeddings: 2048,
  rope_theta: 100000.0,
};

export type LlamaConfig = typeof W2_CONFIG;

/** EleutherAI/pythia-160m's config.json shape (untied embed_out, parallel residual, partial rotary). */
export const W4_CONFIG = {
  architectures: ['GPTNeoXForCausalLM'],
  model_type: 'gpt_neox',
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  rotary_pct: 0.25,
  rotary_emb_base: 10000,
  use_parallel_residual: true,
  layer_norm_eps: 1e-5,
  hidden_act: 'gelu',
  vocab_size: 50304,
  max_position_embeddings: 2048,
  tie_word_embeddings: false,
  bos_token_id: 0,
  eos_token_id: 0,
  torch_dtype: 'float32',
};

export type GptNeoXConfig = typeof W4_CONFIG;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

export function randomLlama(
  seed = 0,
  c: LlamaConfig = W2_CONFIG,
): { config: Record<string, any>; tensors: Map<string, RawTensor> } {
  const normal = rng(seed);
  const t = new Map<string, RawTensor>();
  const add = (name: string, shape: number[], std: number | 'ones') => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = std === 'ones' ? 1 : normal() * std;
    t.set(name, { dtype: 'F32', shape, data } as RawTensor);
  };
  const d = c.hidden_size,
    I = c.intermediate_size,
    hd = c.head_dim;
  add('model.embed_tokens.weight', [c.vocab_size, d], 0.02 * 10); // larger embeddings: a peaked, non-trivial model
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    add(p + 'input_layernorm.weight', [d], 'ones');
    add(p + 'self_attn.q_proj.weight', [c.num_attention_heads * hd, d], 0.02);
    add(p + 'self_attn.k_proj.weight', [c.num_key_value_heads * hd, d], 0.02);
    add(p + 'self_attn.v_proj.weight', [c.num_key_value_heads * hd, d], 0.02);
    add(p + 'self_attn.o_proj.weight', [d, c.num_attention_heads * hd], 0.02);
    add(p + 'post_attention_layernorm.weight', [d], 'ones');
    add(p + 'mlp.gate_proj.weight', [I, d], 0.02);
    add(p + 'mlp.up_proj.weight', [I, d], 0.02);
    add(p + 'mlp.down_proj.weight', [d, I], 0.02);
  }
  add('model.norm.weight', [d], 'ones');
  return { config: { ...c }, tensors: t };
}

export function randomGptNeoX(
  seed = 0,
  c: GptNeoXConfig = W4_CONFIG,
): { config: Record<string, any>; tensors: Map<string, RawTensor> } {
  const normal = rng(seed);
  const t = new Map<string, RawTensor>();
  const add = (name: string, shape: number[], std: number | 'ones' | 'zeros') => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (std === 'ones') data.fill(1);
    else if (std !== 'zeros') for (let i = 0; i < n; i++) data[i] = normal() * std;
    t.set(name, { dtype: 'F32', shape, data } as RawTensor);
  };
  const d = c.hidden_size,
    I = c.intermediate_size,
    V = c.vocab_size;
  add('gpt_neox.embed_in.weight', [V, d], 0.02 * 10);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `gpt_neox.layers.${i}.`;
    add(p + 'input_layernorm.weight', [d], 'ones');
    add(p + 'input_layernorm.bias', [d], 'zeros');
    add(p + 'post_attention_layernorm.weight', [d], 'ones');
    add(p + 'post_attention_layernorm.bias', [d], 'zeros');
    add(p + 'attention.query_key_value.weight', [3 * d, d], 0.02);
    add(p + 'attention.query_key_value.bias', [3 * d], 'zeros');
    add(p + 'attention.dense.weight', [d, d], 0.02);
    add(p + 'attention.dense.bias', [d], 'zeros');
    add(p + 'mlp.dense_h_to_4h.weight', [I, d], 0.02);
    add(p + 'mlp.dense_h_to_4h.bias', [I], 'zeros');
    add(p + 'mlp.dense_4h_to_h.weight', [d, I], 0.02);
    add(p + 'mlp.dense_4h_to_h.bias', [d], 'zeros');
  }
  add('gpt_neox.final_layer_norm.weight', [d], 'ones');
  add('gpt_neox.final_layer_norm.bias', [d], 'zeros');
  add('embed_out.weight', [V, d], 0.02);
  return { config: { ...c }, tensors: t };
}

/** Write a random model of config's model_type (llama or gpt_neox) as an HF folder. */
export function writeModelFolder(dir: string, config: LlamaConfig | GptNeoXConfig, seed = 0): string {
  fs.mkdirSync(dir, { recursive: true });
  const { tensors } =
    config.model_type === 'gpt_neox'
      ? randomGptNeoX(seed, config as GptNeoXConfig)
      : randomLlama(seed, config as LlamaConfig);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeSafetensors(path.join(dir, 'model.safetensors'), Object.fromEntries(tensors));
  return dir;
}

/** Write a random Llama as an HF folder (config.json + model.safetensors). */
export function writeLlamaFolder(dir: string, config: LlamaConfig, seed = 0): string {
  fs.mkdirSync(dir, { recursive: true });
  const { tensors } = randomLlama(seed, config);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeSafetensors(path.join(dir, 'model.safetensors'), Object.fromEntries(tensors));
  return dir;
}

export const writeW2Folder = (dir: string, seed = 0): string => writeLlamaFolder(dir, W2_CONFIG, seed);
