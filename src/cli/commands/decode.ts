import { decode } from '../../decode';
import { loadModel } from '../../io/checkpoint';
import { idsSha256, loadMem, MemFileError } from '../../mem-file';
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
    // Success needs a text actually decoded (not just the given first token) whose ids hash as stored.
    if (ids.length < 2) throw new MemFileError(`${file}: nothing was decoded (${ids.length} token)`);
    const at = mem.precision && mem.precision !== 'fp32' ? ` stored at ${mem.precision}` : '';
    if (idsSha256(ids) !== mem.idsSha256)
      throw new MemFileError(
        `${file}: the decoded ids differ from the stored ids hash (the vectors${at} do not decode the encoded text exactly, or the file was altered)`,
      );
    if (args.check)
      console.error(
        `${file}: ${ids.length} tokens${at ? ` from the vectors${at}` : ''}, ids match the encoded text (sha256)`,
      );
  },
};
