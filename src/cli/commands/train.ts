import * as path from 'node:path';
import { runTraining } from '../../train/run';
import { checkModelOut } from '../../train/save';
import { llamaConfig, mambaConfig, SUITE_TRAINING } from '../../train/suite';
import { num, str, UsageError, type Args } from '../args';
import type { Command } from '../main';

const S = SUITE_TRAINING;

export const command: Command = {
  name: 'train',
  summary: 'train a tiny causal LM from scratch on the books train split (resumable) and save it as an HF folder',
  // Defaults read from SUITE_TRAINING, so --help never drifts from what a run does.
  usage:
    `train --out models/NAME [--arch llama|mamba] [--d 64] [--layers 4 (llama), 6 (mamba)] [--steps ${S.steps}] [--batch ${S.batchSize}] [--seq-len ${S.seqLen}] ` +
    `[--lr ${S.lr}] [--warmup ${S.warmup}] [--weight-decay ${S.weightDecay}] [--clip ${S.clip}] [--seed ${S.seed}] [--run-dir runs/train/NAME] [--tokenizer runs/train/tokenizer] ` +
    `[--vocab-size ${S.vocabSize}] [--eval-every ${S.evalEvery}] [--checkpoint-every ${S.checkpointEvery}] [--max-minutes M] [--bos-prob 1] [--force] [--quiet]`,
  booleans: ['quiet', 'force'],
  async run(args: Args) {
    const out = str(args, 'out');
    checkModelOut(out, Boolean(args.force)); // before any training: never replace another model's files
    const name = path.basename(path.resolve(out));
    const arch = str(args, 'arch', 'llama');
    const d = num(args, 'd', 64);
    const vocab = num(args, 'vocabSize', SUITE_TRAINING.vocabSize);
    const seqLen = num(args, 'seqLen', SUITE_TRAINING.seqLen);
    if (!Number.isInteger(d) || d < 16 || d % 16 !== 0)
      throw new UsageError(`--d must be a positive multiple of 16, got ${d}`);
    if (!Number.isInteger(seqLen) || seqLen < 8)
      throw new UsageError(`--seq-len must be an integer ≥ 8, got ${seqLen}`);
    let config: Record<string, any>;
    if (arch === 'llama') config = llamaConfig(d, num(args, 'layers', 4), vocab, seqLen);
    else if (arch === 'mamba') config = mambaConfig(d, num(args, 'layers', 6), vocab);
    else throw new UsageError(`--arch must be llama or mamba, got '${arch}'`);
    const ints: [string, number][] = [
      ['steps', num(args, 'steps', SUITE_TRAINING.steps)],
      ['batch', num(args, 'batch', SUITE_TRAINING.batchSize)],
      ['layers', config.num_hidden_layers],
    ];
    for (const [k, v] of ints)
      if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${k} must be a positive integer, got ${v}`);
    const maxMinutes = args.maxMinutes === undefined ? undefined : num(args, 'maxMinutes');
    await runTraining({
      ...SUITE_TRAINING,
      name,
      config,
      outDir: out,
      runDir: str(args, 'runDir', path.join('runs', 'train', name)),
      tokenizerDir: str(args, 'tokenizer', path.join('runs', 'train', 'tokenizer')),
      vocabSize: vocab,
      seqLen,
      steps: num(args, 'steps', SUITE_TRAINING.steps),
      batchSize: num(args, 'batch', SUITE_TRAINING.batchSize),
      lr: num(args, 'lr', SUITE_TRAINING.lr),
      warmup: num(args, 'warmup', SUITE_TRAINING.warmup),
      weightDecay: num(args, 'weightDecay', SUITE_TRAINING.weightDecay),
      clip: num(args, 'clip', SUITE_TRAINING.clip),
      seed: num(args, 'seed', SUITE_TRAINING.seed),
      evalEvery: num(args, 'evalEvery', SUITE_TRAINING.evalEvery),
      checkpointEvery: num(args, 'checkpointEvery', SUITE_TRAINING.checkpointEvery),
      logEvery: num(args, 'logEvery', 10),
      maxSeconds: maxMinutes === undefined ? undefined : maxMinutes * 60,
      bosProbability: num(args, 'bosProb', 1),
      quiet: Boolean(args.quiet),
    });
  },
};
