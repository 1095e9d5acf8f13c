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
  vocabSize: 512,
  // Short rows and many small steps: with ~250k tokens to spend on 2 shared cores, 1000 steps of
  // 4 × 64 reached 0.4-0.6 bits/token lower held-out loss than 240 steps of 4 × 256 (first suite).
  seqLen: 64,
  batchSize: 4,
  steps: 1000, // 1000 × 4 × 63 = 252k tokens seen, about 0.48 epoch of the 529k-token train split
  lr: 5e-3,
  warmup: 40,
  minLrRatio: 0.1,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  clip: 1.0,
  seed: 1234,
  evalEvery: 100,
  evalWindows: 16,
  checkpointEvery: 50,
};

/** A Llama of width d: head_dim 16, SwiGLU width ≈ 8d/3 (rounded to 16), 4 layers, tied embeddings. */
export function llamaConfig(d: number, layers = 4, vocab = SUITE_TRAINING.vocabSize, ctx = SUITE_TRAINING.seqLen): Record<string, any> {
  if (d % 16 !== 0) throw new Error(`width ${d} must be a multiple of 16 (head_dim 16)`);
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: d,
    intermediate_size: Math.max(16, Math.round((8 * d) / 3 / 16) * 16),
    num_hidden_layers: layers,
    num_attention_heads: d / 16,
    num_key_value_heads: d / 16,
    head_dim: 16,
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
  { name: 'cram-llama-d16', config: llamaConfig(16) },
  { name: 'cram-llama-d32', config: llamaConfig(32) },
  { name: 'cram-llama-d48', config: llamaConfig(48) },
  { name: 'cram-llama-d64', config: llamaConfig(64) },
  // d = 128 (845k parameters) ran at ~25 tok/s on the shared 2 cores: 245k tokens would take hours.
  // The selective scan makes Mamba ~20× slower per token than a Llama of its size in tfjs on a
  // CPU: a shorter run (160 × 4 × 127 ≈ 81k tokens) on 128-token rows, sized to the shared 2 cores.
  { name: 'cram-mamba-d32', config: mambaConfig(32), training: { seqLen: 128, steps: 160, lr: 3e-3, warmup: 20, evalWindows: 4, checkpointEvery: 10, evalEvery: 40 } },
];
