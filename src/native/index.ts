// The native cram engine (native/, a C N-API addon) as the rest of cramlab sees it: whether it loaded,
// which engine a model gets, and a native copy of a Llama's weights per model.
//   CRAMLAB_ENGINE=native|tfjs   (default: native when the addon loaded and the model is a Llama)
import * as path from 'node:path';
import { createRequire } from 'node:module';
import type { CausalLM } from '../models/types';
import { ModelError } from '../models/types';
import { Llama, llamaInvFreq } from '../models/llama';
import { weightsOf } from './weights';

/** The addon's functions (native/src/addon.cc). */
export interface NativeAddon {
  createLlama(config: Record<string, number | boolean>, invFreq: Float32Array, tensors: Record<string, Float32Array>): NativeHandle;
  dispose(h: NativeHandle): void;
  forwardLogits(h: NativeHandle, embeds: Float32Array, B: number, T: number): Float32Array;
  backwardEmbeds(h: NativeHandle, embeds: Float32Array, dlogits: Float32Array, B: number, T: number): Float32Array;
  cramSteps(h: NativeHandle, state: Record<string, unknown>, S: number): number;
  generate(h: NativeHandle, prefix: Float32Array, P: number, maxNew: number, eos: Int32Array): Int32Array;
  info(): { blas: string; threads: number };
  setThreads(n: number): void;
}
export type NativeHandle = { readonly __nativeHandle: unique symbol };
export type Engine = 'native' | 'tfjs';

const ADDON = path.resolve(__dirname, '../../native/build/Release/cramlab_native.node');
let addon: NativeAddon | undefined;
let loadError = '';
try {
  addon = createRequire(__filename)(ADDON) as NativeAddon;
} catch (e) {
  loadError = (e as Error).message.split('\n')[0];
}

/** The loaded addon, or undefined (nativeUnavailable() says why). */
export function nativeAddon(): NativeAddon | undefined {
  return addon;
}

export function nativeUnavailable(): string {
  return addon ? '' : `the addon ${path.relative(process.cwd(), ADDON)} did not load (${loadError || 'not built'}; build it with: node scripts/build-native.mjs)`;
}

/** Why the native engine cannot run this model ('' when it can). */
export function unsupportedReason(model: CausalLM): string {
  if (handles.has(model)) return '';
  if (!(model instanceof Llama)) return `model_type '${model.info.modelType}' has no native engine (only llama)`;
  if (!weightsOf(model)) return 'the model was not built by loadModel/modelFromTensors (no checkpoint tensors to copy)';
  return '';
}

function requestedEngine(): Engine | 'auto' {
  const v = (process.env.CRAMLAB_ENGINE ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'native' || v === 'tfjs') return v;
  throw new ModelError(`CRAMLAB_ENGINE must be native or tfjs, got '${process.env.CRAMLAB_ENGINE}'`);
}

/** The engine cram() uses for this model. Asking for native where it cannot run is an error. */
export function engineFor(model: CausalLM, requested: Engine | 'auto' = requestedEngine()): Engine {
  if (requested === 'tfjs') return 'tfjs';
  const why = !addon ? nativeUnavailable() : unsupportedReason(model);
  if (requested === 'native' && why) throw new ModelError(`the native engine was requested (CRAMLAB_ENGINE=native) but ${why}`);
  return why ? 'tfjs' : 'native';
}

export interface EngineInfo {
  engine: Engine;
  blas: string;
  threads: number;
  reason: string;
}

/** What cram() runs on by default here (for `cramlab env` and bench records). */
export function engineInfo(): EngineInfo {
  const { blas, threads } = addon ? addon.info() : { blas: '', threads: 1 };
  let requested: Engine | 'auto';
  try {
    requested = requestedEngine();
  } catch (e) {
    return { engine: 'tfjs', blas, threads, reason: (e as Error).message };
  }
  if (!addon) return { engine: 'tfjs', blas, threads, reason: nativeUnavailable() };
  if (requested === 'tfjs') return { engine: 'tfjs', blas, threads, reason: 'CRAMLAB_ENGINE=tfjs' };
  return { engine: 'native', blas, threads, reason: 'addon loaded; used for llama models' };
}

const handles = new WeakMap<CausalLM, NativeHandle>();

/** Whether loadModel/modelFromTensors build this config as a NativeLlama (no tfjs copy of the weights). */
export function nativeWanted(cfg: Record<string, any>): boolean {
  return cfg.model_type === 'llama' && !!addon && requestedEngine() !== 'tfjs';
}

/** A native Llama from a config and its checkpoint tensors by HF name (copied into native memory). */
export function createNative(cfg: Record<string, any>, maxPositions: number, tensors: Record<string, Float32Array>): NativeHandle {
  if (!addon) throw new ModelError(`native engine: ${nativeUnavailable()}`);
  const d = cfg.hidden_size;
  const heads = cfg.num_attention_heads;
  return addon.createLlama(
    {
      hidden_size: d,
      vocab_size: cfg.vocab_size,
      num_hidden_layers: cfg.num_hidden_layers,
      num_attention_heads: heads,
      num_key_value_heads: cfg.num_key_value_heads ?? heads,
      head_dim: cfg.head_dim ?? d / heads,
      intermediate_size: cfg.intermediate_size,
      max_position_embeddings: Number.isFinite(maxPositions) ? maxPositions : 4096,
      rms_norm_eps: cfg.rms_norm_eps ?? 1e-6,
      tied: (cfg.tie_word_embeddings ?? false) && !('lm_head.weight' in tensors),
      attention_bias: 'model.layers.0.self_attn.q_proj.bias' in tensors,
    },
    llamaInvFreq(cfg), // one home for RoPE's frequencies (llama3 scaling applied there)
    tensors,
  );
}

/** Tie a handle to the model it runs (a NativeLlama registers its own). */
export function registerNative(model: CausalLM, h: NativeHandle): void {
  handles.set(model, h);
}

/** The native copy of a Llama's weights: a NativeLlama's own, or made on first use for a tfjs Llama
 *  (freed with model.dispose()). */
export function nativeModel(model: CausalLM): NativeHandle {
  let h = handles.get(model);
  if (h) return h;
  if (!addon) throw new ModelError(`native engine: ${nativeUnavailable()}`);
  const why = unsupportedReason(model);
  if (why) throw new ModelError(`native engine: ${why}`);
  const flat: Record<string, Float32Array> = {};
  for (const [k, t] of weightsOf(model)!()) flat[k] = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data); // read once, copied, dropped
  h = createNative(model.info.raw, model.info.maxPositions, flat);
  handles.set(model, h);
  const dispose = model.dispose.bind(model);
  model.dispose = () => {
    addon!.dispose(h!);
    handles.delete(model);
    dispose();
  };
  return h;
}
