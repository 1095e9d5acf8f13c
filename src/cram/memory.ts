// How much memory one cram batch needs, per engine, checked before anything is allocated: a text
// too long for the machine fails at once with one line, not after the weights are loaded and the
// first step runs out of memory (or the wasm heap aborts the process).
//   native: the activations each layer keeps for the backward (the per-position buffers of
//           native/src/<arch>.c, counted here from the config), one backward scratch, the input and
//           its gradient, and the logits and their gradient of one text per thread (only the N-1
//           scored rows go through lm_head, in chunks of ≤ 128 MB).
//   tfjs:   the logits and their softmax/gradient (3·V per position) and ~16 hidden-width
//           activations per position and layer (tf.grad keeps the whole graph).
import { assertFitsMemory, availableMemoryBytes, MemoryLimitError } from '../backend';
import type { CausalLM } from '../models/types';
import { nativeAddon, type Engine } from '../native/index';

/** Floats one position keeps per layer for the native backward: residual and normed inputs, q, k, v,
 *  attention output, the MLP's three intermediates (Mamba: its scan states instead of attention). */
function nativeFloatsPerLayer(raw: Record<string, any>, d: number): number {
  const heads = raw.num_attention_heads ?? 1;
  const hd = raw.head_dim ?? d / heads;
  const q = heads * hd;
  const kv = (raw.num_key_value_heads ?? heads) * hd;
  const I = raw.intermediate_size ?? raw.ffn_dim ?? 4 * d;
  if (raw.model_type === 'mamba') return d + 8 * I + I * (raw.state_size ?? 16);
  return 4 * d + 2 * q + 2 * kv + 3 * I + heads;
}

/**
 * Bytes a forward + backward of B texts of up to L tokens behind K mem vectors keeps alive on
 * `engine` (an estimate: buffers the engine allocates per batch, not the weights).
 */
export function cramBytes(model: Pick<CausalLM, 'info'>, B: number, L: number, K: number, engine: Engine): number {
  const { vocabSize: V, hiddenSize: d, memDim, numLayers, raw } = model.info;
  const T = K + L;
  if (engine === 'tfjs') return 4 * B * T * (3 * V + 16 * d * numLayers);
  const perLayer = nativeFloatsPerLayer(raw, d);
  const threads = Math.max(1, Math.min(B, nativeAddon()?.info().threads ?? 1));
  // with more than one thread each text group has its own activations beside group 0's whole batch
  const acts = B * T * (numLayers * perLayer + perLayer) * (threads > 1 ? 2 : 1);
  const io = B * T * (2 * memDim + d); // input, its gradient, dL/dhidden
  // cram.c holds the logits in chunks of ≤ 2^25 floats (LOGITS_CHUNK_FLOATS), ≥ 16 rows
  const rows = Math.min(Math.max(0, L - 1), Math.max(16, Math.floor(2 ** 25 / V)));
  const logits = threads * 2 * rows * V;
  return 4 * (acts + io + logits);
}

/** What the engine already holds for a model from an earlier call (its buffers only ever grow). */
const granted = new WeakMap<CausalLM, number>();

const gib = (b: number) => (b / 2 ** 30).toFixed(b < 2 ** 30 ? 3 : 1);

/**
 * Refuse, with one line naming the estimate and the free memory, a batch that cannot fit. The tfjs
 * engine also keeps its backend's own limit (the 32-bit wasm heap).
 */
export function assertCramFits(model: CausalLM, texts: number[][], K: number, engine: Engine): void {
  const L = Math.max(...texts.map((t) => t.length));
  const bytes = cramBytes(model, texts.length, L, K, engine);
  const what = `cramming ${texts.length} texts of up to ${L} tokens`;
  if (engine === 'tfjs') assertFitsMemory(bytes, what);
  const held = engine === 'native' ? (granted.get(model) ?? 0) : 0;
  const free = availableMemoryBytes();
  if (bytes > free.bytes + held)
    throw new MemoryLimitError(
      `${what} needs about ${gib(bytes)} GiB (${engine} engine: activations of ${K} + ${L} positions × ${model.info.numLayers} layers, and logits), more than the ${gib(free.bytes + held)} GiB free (${free.source}): give shorter texts or a smaller batch`,
    );
  if (engine === 'native') granted.set(model, Math.max(held, bytes));
}
