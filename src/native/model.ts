// NativeModel: a model whose weights live only in the native engine, one copy, as the checkpoint stores
// them (bf16/f16 stay 2 bytes a weight; the addon reads the file itself); the tfjs models keep
// folded/rotated fp32 copies of their weights, ~2x the checkpoint. embed() looks rows up natively,
// forward() runs the addon's forward (and its input-gradient for tf.grad; cram() runs natively); the
// tfjs embedding matrix and the tfjs twin (tfjs()) are built only when asked for. One class for every
// architecture: what differs is its NativeSpec (specs.ts).
import * as tf from '@tensorflow/tfjs-core';
import { buildModel } from '../models/index';
import type { CausalLM, ModelInfo } from '../models/types';
import { ModelError } from '../models/types';
import { Weights } from '../models/weights';
import type { TensorSource } from './weights';
import { createNative, nativeAddon, nativeSpec, registerNative, type NativeHandle } from './index';

export class NativeModel implements CausalLM {
  readonly info: ModelInfo;
  readonly numParams: number;
  private handle: NativeHandle;
  private twin?: CausalLM;
  private embedTensor?: tf.Tensor2D;

  /** `source` re-reads the checkpoint for tfjs(); w's arrays are copied, then the caller releases w. */
  constructor(
    cfg: Record<string, any>,
    w: Weights,
    private source: TensorSource,
  ) {
    const spec = nativeSpec(cfg.model_type);
    if (!spec) throw new ModelError(`native engine: model_type '${cfg.model_type}' has no native engine`);
    this.info = spec.info(cfg);
    const shapes = spec.tensors(cfg, (name) => w.has(name));
    this.numParams = Object.values(shapes).reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
    // Lazy: the addon reads each tensor from its file when it fills that slot (in-memory tensors are
    // copied one at a time): no JS copy of the checkpoint.
    try {
      this.handle = createNative(cfg, this.info.maxPositions, w.nativeSources(shapes));
    } catch (e) {
      throw e instanceof ModelError ? e : new ModelError((e as Error).message);
    }
    registerNative(this, this.handle);
  }

  /** The input embedding matrix as a tfjs tensor: a copy of the native one, made on first use (the native
   *  engine never needs it; embeddingStd and embed() read the native copy). */
  get embedMatrix(): tf.Tensor2D {
    if (!this.embedTensor) {
      const V = this.info.vocabSize;
      const rows = nativeAddon()!.embedRows(
        this.handle,
        Int32Array.from({ length: V }, (_, i) => i),
      );
      this.embedTensor = tf.keep(tf.tensor2d(rows, [V, this.info.memDim])); // kept: a tidy() around the first use must not free the cache
    }
    return this.embedTensor;
  }

  /** Rows of the native embedding matrix (one typed-array lookup, no tfjs copy of the matrix). */
  embed(ids: tf.Tensor2D): tf.Tensor3D {
    const [B, T] = ids.shape;
    const flat = ids.dataSync();
    const rows = nativeAddon()!.embedRows(this.handle, flat instanceof Int32Array ? flat : Int32Array.from(flat));
    return tf.tensor3d(rows, [B, T, this.info.memDim]);
  }

  forward(inputsEmbeds: tf.Tensor3D): tf.Tensor3D {
    const [B, T] = inputsEmbeds.shape;
    const V = this.info.vocabSize;
    const addon = nativeAddon()!;
    // The gradient to the input embeddings runs natively too (the weights are frozen: no others).
    const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const x = args[0] as tf.Tensor;
      (args[1] as tf.GradSaveFunc)([x]);
      return {
        value: tf.tensor3d(addon.forwardLogits(this.handle, x.dataSync() as Float32Array, B, T), [B, T, V]),
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const dx = addon.backwardEmbeds(
            this.handle,
            saved[0].dataSync() as Float32Array,
            (dy as tf.Tensor).dataSync() as Float32Array,
            B,
            T,
          );
          return [tf.tensor3d(dx, [B, T, this.info.memDim])];
        },
      };
    });
    return f(inputsEmbeds) as tf.Tensor3D;
  }

  /** The same checkpoint as a tfjs model (the tfjs engine), built on first use, freed with dispose(). */
  tfjs(): CausalLM {
    if (!this.twin) {
      const w = new Weights(this.source(), 'checkpoint');
      this.twin = buildModel(this.info.raw, w);
      this.twin.info.eosTokenIds = this.info.eosTokenIds;
      w.release();
    }
    return this.twin;
  }

  dispose(): void {
    nativeAddon()!.dispose(this.handle);
    this.embedTensor?.dispose();
    this.twin?.dispose();
  }
}

/** The name the Llama-only engine gave it (a NativeModel of any architecture). */
export { NativeModel as NativeLlama };

/** The model the tfjs engine runs: a NativeModel's tfjs twin, any other model itself. */
export function tfjsModel(model: CausalLM): CausalLM {
  return model instanceof NativeModel ? model.tfjs() : model;
}
