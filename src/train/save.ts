// Write a trained model as a standard HF folder: config.json, model.safetensors (HF names),
// generation_config.json, the tokenizer, training.json (machine-readable) and a model card.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { writeSafetensors } from '../io/safetensors';
import { refuseForeignFolder, writeFileAtomic } from '../io/write';

/** What saveModelFolder and writeCard write: a folder holding only these, with training.json, is a model cramlab trained. */
const MODEL_FILES = [
  'config.json',
  'model.safetensors',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'training.json',
  'README.md',
];

/**
 * Refuse `train --out` into a folder that is not a model cramlab trained (another model's weights,
 * foreign files) before any training starts, unless `force`.
 */
export function checkModelOut(dir: string, force: boolean): void {
  refuseForeignFolder(dir, {
    own: MODEL_FILES,
    ours: () => fs.existsSync(path.join(dir, 'training.json')),
    what: 'a trained model',
    force,
    hint: 'give another --out, or --force to replace its files',
  });
}

export interface TrainingRecord {
  name: string;
  model_type: string;
  params: number;
  data: string;
  tokenizer: { type: string; vocab_size: number; trained_on: string };
  seed: number;
  steps: number;
  batch_size: number;
  seq_len: number;
  tokens_seen: number;
  optimizer: Record<string, number | string>;
  backend: string;
  wall_seconds: number;
  train_loss_nats: number;
  heldout: { tokens: number; windows: number; loss_nats: number; loss_bits: number; unigram_entropy_bits: number };
  /** Loss on a small fixed slice (the first `windows` held-out windows) that tests recompute. */
  heldout_slice: { windows: number; seq_len: number; loss_nats: number };
  samples: { prompt: string; greedy: string }[];
  created: string;
}

/** The HF checkpoint files: weights under their HF names, config, generation config, tokenizer. */
export async function saveModelFolder(
  dir: string,
  config: Record<string, any>,
  params: Map<string, tf.Variable>,
  tokenizerDir: string,
): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, p] of params) tensors[name] = { shape: p.shape, data: (await p.data()) as Float32Array };
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const gen = { bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id, do_sample: false };
  writeFileAtomic(path.join(dir, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    writeFileAtomic(path.join(dir, f), fs.readFileSync(path.join(tokenizerDir, f)));
}

/** training.json (machine-readable) and the README.md model card. */
export function writeCard(dir: string, config: Record<string, any>, record: TrainingRecord): void {
  writeFileAtomic(path.join(dir, 'training.json'), JSON.stringify(record, null, 2) + '\n');
  writeFileAtomic(path.join(dir, 'README.md'), modelCard(record, config));
}

const f4 = (x: number) => x.toFixed(4);

export function modelCard(r: TrainingRecord, config: Record<string, any>): string {
  const h = r.heldout;
  const width = config.hidden_size ?? config.d_model;
  const heads = config.num_attention_heads;
  const headText = heads ? `, ${heads} attention heads of ${config.head_dim ?? width / heads}` : '';
  return `---
license: mit
library_name: cramlab
tags: [cramlab, tiny, moby-dick]
---
# ${r.name}

A tiny ${r.model_type} (${r.params.toLocaleString('en-US')} parameters, width ${width}, ${config.num_hidden_layers ?? config.n_layer} layers${headText}) trained from scratch by
\`cramlab train\` (TensorFlow.js, ${r.backend} backend) so that cramlab's experiments run offline on a CPU.
It is a research toy for the [mem]-vector cramming experiments, not a useful language model.

## Data
${r.data}

Tokenizer: ${r.tokenizer.type}, vocabulary ${r.tokenizer.vocab_size}, trained by cramlab on ${r.tokenizer.trained_on}.
Every training row is \`<s>\` followed by ${r.seq_len - 1} tokens from a random offset (seeded).

## Training
| | |
|---|---|
| steps | ${r.steps} × ${r.batch_size} rows × ${r.seq_len} tokens |
| tokens seen | ${r.tokens_seen.toLocaleString('en-US')} (predicted positions) |
| optimizer | ${Object.entries(r.optimizer)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')} |
| seed | ${r.seed} |
| wall time | ${(r.wall_seconds / 60).toFixed(1)} min on ${r.backend} |

## Results (nats/token, bits/token)
| | nats/token | bits/token |
|---|---|---|
| train loss (mean of the last 50 steps) | ${f4(r.train_loss_nats)} | ${f4(r.train_loss_nats / Math.LN2)} |
| held-out loss (${h.tokens.toLocaleString('en-US')} predicted tokens of the held-out chapters) | ${f4(h.loss_nats)} | ${f4(h.loss_bits)} |
| unigram entropy of the tokenizer on the same held-out text | ${f4(h.unigram_entropy_bits * Math.LN2)} | ${f4(h.unigram_entropy_bits)} |

Held-out loss on the fixed slice the tests recompute (first ${r.heldout_slice.windows} windows of ${r.heldout_slice.seq_len}): ${f4(r.heldout_slice.loss_nats)} nats/token.

## Greedy samples
${r.samples.map((s) => `Prompt \`${JSON.stringify(s.prompt)}\`:\n\n> ${(s.prompt + s.greedy).replace(/\n/g, ' ')}`).join('\n\n')}

## Limitations
Trained for minutes to an hour on a 2-core CPU, on one 1 MB book: it spells plausible words and
loops. A prepended [mem] vector steers it, but holds only a few bytes of unseen text (measured
capacity: \`figures/README.md\`), against hundreds of tokens for the paper's billion-parameter models.

Machine-readable numbers: \`training.json\`. Created ${r.created}.
`;
}
