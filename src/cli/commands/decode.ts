import { decode } from '../../decode';
import { loadModel } from '../../io/checkpoint';
import { idsSha256, loadMem } from '../../mem-file';
import { str, UsageError, type Args } from '../args';
import type { Command } from '../main';

export const command: Command = {
  name: 'decode',
  summary: 'greedily decode the text held by a .cram file (refuses a file made with another model)',
  usage: 'decode FILE.cram --model M [--check]',
  booleans: ['check'],
  async run(args: Args) {
    const file = args._[0];
    if (!file) throw new UsageError('give the .cram file: decode FILE.cram --model M');
    const loaded = await loadModel(str(args, 'model'));
    const mem = loadMem(file, loaded);
    const { ids, text } = await decode(loaded.model, mem, loaded.tokenizer);
    process.stdout.write(text + '\n');
    const ok = idsSha256(ids) === mem.idsSha256;
    if (args.check || !ok) console.error(ok ? `${file}: ${ids.length} tokens, ids match the encoded text (sha256)` : `${file}: warning: the decoded ids differ from the encoded text (the vectors do not decode it exactly)`);
  },
};
