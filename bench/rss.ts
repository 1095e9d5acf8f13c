// Peak RSS of loading W3 and cramming 4 texts × 64 random ids for 10 steps (memory check, not speed).
//   node --import tsx bench/rss.ts <model folder>
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../src/io/checkpoint';
import { cram } from '../src/cram/cram';

async function main() {
  const dir = process.argv[2];
  const bytes = fs.statSync(path.join(dir, 'model.safetensors')).size;
  const { model } = await loadModel(dir);
  const loadRss = process.resourceUsage().maxRSS * 1024;
  let s = 1;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s % model.info.vocabSize);
  const texts = Array.from({ length: 4 }, () => Array.from({ length: 64 }, rand));
  await cram(model, texts, { maxSteps: 10, patience: 1000, quiet: true });
  const rss = process.resourceUsage().maxRSS * 1024;
  const mb = (x: number) => (x / 2 ** 20).toFixed(0) + ' MiB';
  console.log(
    `model ${model.constructor.name}: weights ${mb(bytes)}, maxRSS after load ${mb(loadRss)}, after 10 steps ${mb(rss)} = ${(rss / bytes).toFixed(2)}x`,
  );
  model.dispose();
}
main();
