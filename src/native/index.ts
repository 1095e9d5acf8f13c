// The native cram engine (native/, a C N-API addon) as the rest of cramlab sees it: whether it loaded,
// which engine a model gets, and a native copy of a model's weights per model. The architectures it runs
// are those with a NativeSpec (specs.ts) that the built addon also knows (info().architectures).
//   CRAMLAB_ENGINE=native|tfjs   (default: native when the addon loaded and it runs the model_type)
import * as path from 'node:path';
import { createRequire } from 'node:module';
import type { CausalLM } from '../models/types';
import { ModelError } from '../models/types';
import { weightsOf } from './weights';
import { NATIVE_SPECS, type NativeSpec } from './specs';
import type { NativeTensorSource } from '../models/weights';

/** The addon's functions (native/src/addon.cc). */
export interface NativeAddon {
  /** tensors: Float32Arrays (copied) or file locations (read by the addon, matrices kept as stored). */
  createModel(
    modelType: string,
    config: Record<string, number | boolean>,
    tensors: Record<string, Float32Array | NativeTensorSource>,
  ): NativeHandle;
  /** = createModel('llama', config, {...tensors, 'rope.inv_freq': invFreq}) */
  createLlama(
    config: Record<string, number | boolean>,
    invFreq: Float32Array,
    tensors: Record<string, Float32Array>,
  ): NativeHandle;
  /** weightBytes: the weights as stored; decodeBytes: what one decode step reads (all but an untied input
   *  embedding); dtype: the matrices' dtypes ('BF16', 'F32', 'F32+BF16'). */
  modelInfo(h: NativeHandle): {
    type: string;
    dIn: number;
    dOut: number;
    vocab: number;
    maxPos: number;
    weightBytes: number;
    decodeBytes: number;
    dtype: string;
  };
  /** mean and unbiased std of the input embedding matrix, summed in float64 over the native copy */
  embeddingStats(h: NativeHandle): { mean: number; std: number };
  /** rows `ids` of the input embedding matrix, [n, dIn] */
  embedRows(h: NativeHandle, ids: Int32Array): Float32Array;
  /** The input embedding's mean row, d_in values, summed in float64 (the low-rank bias b). */
  embeddingMeanRow(h: NativeHandle): Float32Array;
  /** bf16 / f16 bits widened to float32 (vectorised) */
  widenHalf(bits: Uint16Array, dtype: 'BF16' | 'F16'): Float32Array;
  dispose(h: NativeHandle): void;
  forwardLogits(h: NativeHandle, embeds: Float32Array, B: number, T: number): Float32Array;
  backwardEmbeds(h: NativeHandle, embeds: Float32Array, dlogits: Float32Array, B: number, T: number): Float32Array;
  cramSteps(h: NativeHandle, state: Record<string, unknown>, S: number): number;
  generate(h: NativeHandle, prefix: Float32Array, P: number, maxNew: number, eos: Int32Array): Int32Array;
  info(): { blas: string; threads: number; architectures: string };
  setThreads(n: number): void;
  /** GB/s of a streaming read over `megabytes` of memory with the engine's threads (the decode's bound) */
  readBandwidth(megabytes: number): number;
  /** Mamba's selective scan kernel alone (kernels.h): delta, x, dy [B,T,I], A [I,N], Bm, Cm [B,T,N], D [I]. */
  selectiveScan(
    B: number,
    T: number,
    I: number,
    N: number,
    delta: Float32Array,
    A: Float32Array,
    Bm: Float32Array,
    Cm: Float32Array,
    x: Float32Array,
    D: Float32Array,
    dy?: Float32Array,
  ): { y: Float32Array; ddelta?: Float32Array; dx?: Float32Array; dB?: Float32Array; dC?: Float32Array };
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
  return addon
    ? ''
    : `the addon ${path.relative(process.cwd(), ADDON)} did not load (${loadError || 'not built'}; build it with: node scripts/build-native.mjs)`;
}

/** The model types the native engine runs: a spec here and an implementation in the built addon. */
export function nativeTypes(): string[] {
  const built = new Set(addon ? addon.info().architectures.split(', ') : []);
  return Object.keys(NATIVE_SPECS).filter((t) => built.has(t));
}

/** The spec of a model_type the native engine runs, else undefined. */
export function nativeSpec(modelType: string): NativeSpec | undefined {
  return nativeTypes().includes(modelType) ? NATIVE_SPECS[modelType] : undefined;
}

/** Why the native engine cannot run this model ('' when it can). */
export function unsupportedReason(model: CausalLM): string {
  if (handles.has(model)) return '';
  if (!nativeSpec(model.info.modelType))
    return `model_type '${model.info.modelType}' has no native engine (native: ${nativeTypes().join(', ') || 'none'})`;
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
  if (requested === 'native' && why)
    throw new ModelError(`the native engine was requested (CRAMLAB_ENGINE=native) but ${why}`);
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
  return { engine: 'native', blas, threads, reason: `addon loaded; used for ${nativeTypes().join(', ')} models` };
}

const handles = new WeakMap<CausalLM, NativeHandle>();

/** Whether loadModel/modelFromTensors build this config as a NativeModel (no tfjs copy of the weights). */
export function nativeWanted(cfg: Record<string, any>): boolean {
  return !!addon && !!nativeSpec(cfg.model_type) && requestedEngine() !== 'tfjs';
}

/** A native model from a config and its checkpoint tensors by HF name (copied or read into native memory). */
export function createNative(
  cfg: Record<string, any>,
  maxPositions: number,
  tensors: Record<string, Float32Array | NativeTensorSource>,
): NativeHandle {
  if (!addon) throw new ModelError(`native engine: ${nativeUnavailable()}`);
  const spec = nativeSpec(cfg.model_type);
  if (!spec)
    throw new ModelError(
      `native engine: model_type '${cfg.model_type}' has no native engine (native: ${nativeTypes().join(', ')})`,
    );
  const has = (name: string) => name in tensors;
  // Property descriptors, not values: `tensors` may hold lazy getters (Weights.lazyArrays), each read
  // only when the addon copies that tensor, so one tensor at a time is alive in JS.
  const named: Record<string, Float32Array | NativeTensorSource> = {};
  for (const k of Object.keys(tensors))
    Object.defineProperty(named, spec.slot ? spec.slot(k) : k, {
      ...Object.getOwnPropertyDescriptor(tensors, k)!,
      configurable: true,
    });
  for (const [k, v] of Object.entries(spec.derived(cfg)))
    Object.defineProperty(named, k, { value: v, enumerable: true, configurable: true });
  return addon.createModel(cfg.model_type, spec.config(cfg, maxPositions, has), named);
}

/** The native handle a model already has (a NativeModel's, or one made for a tfjs model), else undefined. */
export function existingNative(model: CausalLM): NativeHandle | undefined {
  return handles.get(model);
}

/** Tie a handle to the model it runs (a NativeModel registers its own). */
export function registerNative(model: CausalLM, h: NativeHandle): void {
  handles.set(model, h);
}

/** The native copy of a model's weights: a NativeModel's own, or made on first use for a tfjs model
 *  (freed with model.dispose()). */
export function nativeModel(model: CausalLM): NativeHandle {
  let h = handles.get(model);
  if (h) return h;
  if (!addon) throw new ModelError(`native engine: ${nativeUnavailable()}`);
  const why = unsupportedReason(model);
  if (why) throw new ModelError(`native engine: ${why}`);
  const flat: Record<string, Float32Array> = {};
  for (const [k, t] of weightsOf(model)!())
    flat[k] = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data); // read once, copied, dropped
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
