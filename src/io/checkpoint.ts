// loadModel: a local folder or a Hub id → a frozen CausalLM, its tokenizer and where they came from.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { initBackend } from '../backend';
import { buildModel } from '../models/index';
import type { CausalLM } from '../models/types';
import { ModelError } from '../models/types';
import { Weights } from '../models/weights';
import { loadTokenizer, type Tokenizer } from '../tokenizer';
import { expandHome, hubSnapshot, isLocal } from './hub';
import { readSafetensors, type RawTensor } from './safetensors';
import { rememberWeights } from '../native/weights';

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
  for (const file of weightFiles(dir)) hash.update(fs.readFileSync(file));
  return hash.digest('hex');
}

const HUB_FILES = ['config.json', 'generation_config.json?', 'tokenizer.json', 'tokenizer_config.json?', 'special_tokens_map.json?', 'model.safetensors.index.json?'];

async function resolveFolder(idOrPath: string): Promise<string> {
  if (isLocal(idOrPath)) {
    const dir = path.resolve(expandHome(idOrPath));
    if (!fs.existsSync(dir)) throw new ModelError(`model folder '${idOrPath}' does not exist`);
    if (!fs.statSync(dir).isDirectory()) throw new ModelError(`'${idOrPath}' is a file; pass the folder holding config.json`);
    return dir;
  }
  const dir = await hubSnapshot(idOrPath, HUB_FILES);
  const index = path.join(dir, 'model.safetensors.index.json');
  const shards = fs.existsSync(index) ? [...new Set(Object.values<string>(JSON.parse(fs.readFileSync(index, 'utf8')).weight_map))] : ['model.safetensors'];
  await hubSnapshot(idOrPath, shards);
  return dir;
}

function weightFiles(dir: string): string[] {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return [single];
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    const map = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map ?? {};
    return [...new Set(Object.values<string>(map))].map((f) => path.join(dir, f));
  }
  if (fs.existsSync(path.join(dir, 'pytorch_model.bin'))) {
    throw new ModelError(`${dir}: only pytorch_model.bin found; cramlab reads safetensors only (no pickle): convert it or pick a safetensors revision`);
  }
  throw new ModelError(`${dir}: no model.safetensors or model.safetensors.index.json`);
}

function readJson(file: string, what: string): Record<string, any> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelError(`${file}: cannot read ${what} (${(e as Error).message})`);
  }
}

/** Load a checkpoint folder (or Hub id) into the current backend. */
export async function loadModel(idOrPath: string): Promise<LoadedModel> {
  await initBackend();
  const dir = await resolveFolder(idOrPath);
  const cfgFile = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgFile)) throw new ModelError(`${dir}: no config.json (is this a Hugging Face model folder?)`);
  const config = readJson(cfgFile, 'config.json');
  const genFile = path.join(dir, 'generation_config.json');
  const generationConfig = fs.existsSync(genFile) ? readJson(genFile, 'generation_config.json') : {};

  const hash = createHash('sha256').update(fs.readFileSync(cfgFile));
  const raw = new Map<string, RawTensor>();
  for (const file of weightFiles(dir)) {
    // The whole file, data included: two trainings of one architecture differ only in the data.
    const { tensors } = readSafetensors(file, undefined, (bytes) => hash.update(bytes));
    for (const [k, v] of tensors) raw.set(k, v);
  }
  const weights = new Weights(raw, path.basename(dir));
  const model = buildModel(config, weights, cfgFile);
  weights.release();
  rememberWeights(model, () => new Map(weightFiles(dir).flatMap((f) => [...readSafetensors(f).tensors]))); // native engine
  // The generation config's eos ids win: stories260K ends a story with BOS, say.
  const genEos = generationConfig.eos_token_id;
  if (genEos != null) model.info.eosTokenIds = Array.isArray(genEos) ? genEos : [genEos];
  const tokenizer = loadTokenizer(dir);
  return { model, tokenizer, id: idOrPath, dir, config, generationConfig, weightsHash: hash.digest('hex') };
}

/** Build a model straight from a config and tensors (tests, training). */
export function modelFromTensors(config: Record<string, any>, tensors: Map<string, RawTensor>): CausalLM {
  const model = buildModel(config, new Weights(tensors, 'tensors'));
  rememberWeights(model, () => tensors); // native engine
  return model;
}
