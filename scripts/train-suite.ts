// Train the embedded model suite into models/ (resumable: rerun to continue).
//   npm run train:tiny                       every suite model, one after another
//   npm run train:tiny -- cram-llama-d128    only the named ones
// Checkpoints and loss logs go to runs/train/<name>/.
import * as path from 'node:path';
import { runTraining } from '../src/train/run';
import { SUITE, SUITE_TRAINING } from '../src/train/suite';

async function main(): Promise<void> {
  const want = process.argv.slice(2);
  const unknown = want.filter((n) => !SUITE.some((e) => e.name === n));
  if (unknown.length) throw new Error(`not in the suite: ${unknown.join(', ')} (suite: ${SUITE.map((e) => e.name).join(', ')})`);
  for (const entry of SUITE.filter((e) => !want.length || want.includes(e.name))) {
    await runTraining({
      ...SUITE_TRAINING,
      ...entry.training,
      name: entry.name,
      config: entry.config,
      outDir: path.join('models', entry.name),
      runDir: path.join('runs', 'train', entry.name),
      tokenizerDir: path.join('runs', 'train', 'tokenizer'),
      logEvery: 10,
    });
  }
}

main().catch((e) => {
  console.error(`train-suite: ${(e as Error).message}`);
  process.exit(1);
});
