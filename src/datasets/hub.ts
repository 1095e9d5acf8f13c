// Text chunks from files in the authors' format (a `text` column, one chunk per row) and their
// two Hub sets. pandas wrote the authors' CSV with an unnamed index column first; `datasets`
// push_to_hub writes Parquet; both are read here, plus JSONL ({"text": ...} per line).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hubSnapshot, HubError } from '../io/hub';
import { readUtf8 } from '../io/files';

/**
 * The authors' sets. The file names follow the Hub's layout for a pushed dataset with one `train`
 * split; they could not be checked offline, so every candidate is optional and the first present wins.
 */
export const HUB_SETS: Record<string, { repo: string; files: string[] }> = {
  pg19: {
    repo: 'yurakuratov/pg19_valid_1k_chunks',
    files: [
      'data/train-00000-of-00001.parquet',
      'pg19_valid_1k_chunks.csv',
      'data/pg19_valid_1k_chunks.csv',
      'train.csv',
    ],
  },
  fanfics: {
    repo: 'yurakuratov/fanfics_1k_chunks',
    files: ['data/train-00000-of-00001.parquet', 'fanfics_1k_chunks.csv', 'data/fanfics_1k_chunks.csv', 'train.csv'],
  },
};

export class DatasetError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'DatasetError';
  }
}

/** RFC 4180 CSV: quoted fields may hold commas, newlines and doubled quotes. */
export function parseCsv(src: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (quoted) throw new DatasetError('CSV ends inside a quoted field');
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === '')); // blank lines
}

function csvTexts(file: string): string[] {
  const [header, ...rows] = parseCsv(readUtf8(file, (m) => new DatasetError(m)));
  const col = header ? header.indexOf('text') : -1;
  if (col < 0)
    throw new DatasetError(
      `${file}: no 'text' column in the CSV header (${(header ?? []).join(', ') || 'empty file'})`,
    );
  return rows.map((r, i) => {
    if (r.length !== header.length)
      throw new DatasetError(`${file}: row ${i + 2} has ${r.length} fields, the header has ${header.length}`);
    return r[col];
  });
}

async function parquetTexts(file: string): Promise<string[]> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { parquetReadObjects, parquetMetadata, parquetSchema } = require('hyparquet');
  const buf = fs.readFileSync(file);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  let names: string[];
  try {
    names = parquetSchema(parquetMetadata(ab)).children.map((c: any) => c.element.name);
  } catch (e) {
    throw new DatasetError(`${file}: not a readable Parquet file (${(e as Error).message})`);
  }
  if (!names.includes('text'))
    throw new DatasetError(`${file}: no 'text' column in the Parquet file (${names.join(', ')})`);
  const rows: { text: unknown }[] = await parquetReadObjects({ file: ab, columns: ['text'] });
  return rows.map((r, i) => {
    if (typeof r.text !== 'string') throw new DatasetError(`${file}: row ${i} has a non-string text`);
    return r.text;
  });
}

function jsonlTexts(file: string): string[] {
  return readUtf8(file, (m) => new DatasetError(m))
    .split('\n')
    .map((line, i) => ({ line: line.trim(), i }))
    .filter(({ line }) => line)
    .map(({ line, i }) => {
      let obj: any;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        throw new DatasetError(`${file}: line ${i + 1} is not JSON (${(e as Error).message})`);
      }
      if (typeof obj?.text !== 'string') throw new DatasetError(`${file}: line ${i + 1} has no string 'text' field`);
      return obj.text as string;
    });
}

/** The `text` column of a .csv, .parquet or .jsonl file, in row order. */
export async function readTextColumn(file: string): Promise<string[]> {
  if (!fs.existsSync(file)) throw new DatasetError(`text file '${file}' does not exist`);
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return csvTexts(file);
  if (ext === '.parquet') return parquetTexts(file);
  if (ext === '.jsonl') return jsonlTexts(file);
  throw new DatasetError(
    `${file}: unsupported text file type '${ext}' (use .csv, .parquet or .jsonl with a 'text' column)`,
  );
}

/** Download (or find in the HF cache) one of the authors' sets and return its chunks. */
export async function loadHubChunks(name: string): Promise<string[]> {
  const set = HUB_SETS[name];
  if (!set) throw new DatasetError(`unknown Hub text set '${name}' (known: ${Object.keys(HUB_SETS).join(', ')})`);
  let dir: string;
  try {
    dir = await hubSnapshot(
      set.repo,
      set.files.map((f) => f + '?'),
      'dataset',
    );
  } catch (e) {
    if (!(e instanceof HubError)) throw e;
    throw new DatasetError(
      `cannot get the '${name}' texts (Hub dataset ${set.repo}): ${e.message.split(';')[0]}; ` +
        `offline, use --texts books or --texts unseen (built into cramlab), or a local .csv/.parquet/.jsonl file`,
    );
  }
  const found = set.files.find((f) => fs.existsSync(path.join(dir, f)));
  if (!found) {
    throw new DatasetError(
      `Hub dataset ${set.repo} has none of ${set.files.join(', ')} in ${dir} (offline mode, or the Hub layout changed); ` +
        `use --texts books or --texts unseen, or download the set and pass its .csv/.parquet file`,
    );
  }
  return readTextColumn(path.join(dir, found));
}
