// Write (or list) the seeded random-init checkpoints of the paper's models at their real shapes
// (bench/real-shapes.ts: published config.json, published dtype), cached under bench/checkpoints/.
//   node --import tsx scripts/real-shape-checkpoint.ts --list
//   node --import tsx scripts/real-shape-checkpoint.ts SmolLM2-135M Llama-3.2-1B [--root DIR] [--tiny]
// The bench (npm run bench -- --only R) writes what it needs itself; this is for writing ahead.
import { parseArgs } from 'node:util';
import {
  CHECKPOINTS,
  dataBytes,
  diskShortfall,
  isCached,
  paramCount,
  realCheckpoint,
  realShape,
  realShapeDir,
  REAL_SHAPES,
  tinyShape,
} from '../bench/real-shapes';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { list: { type: 'boolean' }, root: { type: 'string' }, tiny: { type: 'boolean' } },
});
const root = values.root ?? CHECKPOINTS;
const pick = (s: (typeof REAL_SHAPES)[number]) => (values.tiny ? tinyShape(s) : s);

if (values.list || positionals.length === 0) {
  for (const s of REAL_SHAPES.map(pick)) {
    const why = diskShortfall(s, root);
    console.log(
      `${s.name.padEnd(20)} ${s.dtype.padEnd(4)} ${(paramCount(s) / 1e6).toFixed(1).padStart(7)} M params ${(dataBytes(s) / 1e9).toFixed(2).padStart(6)} GB  ${isCached(s, root) ? 'cached' : why ? `cannot write: ${why}` : 'not written'}  ${realShapeDir(s, root)}`,
    );
  }
} else {
  for (const name of positionals) {
    const s = pick(realShape(name));
    const why = diskShortfall(s, root);
    if (why) {
      console.error(`${s.name}: skipped: ${why}`);
      process.exitCode = 1;
      continue;
    }
    realCheckpoint(s, root, (m) => console.log(m));
  }
}
