// A checkpoint's tensors by HF name, with shape checks that name the culprit.
import * as tf from '@tensorflow/tfjs-core';
import type { RawTensor } from '../io/safetensors';
import { ModelError } from './types';

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

  /** The raw values of `name`, with get()'s checks, and no backend tensor (the native engine copies them). */
  array(name: string, shape: number[]): Float32Array {
    const t = this.raw.get(name);
    if (!t) throw new ModelError(`${this.source}: tensor '${name}' is missing`);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new ModelError(`${this.source}: tensor '${name}' has shape [${t.shape}] but the config implies [${shape}]`);
    }
    // Every weight is a float: an integer or boolean tensor here is a mislabelled checkpoint.
    if (!(t.data instanceof Float32Array)) throw new ModelError(`${this.source}: tensor '${name}' is ${t.dtype}, but a float weight (F32/F16/BF16/F64) is needed`);
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new ModelError(`${this.source}: tensor '${name}' holds ${t.data[bad]} at flat index ${bad} (weights must be finite)`);
    this.used.add(name);
    return t.data;
  }

  /** Like get, or undefined when absent (biases, optional projections). */
  maybe(name: string, shape: number[]): tf.Tensor | undefined {
    return this.raw.has(name) ? this.get(name, shape) : undefined;
  }

  /** Names of checkpoint tensors no get() asked for (checked after the model is built). */
  unused(): string[] {
    return this.names().filter((n) => !this.used.has(n));
  }

  /** Drop the raw buffers once every tensor is on the backend. */
  release(): void {
    this.raw.clear();
  }

  /** Every tensor handed out so far (the trainable variables, when trainable). */
  tensors(): tf.Tensor[] {
    return [...this.made];
  }

  count(): number {
    return this.made.reduce((n, t) => n + t.size, 0);
  }
}
