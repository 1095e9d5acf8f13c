import { loadModel } from '../../io/checkpoint';
import { scoreText } from '../../score';
import { str, UsageError, type Args } from '../args';
import { readTextFile } from '../input';
import type { Command } from '../main';
import { encodeWithin } from '../../io/tokenizer';

export const command: Command = {
  name: 'score',
  summary: 'cross-entropy (bits) and greedy accuracy of the model on a text, without any [mem]',
  usage: 'score --model M (--text TEXT | --file F) [--utf8 strict|replace] [--json]',
  booleans: ['json'],
  async run(args: Args) {
    const text = typeof args.file === 'string' ? readTextFile(args.file, args) : str(args, 'text', '');
    if (!text) throw new UsageError('give --text TEXT or --file F');
    const { model, tokenizer } = await loadModel(str(args, 'model'));
    const ids = encodeWithin(
      tokenizer,
      text,
      model.info.maxPositions,
      typeof args.file === 'string' ? args.file : '--text',
    );
    const s = await scoreText(model, ids);
    if (args.json) {
      console.log(
        JSON.stringify({
          tokens: s.tokens,
          totalBits: s.totalBits,
          bitsPerToken: s.bitsPerToken,
          accuracy: s.accuracy,
          correct: s.correct,
          bitsPerTokenList: s.ceNats.map((x) => x / Math.LN2),
        }),
      );
      return;
    }
    console.log(`tokens            ${s.tokens} (${s.tokens - 1} predicted)`);
    console.log(
      `cross-entropy     ${s.totalBits.toFixed(2)} bits total, ${s.bitsPerToken.toFixed(4)} bits/token (${s.totalNats.toFixed(2)} nats)`,
    );
    console.log(`greedy accuracy   ${(100 * s.accuracy).toFixed(2)}% (${s.correct}/${s.tokens - 1})`);
  },
};
