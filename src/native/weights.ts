// Where a model's checkpoint tensors can be read again for the native engine. The tfjs models fold
// norms into their weights, so the native engine starts from the checkpoint's own tensors; a thunk
// (not the arrays) is kept so the JS copies are not held alive next to the tfjs tensors.
import type { RawTensor } from '../models/types';

export type TensorSource = () => Map<string, RawTensor>;

const sources = new WeakMap<object, TensorSource>();

export function rememberWeights(model: object, source: TensorSource): void {
  sources.set(model, source);
}

export function weightsOf(model: object): TensorSource | undefined {
  return sources.get(model);
}
