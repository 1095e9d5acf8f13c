// W2's model: a random-init Llama (d = 256, 4 layers, vocab 2048), deterministic (seeded LCG + Box-Muller),
// HF tensor names, so both cramlab and the PyTorch reference can load it from an HF-format folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors } from '../src/io/safetensors';
import type { RawTensor } from '../src/io/safetensors';

export const W2_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 256,
  intermediate_size: 688,
  num_hidden_layers: 4,
  num_attention_heads: 8,
  num_key_value_heads: 8,
  head_dim: 32,
  vocab_size: 2048,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  hidden_act: 'silu',
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'float32',
};

function rng(seed: number): () => number {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

export function randomLlama(seed = 0): { config: Record<string, any>; tensors: Map<string, RawTensor> } {
  const c = W2_CONFIG;
  const normal = rng(seed);
  const t = new Map<string, RawTensor>();
  const add = (name: string, shape: number[], std: number | 'ones') => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = std === 'ones' ? 1 : normal() * std;
    t.set(name, { dtype: 'F32', shape, data } as RawTensor);
  };
  const d = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
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

/** Write the W2 model as an HF folder (config.json + model.safetensors). */
export function writeW2Folder(dir: string, seed = 0): string {
  fs.mkdirSync(dir, { recursive: true });
  const { config, tensors } = randomLlama(seed);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeSafetensors(path.join(dir, 'model.safetensors'), Object.fromEntries(tensors));
  return dir;
}
