import { decode, diffIds } from '../../decode';
import { loadModel } from '../../io/checkpoint';
import type { Tokenizer } from '../../io/tokenizer';
import { idsSha256, loadMem, MemFileError } from '../../mem-file';
import { str, UsageError, type Args } from '../args';
import type { Command } from '../main';

/** The ids a .cram file was made from, when it stores them (cram -o and encode do). */
function storedIds(extra: Record<string, string> | undefined): number[] | undefined {
  try {
    const ids = JSON.parse(extra?.ids ?? 'null');
    return Array.isArray(ids) && ids.every(Number.isInteger) ? ids : undefined;
  } catch {
    return undefined;
  }
}

/** Both texts around the first differing token: `token 7: encoded "…a blue key." decoded "…a big ball."`. */
export function whereTheyDiffer(tokenizer: Tokenizer, encoded: number[], decoded: number[], at: number): string {
  const around = (ids: number[]) => {
    const from = Math.max(0, at - 8);
    return (from > 0 ? '…' : '') + tokenizer.tokenStrings(ids.slice(from, at + 8)).join('');
  };
  return `first differing token ${at} of ${encoded.length}: encoded ${JSON.stringify(around(encoded))}, decoded ${JSON.stringify(around(decoded))}`;
}

export const command: Command = {
  name: 'decode',
  summary: 'greedily decode the text held by a .cram file (refuses a file made with another model)',
  usage: 'decode FILE.cram --model M [--check] [--json]',
  booleans: ['check', 'json'],
  async run(args: Args) {
    const file = args._[0];
    if (!file) throw new UsageError('give the .cram file: decode FILE.cram --model M');
    const loaded = await loadModel(str(args, 'model'));
    const mem = loadMem(file, loaded);
    const { ids, text } = await decode(loaded.model, mem, loaded.tokenizer);
    const stored = storedIds(mem.extra);
    const hashOk = idsSha256(ids) === mem.idsSha256;
    // The stored ids count only when they are the ones the hash vouches for.
    const encoded = stored && idsSha256(stored) === mem.idsSha256 ? stored : undefined;
    const diff = encoded ? diffIds(encoded, ids) : undefined;
    if (args.json)
      console.log(
        JSON.stringify({
          file,
          model: loaded.id,
          K: mem.K,
          tokens: mem.tokens,
          text,
          ids,
          matches: hashOk,
          firstMismatch: diff ? diff.firstMismatch : hashOk ? -1 : null,
          encodedText: encoded ? loaded.tokenizer.decode(encoded) : undefined,
        }),
      );
    else process.stdout.write(text + '\n');
    // Success needs a text actually decoded (not just the given first token) whose ids hash as stored.
    if (ids.length < 2) throw new MemFileError(`${file}: nothing was decoded (${ids.length} token)`);
    const at = mem.precision && mem.precision !== 'fp32' ? ` stored at ${mem.precision}` : '';
    if (!hashOk)
      throw new MemFileError(
        diff && !diff.equal
          ? `${file}: the vectors${at} do not decode the encoded text: ${whereTheyDiffer(loaded.tokenizer, encoded!, ids, diff.firstMismatch)}`
          : `${file}: the decoded ids differ from the stored ids hash (the vectors${at} do not decode the encoded text exactly, or the file was altered)`,
      );
    if (args.check)
      console.error(
        `${file}: ${ids.length} tokens${at ? ` from the vectors${at}` : ''}, ids match the encoded text (sha256)`,
      );
  },
};
