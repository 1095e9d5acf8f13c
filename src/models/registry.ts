// Every model of the paper (Kuratov et al., ACL 2025) plus small teaching models: shapes from their
// real config.json files and the paper's reported single-vector figures where the paper gives them.
// null means "not recorded here", never zero: fill a value in only from the paper itself.

export type Architecture = 'gpt_neox' | 'opt' | 'olmo' | 'llama' | 'mamba';

export interface PaperFigures {
  /** Max tokens decoded exactly from one [mem] vector, PG-19 texts. */
  capacityTokens: number | null;
  /** Token gain: decoded tokens the model could not already predict without [mem]. */
  tokenGain: number | null;
  /** Information gain: bits of cross-entropy removed by the [mem] vector. */
  informationGainBits: number | null;
  /** Capacity on random-word texts (no language-model prior to lean on). */
  randomTextCapacityTokens: number | null;
  /** Largest multi-vector result: how many vectors decoded how many tokens. */
  multiVector: { vectors: number; tokens: number } | null;
}

export interface RegistryEntry {
  /** Hugging Face Hub id (stories260K: the shared local model). */
  id: string;
  architecture: Architecture;
  /** Width of a [mem] vector: hidden size, or word_embed_proj_dim for OPT-350m. */
  memDim: number;
  /** config.json vocab_size (rows of the embedding matrix, often padded past the tokenizer). */
  vocabSize: number;
  /** Tokens the tokenizer actually produces, where it differs from vocabSize and is known. */
  tokenizerVocab: number | null;
  numLayers: number;
  /** In the paper's experiments, or a small model to learn and test with. */
  role: 'paper' | 'teaching';
  paper: PaperFigures | null;
}

/** Upper bound on tokens one vector can hold: d numbers × 16 bits (bf16/fp16) over log2|V| bits per token. */
export function theoreticalCapacity(d: number, vocab: number): number {
  if (!(d > 0) || !(vocab > 1))
    throw new Error(`theoreticalCapacity: need d > 0 and vocab > 1 (got d=${d}, vocab=${vocab})`);
  return (d * 16) / Math.log2(vocab);
}

const none: PaperFigures = {
  capacityTokens: null,
  tokenGain: null,
  informationGainBits: null,
  randomTextCapacityTokens: null,
  multiVector: null,
};
const fig = (f: Partial<PaperFigures>): PaperFigures => ({ ...none, ...f });

type Row = [
  id: string,
  arch: Architecture,
  memDim: number,
  vocab: number,
  tokenizerVocab: number | null,
  layers: number,
  role: 'paper' | 'teaching',
  paper: PaperFigures | null,
];

// prettier-ignore
const ROWS: Row[] = [
  // Pythia (GPT-NeoX): the embedding matrix is padded to 50304 rows (50432 for 6.9b); the tokenizer has 50277.
  ['EleutherAI/pythia-14m',   'gpt_neox',  128, 50304, 50277,  6, 'teaching', null],
  ['EleutherAI/pythia-31m',   'gpt_neox',  256, 50304, 50277,  6, 'teaching', null],
  ['EleutherAI/pythia-70m',   'gpt_neox',  512, 50304, 50277,  6, 'teaching', null],
  ['EleutherAI/pythia-160m',  'gpt_neox',  768, 50304, 50277, 12, 'paper', fig({ capacityTokens: 80, tokenGain: 70.9, informationGainBits: 396, multiVector: { vectors: 32, tokens: 2016 } })],
  ['EleutherAI/pythia-410m',  'gpt_neox', 1024, 50304, 50277, 24, 'paper', none],
  ['EleutherAI/pythia-1.4b',  'gpt_neox', 2048, 50304, 50277, 24, 'paper', fig({ capacityTokens: 160 })],
  ['EleutherAI/pythia-2.8b',  'gpt_neox', 2560, 50304, 50277, 32, 'paper', none],
  ['EleutherAI/pythia-6.9b',  'gpt_neox', 4096, 50432, 50277, 32, 'paper', none],
  // OPT-350m is post-LN with project_in/out: [mem] vectors live in the 512-wide word_embed_proj_dim space.
  ['facebook/opt-350m',       'opt',       512, 50272, null,  24, 'paper', none],
  ['facebook/opt-1.3b',       'opt',      2048, 50272, null,  24, 'paper', none],
  ['allenai/OLMo-1B-0724-hf', 'olmo',     2048, 50304, null,  16, 'paper', none],
  ['princeton-nlp/Sheared-LLaMA-1.3B', 'llama', 2048, 32000, null, 24, 'paper', none],
  ['meta-llama/Llama-3.2-1B', 'llama',    2048, 128256, null, 16, 'paper', fig({ capacityTokens: 512, tokenGain: 426, informationGainBits: 2120, randomTextCapacityTokens: 316, multiVector: { vectors: 16, tokens: 7168 } })],
  ['meta-llama/Llama-3.2-3B', 'llama',    3072, 128256, null, 28, 'paper', fig({ capacityTokens: 1024 })],
  ['meta-llama/Llama-3.1-8B', 'llama',    4096, 128256, null, 32, 'paper', fig({ capacityTokens: 1568, tokenGain: 1094, informationGainBits: 4866, randomTextCapacityTokens: 792 })],
  ['state-spaces/mamba-130m-hf', 'mamba',  768, 50280, null,  24, 'paper', fig({ informationGainBits: 371 })],
  ['state-spaces/mamba-370m-hf', 'mamba', 1024, 50280, null,  48, 'paper', fig({ informationGainBits: 585 })],
  ['state-spaces/mamba-790m-hf', 'mamba', 1536, 50280, null,  48, 'paper', fig({ informationGainBits: 1012 })],
  ['state-spaces/mamba-1.4b-hf', 'mamba', 2048, 50280, null,  48, 'paper', fig({ informationGainBits: 1600 })],
  ['HuggingFaceTB/SmolLM2-135M', 'llama',  576, 49152, null,  30, 'teaching', null],
  ['stories260K',             'llama',      64,   512, null,   5, 'teaching', null],
];

export const REGISTRY: RegistryEntry[] = ROWS.map(
  ([id, architecture, memDim, vocabSize, tokenizerVocab, numLayers, role, paper]) => ({
    id,
    architecture,
    memDim,
    vocabSize,
    tokenizerVocab,
    numLayers,
    role,
    paper,
  }),
);

const byId = new Map(REGISTRY.map((e) => [e.id.toLowerCase(), e]));
const byName = new Map(REGISTRY.map((e) => [e.id.split('/').pop()!.toLowerCase(), e]));

/** The entry for a Hub id (case-insensitive); a local folder such as '../shared/models/stories260K' matches by its last part. */
export function lookupModel(id: string): RegistryEntry | undefined {
  const key = id.replace(/\/+$/, '').toLowerCase();
  return byId.get(key) ?? byName.get(key.split('/').pop()!);
}

/** Like lookupModel, but an unknown id is a clear error listing the known ones. */
export function requireModel(id: string): RegistryEntry {
  const e = lookupModel(id);
  if (!e) throw new Error(`model '${id}' is not in the registry; known: ${REGISTRY.map((r) => r.id).join(', ')}`);
  return e;
}

/** Theoretical single-vector capacity of a registry model (tokens), with the config's vocabulary. */
export function capacityOf(id: string): number {
  const e = requireModel(id);
  return theoreticalCapacity(e.memDim, e.vocabSize);
}

export function paperModels(): RegistryEntry[] {
  return REGISTRY.filter((e) => e.role === 'paper');
}
