// NativeModel: a model whose weights live only in the native engine (one copy) plus the tfjs embedding
// matrix; the tfjs models keep folded/rotated copies of their weights, ~2x the checkpoint. forward() runs
// the addon's forward (and its input-gradient for tf.grad; cram() runs natively); tfjs() builds a tfjs
// twin on request. One class for every architecture: what differs is its NativeSpec (specs.ts).
import * as tf from '@tensorflow/tfjs-core';
import { buildModel } from '../models/index';
import type { CausalLM, ModelInfo } from '../models/types';
import { ModelError } from '../models/types';
import { Weights } from '../models/weights';
import type { TensorSource } from './weights';
import { createNative, nativeAddon, nativeSpec, registerNative, type NativeHandle } from './index';

export class NativeModel implements CausalLM {
  readonly info: ModelInfo;
  readonly embedMatrix: tf.Tensor2D;
  readonly numParams: number;
  private handle: NativeHandle;
  private twin?: CausalLM;

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
    // Lazy: each tensor is read, widened and checked when the addon copies it, then dropped; the
    // embedding is read once, for the tfjs copy and the native one.
    const embedName = spec.embedName((name) => w.has(name));
    const E = w.array(embedName, shapes[embedName]);
    this.numParams = Object.values(shapes).reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
    this.embedMatrix = tf.tensor2d(E, [this.info.vocabSize, this.info.memDim]);
    this.handle = createNative(cfg, this.info.maxPositions, w.lazyArrays(shapes, { [embedName]: E }));
    registerNative(this, this.handle);
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.gather(this.embedMatrix as tf.Tensor, ids) as tf.Tensor3D;
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
    this.embedMatrix.dispose();
    this.twin?.dispose();
  }
}

/** The name the Llama-only engine gave it (a NativeModel of any architecture). */
export { NativeModel as NativeLlama };

/** The model the tfjs engine runs: a NativeModel's tfjs twin, any other model itself. */
export function tfjsModel(model: CausalLM): CausalLM {
  return model instanceof NativeModel ? model.tfjs() : model;
}
