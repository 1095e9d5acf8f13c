// What CLI commands read and write, checked before any model work: text files must be valid UTF-8
// (unless --utf8 replace), output files must be writable and not the input.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, type Args } from './args';
import { sameFile } from '../io/write';

export function readTextFile(file: string, args: Args): string {
  const mode = typeof args.utf8 === 'string' ? args.utf8 : 'strict';
  if (mode !== 'strict' && mode !== 'replace') throw new UsageError(`--utf8 must be strict or replace, got '${mode}'`);
  if (!fs.existsSync(file)) throw new UsageError(`${file}: no such file`);
  if (!fs.statSync(file).isFile()) throw new UsageError(`${file}: not a file`);
  const bytes = fs.readFileSync(file);
  let text: string;
  try {
    // A leading byte-order mark is dropped (TextDecoder's default): it marks the encoding, it is not text.
    text = new TextDecoder('utf-8', { fatal: mode === 'strict' }).decode(bytes);
  } catch {
    throw new UsageError(`${file} is not valid UTF-8 text (give --utf8 replace to replace bad bytes with U+FFFD)`);
  }
  if (!text.trim())
    throw new UsageError(`${file} is empty${bytes.length ? ' (only whitespace)' : ''}: nothing to read`);
  return text;
}

/** Refuse an output path that cannot be written, or that is one of the inputs. */
export function checkOutFile(out: string, ...inputs: string[]): void {
  const abs = path.resolve(out);
  // Real paths: a symlink or hard link to the input is the input (the write itself replaces a link, never writes through it).
  for (const inp of inputs)
    if (path.resolve(inp) === abs || sameFile(inp, out))
      throw new UsageError(
        `output ${out} is the input file ${inp}${path.resolve(inp) === abs ? '' : ' (through a link)'}: give another -o`,
      );
  const dir = path.dirname(abs);
  if (!fs.existsSync(dir)) throw new UsageError(`cannot write ${out}: directory ${path.dirname(out)} does not exist`);
  if (!fs.statSync(dir).isDirectory())
    throw new UsageError(`cannot write ${out}: ${path.dirname(out)} is not a directory`);
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory())
    throw new UsageError(`cannot write ${out}: it is a directory`);
  try {
    fs.accessSync(fs.existsSync(abs) ? abs : dir, fs.constants.W_OK);
  } catch {
    throw new UsageError(`cannot write ${out}: permission denied`);
  }
}
