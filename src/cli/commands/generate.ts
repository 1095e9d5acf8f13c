import { loadModel } from '../../io/checkpoint';
import { greedyGenerate } from '../../generate';
import { num, str, type Args } from '../args';
import type { Command } from '../main';

export const command: Command = {
  name: 'generate',
  summary: 'greedy continuation of a prompt (default: from BOS alone)',
  usage: 'generate --model M [--prompt TEXT] [--max-new-tokens N] [--ids]',
  booleans: ['ids'],
  async run(args: Args) {
    const { model, tokenizer } = await loadModel(str(args, 'model'));
    const prompt = str(args, 'prompt', '');
    const ids = prompt ? tokenizer.encode(prompt) : model.info.bosTokenId != null ? [model.info.bosTokenId] : [];
    if (!ids.length) throw new Error('empty prompt and the model has no bos_token_id: pass --prompt');
    const out = await greedyGenerate(model, ids, { maxNewTokens: num(args, 'maxNewTokens', 100) });
    if (args.ids) console.log(out.join(', '));
    console.log(tokenizer.decode([...ids, ...out]));
  },
};
