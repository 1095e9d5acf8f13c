// Where tests find the shared, never-committed material (the stories260K checkpoint and samples).
import * as fs from 'node:fs';
import * as path from 'node:path';

export const MODELS_DIR = path.resolve(
  process.env.CRAMLAB_MODELS ?? path.join(__dirname, '..', '..', '..', 'shared', 'models'),
);

/** Path of a shared model folder, or undefined (with the reason) when absent. */
export function sharedModel(name: string): { dir?: string; skip?: string } {
  const dir = path.join(MODELS_DIR, name);
  if (fs.existsSync(path.join(dir, 'config.json'))) return { dir };
  return { skip: `${name} not found in ${MODELS_DIR} (set CRAMLAB_MODELS to the folder holding it)` };
}

/** The greedy ids documented in the stories260K README (the source of truth, not our output). */
export function documentedGreedyIds(dir: string): number[] {
  const readme = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
  const block = readme.split('followed by the first 100 greedy tokens:')[1].split('```')[1];
  return block
    .split(/[,\s]+/)
    .filter(Boolean)
    .map(Number);
}
