// The training data stream: one generator per (seed, step), so a resumed run draws the same batches.
import { mulberry32 } from '../random';

/** A generator for one (seed, stream) pair: e.g. the batch of step s is stream s. */
export function rngFor(seed: number, stream: number): () => number {
  return mulberry32(Math.imul(seed ^ 0x9e3779b9, 2654435761) + Math.imul(stream + 1, 40503));
}
