import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTexts } from '../../datasets/index';
import { expandHome, hubSnapshot, isLocal } from '../../io/hub';
import { loadTokenizer, type Tokenizer } from '../../io/tokenizer';
import { num, str, UsageError, type Args } from '../args';
import type { Command } from '../main';

/** Only the tokenizer of a model folder or Hub id (no weights are read). */
async function tokenizerOf(model: string): Promise<Tokenizer> {
  if (isLocal(model)) {
    const dir = path.resolve(expandHome(model));
    if (!fs.existsSync(dir)) throw new UsageError(`model folder '${model}' does not exist`);
    return loadTokenizer(dir);
  }
  return loadTokenizer(
    await hubSnapshot(model, ['tokenizer.json', 'tokenizer_config.json?', 'special_tokens_map.json?']),
  );
}

export const command: Command = {
  name: 'texts',
  summary:
    'show a text set as cramlab compresses it (books, unseen, random, pg19, fanfics or a file) with token statistics',
  usage:
    'texts --texts books|unseen|random|pg19|fanfics|FILE --model M [--max-tokens N] [--count C] [--seed S] [--random-length] [--json]',
  booleans: ['json', 'randomLength'],
  async run(args: Args) {
    const source = str(args, 'texts');
    const tokenizer = await tokenizerOf(str(args, 'model'));
    const maxTokens = args.maxTokens === undefined ? undefined : num(args, 'maxTokens');
    const count = args.count === undefined ? undefined : num(args, 'count');
    const seed = args.seed === undefined ? undefined : num(args, 'seed');
    const texts = await loadTexts(source, {
      tokenizer,
      maxTokens,
      count,
      seed,
      randomLength: Boolean(args.randomLength),
    });
    if (args.json) {
      for (const t of texts) console.log(JSON.stringify(t));
      return;
    }
    for (const t of texts) console.log(`--- ${t.id} (${t.ids.length} tokens, ${t.text.length} chars)\n${t.text}`);
    const lens = texts.map((t) => t.ids.length);
    const chars = texts.reduce((a, t) => a + t.text.length, 0);
    const tokens = lens.reduce((a, b) => a + b, 0);
    if (!texts.length) return console.log('\nno texts');
    console.log(
      `\n${texts.length} texts, tokens per text mean ${(tokens / texts.length).toFixed(1)} min ${Math.min(...lens)} max ${Math.max(...lens)}, ` +
        `${(chars / Math.max(1, tokens)).toFixed(2)} chars/token`,
    );
  },
};
