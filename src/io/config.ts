// config.json checked before any architecture reads it: right types, sane ranges, known model_type.
// An architecture then trusts these fields (a string "64" or a 0 would otherwise surface as NaNs).
import { ARCHITECTURES } from '../models/index';
import { ModelError } from '../models/types';

const POSITIVE_INTS = [
  'hidden_size',
  'num_hidden_layers',
  'vocab_size',
  'num_attention_heads',
  'num_key_value_heads',
  'intermediate_size',
  'max_position_embeddings',
  'head_dim',
];
const POSITIVE_FLOATS = ['rms_norm_eps', 'layer_norm_eps', 'layer_norm_epsilon', 'rope_theta'];

export function validateConfig(cfg: Record<string, any>, file: string): void {
  const type = cfg.model_type;
  if (typeof type !== 'string' || !Object.hasOwn(ARCHITECTURES, type)) {
    throw new ModelError(
      `${file}: model_type '${type}' is not supported; supported: ${Object.keys(ARCHITECTURES).sort().join(', ')}`,
    );
  }
  for (const key of ['hidden_size', 'num_hidden_layers', 'vocab_size']) {
    if (cfg[key] == null) throw new ModelError(`${file}: '${key}' is missing`);
  }
  for (const key of POSITIVE_INTS) {
    const v = cfg[key];
    if (v != null && !(Number.isSafeInteger(v) && v > 0))
      throw new ModelError(`${file}: '${key}' is ${JSON.stringify(v)}, expected a positive integer`);
  }
  for (const key of POSITIVE_FLOATS) {
    const v = cfg[key];
    if (v != null && !(typeof v === 'number' && Number.isFinite(v) && v > 0))
      throw new ModelError(`${file}: '${key}' is ${JSON.stringify(v)}, expected a finite positive number`);
  }
  const { hidden_size: d, num_attention_heads: h, num_key_value_heads: kv } = cfg;
  if (h != null && d % h !== 0)
    throw new ModelError(`${file}: num_attention_heads ${h} does not divide hidden_size ${d}`);
  if (h != null && kv != null && h % kv !== 0)
    throw new ModelError(`${file}: num_key_value_heads ${kv} does not divide num_attention_heads ${h}`);
  for (const r of rulesOf(type)) {
    const v = cfg[r.field];
    if (v === undefined) continue;
    if (typeof r.default === 'boolean' && typeof v !== 'boolean')
      throw new ModelError(`${file}: '${r.field}' is ${JSON.stringify(v)}, expected true or false`);
    if (r.implemented && !r.implemented.includes(v))
      throw new ModelError(
        `${file}: '${r.field}' is ${JSON.stringify(v)}; cramlab's ${type} implements only ${r.implemented.map((x) => JSON.stringify(x)).join(', ')}`,
      );
  }
}

/**
 * A config field that changes the math: its default (HF's, when the field is absent), the values
 * implemented (others are refused by name), and the tensors that a true value implies (layer 0's;
 * any of the names, for checkpoints saved with and without a prefix).
 */
interface FieldRule {
  field: string;
  default: boolean | string;
  implemented?: (boolean | string)[];
  implies?: string[];
}

const TIE: FieldRule = { field: 'tie_word_embeddings', default: false };
const RULES: Record<string, FieldRule[]> = {
  llama: [
    TIE,
    { field: 'hidden_act', default: 'silu', implemented: ['silu'] },
    { field: 'attention_bias', default: false, implies: ['model.layers.0.self_attn.q_proj.bias'] },
    { field: 'mlp_bias', default: false, implemented: [false] },
  ],
  olmo: [
    TIE,
    { field: 'hidden_act', default: 'silu', implemented: ['silu'] },
    { field: 'attention_bias', default: false, implemented: [false] },
  ],
  gpt_neox: [
    TIE,
    { field: 'hidden_act', default: 'gelu', implemented: ['gelu'] },
    { field: 'use_parallel_residual', default: true },
    { field: 'attention_bias', default: true, implies: ['gpt_neox.layers.0.attention.query_key_value.bias'] },
  ],
  opt: [
    { ...TIE, default: true },
    { field: 'activation_function', default: 'relu', implemented: ['relu'] },
    { field: 'do_layer_norm_before', default: true },
    { field: '_remove_final_layer_norm', default: false },
    {
      field: 'enable_bias',
      default: true,
      implies: ['decoder.layers.0.self_attn.q_proj.bias', 'model.decoder.layers.0.self_attn.q_proj.bias'],
    },
    {
      field: 'layer_norm_elementwise_affine',
      default: true,
      implies: ['decoder.layers.0.self_attn_layer_norm.weight', 'model.decoder.layers.0.self_attn_layer_norm.weight'],
    },
  ],
  mamba: [
    { ...TIE, default: true },
    { field: 'hidden_act', default: 'silu', implemented: ['silu'] },
    { field: 'use_bias', default: false, implies: ['backbone.layers.0.mixer.in_proj.bias'] },
    { field: 'use_conv_bias', default: true, implies: ['backbone.layers.0.mixer.conv1d.bias'] },
  ],
};

function rulesOf(type: string): FieldRule[] {
  return Object.hasOwn(RULES, type) ? RULES[type] : [];
}

/** Tensors that no implemented field explains, by model_type: refused by name. */
const UNIMPLEMENTED_TENSORS: Record<string, [string, string][]> = {
  llama: [['model.layers.0.self_attn.o_proj.bias', 'an o_proj bias (attention_bias in full) is not implemented']],
};

/**
 * The config against the tensors present: a field saying biases exist when the checkpoint has none
 * (or the reverse) is refused by name rather than run as another model.
 */
export function checkConfigTensors(cfg: Record<string, any>, has: (name: string) => boolean, file: string): void {
  for (const r of rulesOf(cfg.model_type)) {
    if (!r.implies) continue;
    const value = cfg[r.field] ?? r.default;
    const present = r.implies.find(has);
    if (value && !present)
      throw new ModelError(`${file}: '${r.field}' is true but the checkpoint has no ${r.implies[0]}`);
    if (!value && present)
      throw new ModelError(
        `${file}: '${r.field}' is ${cfg[r.field] === undefined ? `absent (${r.default})` : 'false'} but the checkpoint holds ${present}; set it to true if the weights are right`,
      );
  }
  for (const [name, why] of UNIMPLEMENTED_TENSORS[cfg.model_type] ?? [])
    if (has(name)) throw new ModelError(`${file}: the checkpoint holds ${name}: ${why}`);
}
