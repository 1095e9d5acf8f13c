// npm run datasets: (re)build datasets/books.jsonl, unseen.jsonl and random-words.txt from npm
// packages, deterministically; `--check` only compares with the files on disk (exit 1 on a difference).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildAll } from '../src/datasets/build';

const dir = path.join(__dirname, '..', 'datasets');
const check = process.argv.includes('--check');
let differs = 0;
fs.mkdirSync(dir, { recursive: true });
for (const [name, content] of buildAll()) {
  const file = path.join(dir, name);
  const same = fs.existsSync(file) && fs.readFileSync(file, 'utf8') === content;
  if (!check && !same) fs.writeFileSync(file, content);
  if (check && !same) differs++;
  const lines = content.split('\n').length - 1;
  console.log(
    `${name.padEnd(18)} ${String(lines).padStart(6)} lines ${String(Buffer.byteLength(content)).padStart(8)} bytes  ${same ? 'unchanged' : check ? 'DIFFERS' : 'written'}`,
  );
}
if (differs) process.exit(1);
