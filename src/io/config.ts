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
];
const POSITIVE_FLOATS = ['rms_norm_eps', 'layer_norm_eps', 'layer_norm_epsilon', 'rope_theta'];

export function validateConfig(cfg: Record<string, any>, file: string): void {
  const type = cfg.model_type;
  if (typeof type !== 'string' || !(type in ARCHITECTURES)) {
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
}
