// Rewrite each suite model's README.md and training.json from its recorded numbers with the
// current card template (no retraining): `node --import tsx scripts/rewrite-cards.ts [models/NAME ...]`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tokenizerDescription } from '../src/train/run';
import { writeCard, type TrainingRecord } from '../src/train/save';

const dirs = process.argv.slice(2).length
  ? process.argv.slice(2)
  : fs.readdirSync('models').map((n) => path.join('models', n));
for (const dir of dirs) {
  const file = path.join(dir, 'training.json');
  if (!fs.existsSync(file)) continue;
  const record = JSON.parse(fs.readFileSync(file, 'utf8')) as TrainingRecord;
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  record.tokenizer.type = tokenizerDescription(record.tokenizer.vocab_size);
  writeCard(dir, config, record);
  console.log(`${dir}: card rewritten`);
}
