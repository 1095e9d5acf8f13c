// The embedded model suite: what `npm run train:tiny` trains into models/, and the demo's default.
// One tokenizer, one data order, one token budget for the Llama family, so capacity can be
// plotted against size with nothing else changing.

/** The model `cramlab demo` (and the notebooks, by default) use. */
export const DEFAULT_MODEL = 'models/cram-llama-d64';

export interface SuiteEntry {
  name: string;
  config: Record<string, any>;
  /** Overrides of SUITE_TRAINING for this model. */
  training?: Partial<typeof SUITE_TRAINING>;
}

/** Shared by every suite model. */
export const SUITE_TRAINING = {
  // Byte-level (256 bytes + 3 specials): a model that must spell every word uses its context far
  // more than a 512-token BPE model trained as long, and context use is what lets a [mem] vector
  // steer it (the BPE-512 suite of the first session stayed a near-bigram model and crammed nothing).
  vocabSize: 259,
  seqLen: 128,
  batchSize: 8,
  steps: 2000, // 2000 × 8 × 127 = 2.03M bytes seen, about 2 epochs of the ~1M-byte train split
  lr: 1e-2,
  warmup: 50,
  minLrRatio: 0.1,
  // No weight decay: with decay 0.1 the attention weights stayed small (q/k rms 0.08 vs 0.23 in
  // stories260K), attention stayed diffuse, and the [mem] vector could not win it.
  weightDecay: 0,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  clip: 1.0,
  seed: 1234,
  evalEvery: 200,
  evalWindows: 16,
  checkpointEvery: 100,
};

/**
 * A Llama of width d: heads of 8 dimensions (d/8 of them, as stories260K's 8 heads at d = 64),
 * SwiGLU width ≈ 8d/3 (rounded to 16), 4 layers, tied embeddings.
 * Why 8-dimensional heads: every head is one more route by which a [mem] vector can reach a text
 * position. With 16-dimensional heads (the first byte suite) d64's vectors could not fix the
 * hardest bytes (word-initial capitals) however many there were, and capacity flattened with K
 * (4.0, 8.0, 12.7, 14.3 bytes for K = 1, 2, 4, 8); with 8-dimensional heads, same data and steps,
 * 7.7, 11.3, 13.7, 22.3 (and a lower held-out loss, 2.32 vs 2.37 bits/byte).
 */
export function llamaConfig(
  d: number,
  layers = 4,
  vocab = SUITE_TRAINING.vocabSize,
  ctx = SUITE_TRAINING.seqLen,
): Record<string, any> {
  if (d % 16 !== 0) throw new Error(`width ${d} must be a multiple of 16 (head_dim 8, SwiGLU rounding)`);
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: d,
    intermediate_size: Math.max(16, Math.round((8 * d) / 3 / 16) * 16),
    num_hidden_layers: layers,
    num_attention_heads: d / 8,
    num_key_value_heads: d / 8,
    head_dim: 8,
    hidden_act: 'silu',
    max_position_embeddings: ctx,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    initializer_range: 0.02,
    tie_word_embeddings: true,
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
}

/** A Mamba of width d (expand 2, conv 4); 6 layers of d = 32 with state 8 ≈ the parameters of Llama d = 32. */
export function mambaConfig(d: number, layers = 6, vocab = SUITE_TRAINING.vocabSize, state = 8): Record<string, any> {
  return {
    architectures: ['MambaForCausalLM'],
    model_type: 'mamba',
    vocab_size: vocab,
    hidden_size: d,
    intermediate_size: 2 * d,
    expand: 2,
    state_size: state,
    conv_kernel: 4,
    time_step_rank: 'auto',
    time_step_min: 0.001,
    time_step_max: 0.1,
    time_step_floor: 1e-4,
    time_step_scale: 1.0,
    time_step_init_scheme: 'random',
    num_hidden_layers: layers,
    hidden_act: 'silu',
    layer_norm_epsilon: 1e-5,
    initializer_range: 0.02,
    rescale_prenorm_residual: false,
    residual_in_fp32: true,
    use_bias: false,
    use_conv_bias: true,
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
    torch_dtype: 'float32',
  };
}

export const SUITE: SuiteEntry[] = [
  { name: 'cram-llama-d32', config: llamaConfig(32) },
  { name: 'cram-llama-d64', config: llamaConfig(64) },
  // Same data, tokens and schedule as the Llamas; a lower peak lr (1e-2 is the Llamas') keeps the
  // selective scan's step sizes stable.
  { name: 'cram-mamba-d32', config: mambaConfig(32), training: { lr: 3e-3 } },
];
