// FLOPs of one cram step: a forward pass and the backward pass to the input embeddings only
// (the model is frozen, so no weight gradients are formed). Counted as the kernels compute them:
//   linear  y = x W^T        forward 2·in·out per token;  backward dX = dY·W: the same again
//   attention QK^T, P·V      forward 2·2·T²·(H·D) per sequence (full T×T, as computed, mask and all);
//                            backward needs dQ, dK and dP, dV: twice the forward
// Elementwise work (norms, softmax, RoPE, AdamW) is left out: it is O(T·d), not O(T·d²) or O(T²·d).
import type { CausalLM } from './models/types';

export interface StepFlops {
  forward: number;
  backward: number;
  total: number;
  /** Weights that take part in a matMul (lm_head included, the input embedding gather excluded). */
  matmulParams: number;
}

/** Width of the attention scores (H·D) and the number of attention layers, from config.json. */
function attentionShape(cfg: Record<string, any>, hidden: number): { width: number; layers: number } {
  if (cfg.model_type === 'mamba') return { width: 0, layers: 0 };
  const heads = cfg.num_attention_heads ?? cfg.n_head ?? 1;
  const headDim = cfg.head_dim ?? hidden / heads;
  return { width: heads * headDim, layers: cfg.num_hidden_layers ?? cfg.n_layer ?? 0 };
}

/** Matmul weights of a model: every parameter except the input embedding, plus lm_head when it is tied. */
export function matmulParams(model: CausalLM): number {
  const { vocabSize: V, memDim, hiddenSize, raw } = model.info;
  const embed = V * memDim;
  const tied = raw.tie_word_embeddings ?? raw.model_type === 'mamba';
  return model.numParams - embed + (tied ? V * hiddenSize : 0);
}

/** FLOPs of one forward + input-gradient backward for B sequences of T positions (mem included). */
export function cramStepFlops(model: CausalLM, B: number, T: number): StepFlops {
  const P = matmulParams(model);
  const { width, layers } = attentionShape(model.info.raw, model.info.hiddenSize);
  const linear = 2 * P * B * T;
  const attention = layers * 2 * 2 * T * T * width * B;
  const forward = linear + attention;
  const backward = linear + 2 * attention;
  return { forward, backward, total: forward + backward, matmulParams: P };
}
