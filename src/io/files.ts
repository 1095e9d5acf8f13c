// Side files of a model folder (config, index, tokenizer): opened only when they are regular files
// inside the folder, and read only up to a size bound.
import * as fs from 'node:fs';
import { ModelError } from '../models/types';
import { isInside } from './hub';

/**
 * `file` as a regular file inside `dir`: a symlink pointing outside the folder, a FIFO, a device
 * or a folder where a file belongs is refused before it is opened (opening a FIFO blocks).
 */
export function checkedFile(dir: string, file: string): string {
  const real = fs.realpathSync(file);
  const realDir = fs.realpathSync(dir);
  if (!isInside(realDir, real))
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
