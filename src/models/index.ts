// model_type → architecture. One file per architecture; this table is the only place they meet.
import { GPTNeoX } from './gpt_neox';
import { Llama } from './llama';
import { Mamba } from './mamba';
import { Olmo } from './olmo';
import { Opt } from './opt';
import type { CausalLM } from './types';
import { ModelError } from './types';
import type { Weights } from './weights';

export type Builder = (config: Record<string, any>, weights: Weights) => CausalLM;

export const ARCHITECTURES: Record<string, Builder> = {
  llama: (c, w) => new Llama(c, w),
  gpt_neox: (c, w) => new GPTNeoX(c, w),
  opt: (c, w) => new Opt(c, w),
  mamba: (c, w) => new Mamba(c, w),
  olmo: (c, w) => new Olmo(c, w),
};

export function buildModel(config: Record<string, any>, weights: Weights, source = 'config.json'): CausalLM {
  const type = config.model_type;
  const build = Object.hasOwn(ARCHITECTURES, type) ? ARCHITECTURES[type] : undefined;
  if (!build) {
    throw new ModelError(
      `${source}: model_type '${type}' is not supported; supported: ${Object.keys(ARCHITECTURES).sort().join(', ')}`,
    );
  }
  return build(config, weights);
}

export type { CausalLM, ModelInfo } from './types';
export { ModelError } from './types';
