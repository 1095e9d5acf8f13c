// Statistics of a model's input embedding E [V, d]: std(E), the [mem] init scale, and E's mean row, the
// low-rank bias. Each is one pass in float64: over the native copy in C when the model has one, else over
// the matrix's values read back once (never by tfjs slices: tfjs-wasm's slice reads the whole tensor back
// for every slice, |E|² in all; nor a tfjs copy of a native model's E: 1 GB at a 128k vocabulary).
import type { CausalLM } from '../models/types';
import { existingNative, nativeAddon } from '../native/index';

const stdCache = new WeakMap<CausalLM, number>();
const meanRowCache = new WeakMap<CausalLM, Float32Array>();

/** std of all entries of E, unbiased (torch.std), computed once per model. */
export function embeddingStd(model: CausalLM): number {
  let s = stdCache.get(model);
  if (s === undefined) {
    const h = existingNative(model);
    s = h ? nativeAddon()!.embeddingStats(h).std : stdOf(model.embedMatrix.dataSync() as Float32Array);
    stdCache.set(model, s);
  }
  return s;
}

/** E's mean row (d values; torch's E.mean(0)), computed once per model; a copy, the caller's to keep. */
export function embeddingMeanRow(model: CausalLM): Float32Array {
  let m = meanRowCache.get(model);
  if (m === undefined) {
    const h = existingNative(model);
    m = h
      ? nativeAddon()!.embeddingMeanRow(h)
      : meanRowOf(model.embedMatrix.dataSync() as Float32Array, model.embedMatrix.shape[1]);
    meanRowCache.set(model, m);
  }
  return Float32Array.from(m);
}

/** Unbiased std of `E`'s values: mean, then squared deviations, both summed in float64. */
function stdOf(E: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < E.length; i++) sum += E[i];
  const mean = sum / E.length;
  let sq = 0;
  for (let i = 0; i < E.length; i++) sq += (E[i] - mean) * (E[i] - mean);
  return Math.sqrt(sq / (E.length - 1));
}

/** Column means of E [rows, d] row-major, summed in float64. */
function meanRowOf(E: Float32Array, d: number): Float32Array {
  const sum = new Float64Array(d);
  for (let i = 0; i < E.length; i += d) for (let c = 0; c < d; c++) sum[c] += E[i + c];
  const rows = E.length / d;
  return Float32Array.from(sum, (s) => s / rows);
}
