// Train the embedded model suite into models/ (resumable: rerun to continue).
//   npm run train:tiny                       every suite model, one after another
//   npm run train:tiny -- cram-llama-d128    only the named ones
// Checkpoints and loss logs go to runs/train/<name>/.
import * as path from 'node:path';
import { runTraining } from '../src/train/run';
import { SUITE, SUITE_TRAINING } from '../src/train/suite';

async function main(): Promise<void> {
  // --out-root DIR / --run-root DIR: train elsewhere than models/ and runs/train/ (trial runs).
  const argv = process.argv.slice(2);
  const opt = (flag: string, fallback: string) => {
    const i = argv.indexOf(flag);
    if (i < 0) return fallback;
    const v = argv[i + 1];
    argv.splice(i, 2);
    return v;
  };
  const outRoot = opt('--out-root', 'models');
  const runRoot = opt('--run-root', path.join('runs', 'train'));
  const want = argv;
  const unknown = want.filter((n) => !SUITE.some((e) => e.name === n));
  if (unknown.length)
    throw new Error(`not in the suite: ${unknown.join(', ')} (suite: ${SUITE.map((e) => e.name).join(', ')})`);
  for (const entry of SUITE.filter((e) => !want.length || want.includes(e.name))) {
    await runTraining({
      ...SUITE_TRAINING,
      ...entry.training,
      name: entry.name,
      config: entry.config,
      outDir: path.join(outRoot, entry.name),
      runDir: path.join(runRoot, entry.name),
      tokenizerDir: path.join(runRoot, 'tokenizer'),
      logEvery: 10,
    });
  }
}

main().catch((e) => {
  console.error(`train-suite: ${(e as Error).message}`);
  process.exit(1);
});
