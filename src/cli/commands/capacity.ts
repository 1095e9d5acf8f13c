import * as path from 'node:path';
import { AUTHORS_ADAMW } from '../../cram/adamw';
import { CRAM_DEFAULTS } from '../../cram/cram';
import { loadTexts } from '../../datasets/index';
import { loadModel } from '../../io/checkpoint';
import { bisectTable, capacityTable, lengthTable } from '../../metrics/table';
import { capacitySweep } from '../../runs/sweep';
import { table1 } from '../../metrics/summary';
import { num, numList, str, UsageError, type Args } from '../args';
import type { Command } from '../main';

export const command: Command = {
  name: 'capacity',
  summary:
    'sweep text lengths × mem counts: accuracy, decoding capacity, information and token gain (resumable run folder)',
  usage:
    'capacity --model M --texts SET|FILE [--count 16] --mem 1,2,4 --lengths 8,16,32,64 [--bisect] [--out runs/NAME] ' +
    '[--batch B] [--max-steps 5000] [--patience 2000] [--margin 0] [--lr 0.01] [--seed 0] [--save-mem] [--json] [--quiet] [--queue redis://[:PASSWORD@]HOST:PORT[/DB]]',
  booleans: ['bisect', 'saveMem', 'quiet', 'json'],
  async run(args: Args) {
    const lengths = numList(args, 'lengths', []);
    if (!lengths.length) throw new UsageError('--lengths is required, e.g. --lengths 8,16,32,64');
    const Ks = numList(args, 'mem', [1]);
    const loaded = await loadModel(str(args, 'model'));
    // Text plus K vectors must fit the context: refuse before any text is loaded or crammed.
    const ctx = loaded.model.info.maxPositions;
    const tooLong = lengths.filter((N) => N + Math.max(...Ks) > ctx);
    if (tooLong.length)
      throw new UsageError(
        `--lengths ${tooLong.join(',')}: N + K (${Math.max(...Ks)}) exceeds the context of ${loaded.id} (${ctx} positions); the longest N is ${ctx - Math.max(...Ks)}`,
      );
    const texts = await loadTexts(str(args, 'texts'), {
      tokenizer: loaded.tokenizer,
      maxTokens: Math.max(...lengths),
      count: args.count === undefined ? 16 : num(args, 'count'),
    });
    const runDir = str(args, 'out', path.join('runs', `capacity-${path.basename(loaded.dir)}`));
    if (!args.json) console.log(`${texts.length} texts, lengths ${lengths.join(',')}, K ${Ks.join(',')} → ${runDir}`);
    const { grid, bisect, failed } = await capacitySweep(loaded.model, texts, {
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
      quiet: Boolean(args.quiet || args.json),
      log: args.json ? (line: string) => console.error(line) : undefined, // stdout is the JSON alone
      model: { id: loaded.id, weightsHash: loaded.weightsHash },
      set: str(args, 'texts'),
      decode: (ids) => loaded.tokenizer.decode(ids),
      queue: typeof args.queue === 'string' ? args.queue : undefined,
    });
    const info = loaded.model.info;
    const mine = grid; // this run's cells only (records of other lengths or texts stay in the folder)
    if (args.json) {
      const shape = { memDim: info.memDim, vocabSize: info.vocabSize };
      console.log(
        JSON.stringify({
          model: loaded.id,
          runDir,
          records: path.join(runDir, 'results.jsonl'),
          table1: table1(mine, () => shape),
          bisect: args.bisect ? bisect.filter((r) => Ks.includes(r.K)) : undefined,
        }),
      );
      return;
    }
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
    if (failed.length) {
      const texts = failed.reduce((n, f) => n + f.unit.texts.length, 0);
      console.log(
        `\n${failed.length} jobs (${texts} text runs) failed after their retries and are left out of the tables above; ` +
          'run the same command again to retry them',
      );
    }
    console.log(`\nrecords: ${path.join(runDir, 'results.jsonl')}`);
  },
};
