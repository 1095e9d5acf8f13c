import * as path from 'node:path';
import { AUTHORS_ADAMW } from '../../cram/adamw';
import { CRAM_DEFAULTS } from '../../cram/cram';
import { loadTexts } from '../../datasets/index';
import { loadModel } from '../../io/checkpoint';
import { bisectTable, capacityTable, lengthTable } from '../../metrics/table';
import { capacitySweep } from '../../runs/sweep';
import { num, numList, str, UsageError, type Args } from '../args';
import type { Command } from '../main';

export const command: Command = {
  name: 'capacity',
  summary:
    'sweep text lengths × mem counts: accuracy, decoding capacity, information and token gain (resumable run folder)',
  usage:
    'capacity --model M --texts SET|FILE [--count 16] --mem 1,2,4 --lengths 8,16,32,64 [--bisect] [--out runs/NAME] ' +
    '[--batch B] [--max-steps 5000] [--patience 2000] [--margin 0] [--lr 0.01] [--seed 0] [--save-mem] [--quiet]',
  booleans: ['bisect', 'saveMem', 'quiet'],
  async run(args: Args) {
    const lengths = numList(args, 'lengths', []);
    if (!lengths.length) throw new UsageError('--lengths is required, e.g. --lengths 8,16,32,64');
    const Ks = numList(args, 'mem', [1]);
    const loaded = await loadModel(str(args, 'model'));
    const texts = await loadTexts(str(args, 'texts'), {
      tokenizer: loaded.tokenizer,
      maxTokens: Math.max(...lengths),
      count: args.count === undefined ? 16 : num(args, 'count'),
    });
    const runDir = str(args, 'out', path.join('runs', `capacity-${path.basename(loaded.dir)}`));
    console.log(`${texts.length} texts, lengths ${lengths.join(',')}, K ${Ks.join(',')} → ${runDir}`);
    const { grid, bisect } = await capacitySweep(loaded.model, texts, {
      runDir,
      lengths,
      Ks,
      bisect: Boolean(args.bisect),
      batch: args.batch === undefined ? undefined : num(args, 'batch'),
      seed: num(args, 'seed', 0),
      saveMem: Boolean(args.saveMem),
      maxSteps: num(args, 'maxSteps', CRAM_DEFAULTS.maxSteps),
      patience: num(args, 'patience', CRAM_DEFAULTS.patience),
      margin: num(args, 'margin', 0),
      lr: num(args, 'lr', AUTHORS_ADAMW.lr),
      quiet: Boolean(args.quiet),
      model: { id: loaded.id, weightsHash: loaded.weightsHash },
      set: str(args, 'texts'),
      decode: (ids) => loaded.tokenizer.decode(ids),
    });
    const info = loaded.model.info;
    const mine = grid; // this run's cells only (records of other lengths or texts stay in the folder)
    console.log(
      '\nMean over texts per length (info gain in bits: CE without − CE at the best mem; paper: (mean loss − min loss) × N, nats):\n',
    );
    console.log(lengthTable(mine));
    console.log(
      '\nTable 1 conventions (capacity: largest N with mean accuracy ≥ 0.99; exact capacity: largest N where every text decodes exactly by greedy; gains: means over texts with accuracy ≤ 0.99):\n',
    );
    console.log(capacityTable(mine, info));
    if (args.bisect) {
      console.log('\nPer-text capacity by bisection (+: the whole searched text decodes) next to the grid:\n');
      console.log(bisectTable(bisect.filter((r) => Ks.includes(r.K))));
    }
    console.log(`\nrecords: ${path.join(runDir, 'results.jsonl')}`);
  },
};
