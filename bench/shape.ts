// A model folder's size and FLOPs per cram step from config.json and the safetensors header alone:
// the parent bench needs them for every row (torch's too, and cramlab rows whose worker crashed)
// without loading 0.5 GB of weights. The FLOP formula is src/flops.ts's, the one both sides use.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cramStepFlops } from '../src/flops';
import { infoFromConfig, type CausalLM } from '../src/models/types';

export interface ModelShape {
  params: number;
  /** Weights as fp32 bytes (what both sides hold in memory). */
  weightBytes: number;
  /** FLOPs of one forward + input-gradient backward of one sequence of T positions. */
  stepFlops: (T: number) => number;
}

export function modelShape(dir: string): ModelShape {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const fd = fs.openSync(path.join(dir, 'model.safetensors'), 'r');
  let header: Record<string, { shape?: number[] }>;
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const json = Buffer.alloc(Number(len.readBigUInt64LE(0)));
    fs.readSync(fd, json, 0, json.length, 8);
    header = JSON.parse(json.toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
  let params = 0;
  for (const [name, t] of Object.entries(header))
    if (name !== '__metadata__') params += (t.shape ?? []).reduce((a, b) => a * b, 1);
  // cramStepFlops reads only info and numParams: a shape-only stand-in for the loaded model.
  const stub = { info: infoFromConfig(cfg), numParams: params } as unknown as CausalLM;
  return { params, weightBytes: 4 * params, stepFlops: (T) => cramStepFlops(stub, 1, T).total };
}
