// Side files of a model folder (config, index, tokenizer): opened only when they are regular files
// inside the folder, and read only up to a size bound.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelError } from '../models/types';
import { isInside } from './hub';

/**
 * `file` as a regular file inside `dir`: a symlink pointing outside the folder, a FIFO, a device
 * or a folder where a file belongs is refused before it is opened (opening a FIFO blocks).
 */
export function checkedFile(dir: string, file: string): string {
  const real = fs.realpathSync(file);
  const realDir = fs.realpathSync(dir);
  // A huggingface_hub snapshot (<repo>/snapshots/<commit>/) links its files into the same repo's
  // ../../blobs/: that folder is inside the model too.
  const snapshots = path.dirname(realDir);
  const blobs = path.join(path.dirname(snapshots), 'blobs');
  const inBlobs =
    path.basename(snapshots) === 'snapshots' && fs.existsSync(blobs) && isInside(fs.realpathSync(blobs), real);
  if (!isInside(realDir, real) && !inBlobs)
    throw new ModelError(`${file}: resolves to ${real}, outside the model folder ${realDir} (symlink?)`);
  if (!fs.statSync(real).isFile()) throw new ModelError(`${file}: not a regular file (a folder, FIFO or device)`);
  return file;
}

/** JSON side files (config, index, tokenizer) are small; a bigger one is refused before it is read. */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

export function readJson(file: string, what: string): Record<string, any> {
  const st = fs.statSync(file);
  if (!st.isFile()) throw new ModelError(`${file}: ${what} is not a regular file (a folder, FIFO or device)`);
  if (st.size > MAX_JSON_BYTES)
    throw new ModelError(`${file}: ${what} is ${st.size} bytes, over the ${MAX_JSON_BYTES}-byte limit`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelError(`${file}: cannot read ${what} (${(e as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new ModelError(`${file}: ${what} is not a JSON object`);
  return json as Record<string, any>;
}

/**
 * `s` safe to print on a terminal: control characters (ESC sequences, CR, BEL, C1 codes) from file
 * contents (tensor names, mem-file metadata) are shown escaped (\u001b) instead of acting on the screen.
 */
export function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(
    /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * A text file's bytes as strict UTF-8 (a leading byte-order mark dropped); invalid bytes are an error
 * naming the file and the line, never U+FFFD replacements slipped into a text.
 */
export function readUtf8(file: string, makeError: (msg: string) => Error): string {
  const bytes = fs.readFileSync(file);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    let line = 1;
    for (let i = 0, start = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start, i));
        } catch {
          break;
        }
        line++;
        start = i + 1;
      }
    }
    throw makeError(`${file}: line ${line} is not valid UTF-8`);
  }
}
