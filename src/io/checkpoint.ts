// loadModel: a local folder or a Hub id → a frozen CausalLM, its tokenizer and where they came from.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { initBackend } from '../backend';
import { buildModel } from '../models/index';
import type { CausalLM } from '../models/types';
import { ModelError } from '../models/types';
import { collectGarbage, Weights } from '../models/weights';
import { loadTokenizer, type Tokenizer } from './tokenizer';
import { validateConfig } from './config';
import { checkedFile, readJson } from './files';
import { checkRepoName, expandHome, HubError, hubSnapshot, isLocal } from './hub';
import { readSafetensors, streamFile, type RawTensor } from './safetensors';
import { rememberWeights } from '../native/weights';
import { nativeWanted } from '../native/index';
import { NativeModel } from '../native/model';

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
  const hash = createHash('sha256').update(fs.readFileSync(path.join(dir, 'config.json')));
  // In chunks (readSafetensors' onBytes): a weight file may be past 2 GiB; same bytes, same hash.
  for (const file of weightFiles(dir)) streamFile(file, (bytes) => hash.update(bytes));
  return hash.digest('hex');
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

/** The shard files an index names, each a plain name inside the model folder (checked before any read). */
function shardNames(index: string): string[] {
  const map = readJson(index, 'the shard index').weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new ModelError(`${index}: no weight_map object`);
  const names = [...new Set(Object.values<unknown>(map))];
  for (const f of names) {
    if (typeof f !== 'string')
      throw new ModelError(`${index}: weight_map names a shard ${JSON.stringify(f)} that is not a string`);
    try {
      checkRepoName(f, 'shard');
    } catch (e) {
      throw new ModelError(`${index}: ${(e as HubError).message}`);
    }
  }
  return names as string[];
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

  const hash = createHash('sha256').update(fs.readFileSync(cfgFile));
  const raw = new Map<string, RawTensor>();
  for (const file of weightFiles(dir)) {
    // The whole file, data included: two trainings of one architecture differ only in the data.
    const { tensors } = readSafetensors(file, undefined, (bytes) => hash.update(bytes));
    for (const [k, v] of tensors) raw.set(k, v);
  }
  const weights = new Weights(raw, path.basename(dir));
  const reread = () => new Map(weightFiles(dir).flatMap((f) => [...readSafetensors(f).tensors]));
  const model = nativeWanted(config) ? new NativeModel(config, weights, reread) : buildModel(config, weights, cfgFile);
  // A tensor the architecture never read means the config and the weights disagree
  // (an extra layer, a stray name): refuse rather than silently run a different model.
  const unused = weights.unused().filter((n) => !DERIVED_BUFFER.test(n));
  if (unused.length) {
    model.dispose();
    const shown = unused.slice(0, 5).join(', ') + (unused.length > 5 ? `, ... (${unused.length} in all)` : '');
    throw new ModelError(
      `${dir}: tensors not used by the ${config.model_type} config (${config.num_hidden_layers} layers): ${shown}`,
    );
  }
  weights.release();
  rememberWeights(model, reread); // native engine
  // The generation config's eos ids win: stories260K ends a story with BOS, say.
  const genEos = generationConfig.eos_token_id;
  if (genEos != null) model.info.eosTokenIds = Array.isArray(genEos) ? genEos : [genEos];
  const tokenizer = loadTokenizer(dir);
  return { model, tokenizer, id: idOrPath, dir, config, generationConfig, weightsHash: hash.digest('hex') };
}

/** Build a model straight from a config and tensors (tests, training). */
export function modelFromTensors(config: Record<string, any>, tensors: Map<string, RawTensor>): CausalLM {
  const weights = new Weights(tensors, 'tensors');
  const model = nativeWanted(config) ? new NativeModel(config, weights, () => tensors) : buildModel(config, weights);
  rememberWeights(model, () => tensors); // native engine
  collectGarbage(); // what reading a file's tensors (readSafetensors is lazy) left behind
  return model;
}
