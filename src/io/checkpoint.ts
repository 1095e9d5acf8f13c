// loadModel: a local folder or a Hub id → a frozen CausalLM, its tokenizer and where they came from.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../backend';
import { buildModel } from '../models/index';
import type { CausalLM } from '../models/types';
import { ModelError } from '../models/types';
import { collectGarbage, Weights } from '../models/weights';
import { loadTokenizer, type Tokenizer } from './tokenizer';
import { checkConfigTensors, validateConfig } from './config';
import { checkedFile, clean, readJson } from './files';
import { checkRepoName, expandHome, HubError, hubSnapshot, isLocal } from './hub';
import { readSafetensors, setHalfWidener, type RawTensor } from './safetensors';
import { startWeightsHash, weightsHash } from './weights-hash';
import { rememberWeights } from '../native/weights';
import { nativeAddon, nativeWanted } from '../native/index';
import { NativeModel } from '../native/model';

// The tfjs engine's F16/BF16 reads widen in C (vectorised) when the addon loaded, else in the JS loop.
if (nativeAddon()) setHalfWidener(nativeAddon()!.widenHalf);

export interface LoadedModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** What the user passed (Hub id or path). */
  id: string;
  /** The folder the files were read from. */
  dir: string;
  config: Record<string, any>;
  generationConfig: Record<string, any>;
  /** sha256 over config.json and the weight files (data included): identifies the weights. */
  weightsHash: string;
}

/** The weightsHash loadModel gives a local folder, without building the model (figures, record checks). */
export function weightsHashOf(dir: string): string {
  return weightsHash(path.join(dir, 'config.json'), weightFiles(dir));
}

const HUB_FILES = [
  'config.json',
  'generation_config.json?',
  'tokenizer.json',
  'tokenizer_config.json?',
  'special_tokens_map.json?',
  'model.safetensors.index.json?',
];

async function resolveFolder(idOrPath: string): Promise<string> {
  if (isLocal(idOrPath)) {
    const dir = path.resolve(expandHome(idOrPath));
    if (!fs.existsSync(dir)) throw new ModelError(`model folder '${idOrPath}' does not exist`);
    if (!fs.statSync(dir).isDirectory())
      throw new ModelError(`'${idOrPath}' is a file; pass the folder holding config.json`);
    return dir;
  }
  const dir = await hubSnapshot(idOrPath, HUB_FILES);
  const index = path.join(dir, 'model.safetensors.index.json');
  const shards = fs.existsSync(index) ? shardNames(index) : ['model.safetensors'];
  await hubSnapshot(idOrPath, shards);
  return dir;
}

/** An index's weight_map (tensor → shard), each shard a plain name inside the model folder (checked before any read). */
function weightMap(index: string): Map<string, string> {
  const map = readJson(index, 'the shard index').weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new ModelError(`${index}: no weight_map object`);
  for (const f of new Set(Object.values<unknown>(map))) {
    if (typeof f !== 'string')
      throw new ModelError(`${index}: weight_map names a shard ${JSON.stringify(f)} that is not a string`);
    try {
      checkRepoName(f, 'shard');
    } catch (e) {
      throw new ModelError(`${index}: ${(e as HubError).message}`);
    }
  }
  return new Map(Object.entries(map as Record<string, string>));
}

/** The shard files an index names. */
function shardNames(index: string): string[] {
  return [...new Set(weightMap(index).values())];
}

function weightFiles(dir: string): string[] {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return [checkedFile(dir, single)];
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    checkedFile(dir, index);
    return shardNames(index).map((f) => {
      const file = path.join(dir, f);
      if (!fs.existsSync(file)) throw new ModelError(`${index}: shard '${f}' is missing from ${dir}`);
      return checkedFile(dir, file);
    });
  }
  if (fs.existsSync(path.join(dir, 'pytorch_model.bin'))) {
    throw new ModelError(
      `${dir}: only pytorch_model.bin found; cramlab reads safetensors only (no pickle): convert it or pick a safetensors revision`,
    );
  }
  throw new ModelError(`${dir}: no model.safetensors or model.safetensors.index.json`);
}

/**
 * Every tensor of the checkpoint in `dir` by name. Sharded: each tensor from the shard the index
 * names; a tensor in two shards, or in a shard the index does not name for it, is refused.
 * A safetensors `__metadata__` entry naming a tensor of the checkpoint ("model.embed_tokens.weight":
 * "lm_head.weight": how `save_model` stores tied weights once) makes the missing name a second name of
 * that tensor; the model's shape check then applies to it as to any tensor.
 */
function readCheckpoint(dir: string): Map<string, RawTensor> {
  const files = weightFiles(dir);
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  const map = files.length === 1 && path.basename(files[0]) === 'model.safetensors' ? undefined : weightMap(indexFile);
  const raw = new Map<string, RawTensor>();
  const from = new Map<string, string>();
  const aliases: [string, string][] = [];
  for (const file of files) {
    const shard = path.relative(dir, file);
    const { tensors, metadata } = readSafetensors(file);
    for (const [name, t] of tensors) {
      if (from.has(name))
        throw new ModelError(`${dir}: tensor '${clean(name)}' is in two shards, ${from.get(name)} and ${shard}`);
      raw.set(name, t);
      from.set(name, shard);
    }
    for (const [alias, target] of Object.entries(metadata))
      if (typeof target === 'string' && alias !== 'format') aliases.push([alias, target]);
  }
  if (map) {
    for (const [name, shard] of from)
      if (map.get(name) !== shard && !DERIVED_BUFFER.test(name))
        throw new ModelError(
          `${indexFile}: tensor '${clean(name)}' is in shard ${shard}, but the weight_map ${map.has(name) ? `names ${map.get(name)}` : 'does not list it'}`,
        );
    for (const [name, shard] of map)
      if (!raw.has(name))
        throw new ModelError(
          `${indexFile}: weight_map puts tensor '${clean(name)}' in ${shard}, which does not hold it`,
        );
  }
  for (const [alias, target] of aliases) if (!raw.has(alias) && raw.has(target)) raw.set(alias, raw.get(target)!);
  return raw;
}

/** Buffers HF saves but recomputes on load (rotary frequencies, causal masks): not weights, never used. */
const DERIVED_BUFFER = /\.(rotary_emb\.inv_freq|attention\.bias|attention\.masked_bias)$/;

/** Load a checkpoint folder (or Hub id) into the current backend. */
export async function loadModel(idOrPath: string): Promise<LoadedModel> {
  await initBackend();
  const dir = await resolveFolder(idOrPath);
  const cfgFile = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgFile)) throw new ModelError(`${dir}: no config.json (is this a Hugging Face model folder?)`);
  const config = readJson(checkedFile(dir, cfgFile), 'config.json');
  validateConfig(config, cfgFile);
  const genFile = path.join(dir, 'generation_config.json');
  const generationConfig = fs.existsSync(genFile) ? readJson(checkedFile(dir, genFile), 'generation_config.json') : {};

  const raw = readCheckpoint(dir);
  checkConfigTensors(config, (n) => raw.has(n), cfgFile);
  const weights = new Weights(raw, path.basename(dir));
  const reread = () => readCheckpoint(dir);
  // the weights' hash on another core while the model is built (both read the files from the page cache)
  const hashing = startWeightsHash(cfgFile, weightFiles(dir));
  let model: CausalLM | undefined;
  try {
    model = nativeWanted(config) ? new NativeModel(config, weights, reread) : buildModel(config, weights, cfgFile);
    // A tensor the architecture never read means the config and the weights disagree
    // (an extra layer, a stray name): refuse rather than silently run a different model.
    const unused = weights.unused().filter((n) => !DERIVED_BUFFER.test(n));
    if (unused.length) {
      const shown = clean(unused.slice(0, 5).join(', ')) + (unused.length > 5 ? `, ... (${unused.length} in all)` : '');
      throw new ModelError(
        `${dir}: tensors not used by the ${config.model_type} config (${config.num_hidden_layers} layers): ${shown}`,
      );
    }
    weights.release();
    rememberWeights(model, reread); // native engine
    // The generation config's eos ids win: stories260K ends a story with BOS, say.
    const genEos = generationConfig.eos_token_id;
    if (genEos != null) model.info.eosTokenIds = Array.isArray(genEos) ? genEos : [genEos];
    const tokenizer = fitTokenizer(loadTokenizer(dir), model.info.vocabSize, dir);
    const weightsHash = await hashing.hash.catch((e: Error) => {
      throw new ModelError(`${dir}: ${e.message}`);
    });
    return { model, tokenizer, id: idOrPath, dir, config, generationConfig, weightsHash };
  } catch (e) {
    hashing.cancel();
    model?.dispose();
    throw e;
  }
}

/**
 * A tokenizer with more ids than the model has embeddings: its encode() refuses an id past the
 * model's vocabulary with one line (instead of tfjs's "GatherV2: the index value ... is not in ...").
 */
function fitTokenizer(tok: Tokenizer, vocab: number, dir: string): Tokenizer {
  if (tok.vocabSize <= vocab) return tok;
  const encode = tok.encode;
  return {
    ...tok,
    encode: (text, opts) => {
      const ids = encode(text, opts);
      const bad = ids.find((id) => id >= vocab);
      if (bad !== undefined)
        throw new ModelError(
          `${dir}: the tokenizer gave token id ${bad}, but the model has only ${vocab} (vocab_size); tokenizer.json (${tok.vocabSize} tokens) does not belong to this model`,
        );
      return ids;
    },
  };
}

/** Build a model straight from a config and tensors (tests, training). */
export function modelFromTensors(config: Record<string, any>, tensors: Map<string, RawTensor>): CausalLM {
  const weights = new Weights(tensors, 'tensors');
  const model = nativeWanted(config) ? new NativeModel(config, weights, () => tensors) : buildModel(config, weights);
  rememberWeights(model, () => tensors); // native engine
  collectGarbage(); // what reading a file's tensors (readSafetensors is lazy) left behind
  return model;
}
