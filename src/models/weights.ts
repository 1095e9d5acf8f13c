// A checkpoint's tensors by HF name, with shape checks that name the culprit.
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import type { RawTensor, TensorLocation } from '../models/types';
import { ModelError } from './types';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);
/** The dtypes the native engine reads from the file itself (F64 is narrowed here first). */
const NATIVE_DTYPES = new Set(['F32', 'F16', 'BF16']);

/** A tensor the native engine reads from its file: where, as what, and the name its errors give the source. */
export interface NativeTensorSource extends TensorLocation {
  dtype: string;
  label: string;
}

/** Index of the first NaN/±Inf, or -1 (a plain loop: findIndex's callback is ~10x slower on 100M values). */
function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v - v !== 0) return i;
  }
  return -1;
}

let gcFn: (() => void) | null | undefined;

/**
 * A full garbage collection now, where V8 allows one (the way jest's leak detector gets it). Reading a
 * checkpoint leaves its per-tensor arrays as garbage (hundreds of MB); V8 frees array buffers only
 * when it collects, and a native cram() call that holds the main thread can start before that
 * happens, so the garbage could sit beside the activations at the peak (W3 through bench/rss.ts, without this:
 * 1064 MiB in one run, 1175 in another; with it 1071).
 */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    gcFn = typeof (globalThis as any).gc === 'function' ? (globalThis as any).gc : null;
    if (!gcFn) {
      try {
        v8.setFlagsFromString('--expose-gc');
        gcFn = vm.runInNewContext('gc') as () => void;
      } catch {
        gcFn = null;
      } finally {
        v8.setFlagsFromString('--no-expose-gc');
      }
    }
  }
  gcFn?.();
}

export class Weights {
  private used = new Set<string>();
  private made: tf.Tensor[] = [];

  /** trainable: make tf.Variables (for training the embedded models); otherwise frozen tensors. */
  constructor(
    private raw: Map<string, RawTensor>,
    private source = 'checkpoint',
    private trainable = false,
  ) {}

  has(name: string): boolean {
    return this.raw.has(name);
  }

  names(): string[] {
    return [...this.raw.keys()];
  }

  /** The tensor `name` as float32, checked against `shape` (from the config). */
  get(name: string, shape: number[]): tf.Tensor {
    const values = tf.tensor(this.array(name, shape), shape, 'float32');
    const out = this.trainable ? tf.variable(values, true, name) : values;
    if (this.trainable) values.dispose();
    this.made.push(out);
    return out;
  }

  private check(name: string, t: RawTensor | undefined, shape: number[]): asserts t is RawTensor {
    if (!t) throw new ModelError(`${this.source}: tensor '${name}' is missing`);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new ModelError(`${this.source}: tensor '${name}' has shape [${t.shape}] but the config implies [${shape}]`);
    }
    // Every weight is a float: an integer or boolean tensor here is a mislabelled checkpoint.
    if (t.read && !FLOAT_DTYPES.has(t.dtype)) throw this.notFloat(name, t);
  }

  private notFloat(name: string, t: RawTensor): ModelError {
    return new ModelError(
      `${this.source}: tensor '${name}' is ${t.dtype}, but a float weight (F32/F16/BF16/F64) is needed`,
    );
  }

  /** The raw values of `name`, with get()'s checks, and no backend tensor (the native engine copies them). */
  array(name: string, shape: number[]): Float32Array {
    const t = this.raw.get(name);
    this.check(name, t, shape);
    // A file's tensor is read afresh (not kept by the map): the caller copies it and drops it.
    const data = t.read ? t.read() : t.data;
    if (!(data instanceof Float32Array)) throw this.notFloat(name, t);
    const bad = firstNonFinite(data);
    if (bad >= 0)
      throw new ModelError(
        `${this.source}: tensor '${name}' holds ${data[bad]} at flat index ${bad} (weights must be finite)`,
      );
    this.used.add(name);
    return data;
  }

  /**
   * What the native engine reads for `name`: where a file's F32/BF16/F16 tensor lies (the engine reads
   * the bytes itself, keeps matrices as stored and checks that every value is finite), else array().
   * Same shape and dtype checks as array().
   */
  nativeSource(name: string, shape: number[]): Float32Array | NativeTensorSource {
    const t = this.raw.get(name);
    if (!t?.location || !NATIVE_DTYPES.has(t.dtype)) return this.array(name, shape);
    this.check(name, t, shape);
    this.used.add(name);
    return { ...t.location, dtype: t.dtype, label: this.source };
  }

  /** lazyArrays() for the native engine: nativeSource() per name. */
  nativeSources(
    shapes: Record<string, number[]>,
    read: Record<string, Float32Array> = {},
  ): Record<string, Float32Array | NativeTensorSource> {
    const out: Record<string, Float32Array | NativeTensorSource> = {};
    for (const [name, shape] of Object.entries(shapes)) {
      if (name in read) Object.defineProperty(out, name, { enumerable: true, configurable: true, value: read[name] });
      else
        Object.defineProperty(out, name, {
          enumerable: true,
          configurable: true,
          get: () => this.nativeSource(name, shape),
        });
    }
    return out;
  }

  /**
   * An object with one enumerable getter per name of `shapes`: each access runs array() (reads,
   * widens and checks that tensor) and returns a fresh Float32Array, so a consumer that copies the
   * tensors one at a time (the native engine) keeps one of them alive in JS, not the checkpoint.
   * `read` holds arrays the caller has already read with array() (handed out as they are, not read again).
   */
  lazyArrays(shapes: Record<string, number[]>, read: Record<string, Float32Array> = {}): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const [name, shape] of Object.entries(shapes)) {
      if (name in read) Object.defineProperty(out, name, { enumerable: true, configurable: true, value: read[name] });
      else
        Object.defineProperty(out, name, { enumerable: true, configurable: true, get: () => this.array(name, shape) });
    }
    return out;
  }

  /** Like get, or undefined when absent (biases, optional projections). */
  maybe(name: string, shape: number[]): tf.Tensor | undefined {
    return this.raw.has(name) ? this.get(name, shape) : undefined;
  }

  /** Names of checkpoint tensors no get() asked for (checked after the model is built). */
  unused(): string[] {
    return this.names().filter((n) => !this.used.has(n));
  }

  /** Drop the raw buffers once every tensor is on the backend, and free what reading them left. */
  release(): void {
    this.raw.clear();
    collectGarbage();
  }

  /** Every tensor handed out so far (the trainable variables, when trainable). */
  tensors(): tf.Tensor[] {
    return [...this.made];
  }

  count(): number {
    return this.made.reduce((n, t) => n + t.size, 0);
  }
}
