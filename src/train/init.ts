// Fresh weights for a config, under the exact HF names the architecture class reads, so a trained
// model saves as a standard checkpoint. HF init: Linear/Embedding weights ~ N(0, 0.02), norms = 1.
import type { RawTensor } from '../io/safetensors';
import { mulberry32, normals } from '../random';

type Shapes = [name: string, shape: number[], kind: 'normal' | 'ones' | 'zeros'][];

function llamaShapes(c: Record<string, any>): Shapes {
  const d = c.hidden_size;
  const H = c.num_attention_heads;
  const hd = c.head_dim ?? d / H;
  const kv = (c.num_key_value_heads ?? H) * hd;
  const I = c.intermediate_size;
  const out: Shapes = [['model.embed_tokens.weight', [c.vocab_size, d], 'normal']];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    out.push(
      [p + 'input_layernorm.weight', [d], 'ones'],
      [p + 'self_attn.q_proj.weight', [H * hd, d], 'normal'],
      [p + 'self_attn.k_proj.weight', [kv, d], 'normal'],
      [p + 'self_attn.v_proj.weight', [kv, d], 'normal'],
      [p + 'self_attn.o_proj.weight', [d, H * hd], 'normal'],
      [p + 'post_attention_layernorm.weight', [d], 'ones'],
      [p + 'mlp.gate_proj.weight', [I, d], 'normal'],
      [p + 'mlp.up_proj.weight', [I, d], 'normal'],
      [p + 'mlp.down_proj.weight', [d, I], 'normal'],
    );
  }
  out.push(['model.norm.weight', [d], 'ones']);
  if (!c.tie_word_embeddings) out.push(['lm_head.weight', [c.vocab_size, d], 'normal']);
  return out;
}

/**
 * Mamba after HF MambaPreTrainedModel._init_weights: A_log = log(1..N) per channel, D = 1,
 * dt_proj weight ~ U(±rank^-0.5), dt_proj bias = softplus⁻¹(dt) with dt log-uniform in
 * [time_step_min, time_step_max], conv1d PyTorch's default U(±1/sqrt(K)), other linears N(0, std).
 */
function mambaInit(c: Record<string, any>, seed: number): Map<string, RawTensor> {
  const d = c.hidden_size;
  const I = c.intermediate_size ?? (c.expand ?? 2) * d;
  const N = c.state_size ?? 16;
  const K = c.conv_kernel ?? 4;
  const R = c.time_step_rank === 'auto' || c.time_step_rank == null ? Math.ceil(d / 16) : c.time_step_rank;
  const std = c.initializer_range ?? 0.02;
  const rand = mulberry32(seed);
  const out = new Map<string, RawTensor>();
  const put = (name: string, shape: number[], data: Float32Array) => out.set(name, { dtype: 'F32', shape, data });
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (2 * rand() - 1) * bound);
  const [dtMin, dtMax, floor] = [c.time_step_min ?? 0.001, c.time_step_max ?? 0.1, c.time_step_floor ?? 1e-4];
  put('backbone.embeddings.weight', [c.vocab_size, d], normals(rand, c.vocab_size * d, std));
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `backbone.layers.${i}.`;
    put(p + 'norm.weight', [d], new Float32Array(d).fill(1));
    put(p + 'mixer.in_proj.weight', [2 * I, d], normals(rand, 2 * I * d, std));
    put(p + 'mixer.conv1d.weight', [I, 1, K], uniform(I * K, 1 / Math.sqrt(K)));
    if (c.use_conv_bias ?? true) put(p + 'mixer.conv1d.bias', [I], uniform(I, 1 / Math.sqrt(K)));
    put(p + 'mixer.x_proj.weight', [R + 2 * N, I], normals(rand, (R + 2 * N) * I, std));
    put(p + 'mixer.dt_proj.weight', [I, R], uniform(I * R, (c.time_step_scale ?? 1) * R ** -0.5));
    put(
      p + 'mixer.dt_proj.bias',
      [I],
      Float32Array.from({ length: I }, () => {
        const dt = Math.max(floor, Math.exp(rand() * (Math.log(dtMax) - Math.log(dtMin)) + Math.log(dtMin)));
        return dt + Math.log(-Math.expm1(-dt)); // softplus⁻¹(dt)
      }),
    );
    put(
      p + 'mixer.A_log',
      [I, N],
      Float32Array.from({ length: I * N }, (_, j) => Math.log((j % N) + 1)),
    );
    put(p + 'mixer.D', [I], new Float32Array(I).fill(1));
    put(p + 'mixer.out_proj.weight', [d, I], normals(rand, d * I, std));
  }
  put('backbone.norm_f.weight', [d], new Float32Array(d).fill(1));
  if (c.tie_word_embeddings === false) put('lm_head.weight', [c.vocab_size, d], normals(rand, c.vocab_size * d, std));
  return out;
}

/** Custom per-architecture initialisers (beyond plain normal/ones/zeros) register here. */
export const INITIALISERS: Record<string, (config: Record<string, any>, seed: number) => Map<string, RawTensor>> = {
  llama: (c, seed) => fromShapes(llamaShapes(c), seed, c.initializer_range ?? 0.02),
  mamba: mambaInit,
};

function fromShapes(shapes: Shapes, seed: number, std: number): Map<string, RawTensor> {
  const rand = mulberry32(seed);
  const out = new Map<string, RawTensor>();
  for (const [name, shape, kind] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = kind === 'normal' ? normals(rand, n, std) : new Float32Array(n).fill(kind === 'ones' ? 1 : 0);
    out.set(name, { dtype: 'F32', shape, data });
  }
  return out;
}

/** Random initial tensors for `config` (deterministic in `seed`). */
export function initTensors(config: Record<string, any>, seed: number): Map<string, RawTensor> {
  const init = INITIALISERS[config.model_type];
  if (!init)
    throw new Error(
      `cramlab train cannot initialise model_type '${config.model_type}' (supported: ${Object.keys(INITIALISERS).join(', ')})`,
    );
  return init(config, seed);
}
