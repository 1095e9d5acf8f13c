import * as fs from 'node:fs';
import { fewestVectors } from '../../cram/capacity';
import { cram } from '../../cram/cram';
import { decode, diffIds } from '../../decode';
import { loadModel } from '../../io/checkpoint';
import { CRAMLAB_VERSION, idsSha256, saveMem, sha256 } from '../../mem-file';
import { num, str, UsageError, type Args } from '../args';
import { checkOutFile, readTextFile } from '../input';
import type { Command } from '../main';
import { encodeWithin } from '../../tokenizer';

export const command: Command = {
  name: 'encode',
  summary: 'cram a text file into [mem] vectors saved as a .cram file (without --mem: the fewest vectors that decode it exactly)',
  usage: 'encode FILE.txt -o FILE.cram --model M [--mem K] [--max-steps 5000] [--patience 2000] [--seed 0] [--utf8 strict|replace] [--quiet]',
  booleans: ['quiet'],
  async run(args: Args) {
    const input = args._[0];
    if (!input) throw new UsageError('give the text file to encode: encode FILE.txt -o FILE.cram --model M');
    const out = str(args, 'o', typeof args.out === 'string' ? args.out : input.replace(/\.[^./]*$/, '') + '.cram');
    checkOutFile(out, input);
    const text = readTextFile(input, args);
    if (!text) throw new UsageError(`${input} is empty`);
    const loaded = await loadModel(str(args, 'model'));
    const { model, tokenizer } = loaded;
    const K0 = args.mem === undefined ? 1 : num(args, 'mem');
    const ids = encodeWithin(tokenizer, text, model.info.maxPositions - K0, input);
    const opts = { maxSteps: num(args, 'maxSteps', 5000), patience: num(args, 'patience', 2000), seed: num(args, 'seed', 0), quiet: Boolean(args.quiet) };
    const t0 = performance.now();
    let K: number;
    let r;
    let steps: number;
    if (args.mem !== undefined) {
      K = num(args, 'mem');
      [r] = await cram(model, [ids], { ...opts, K });
      steps = r.steps;
    } else {
      const f = await fewestVectors(model, ids, opts);
      for (const a of f.attempts) console.log(`  K=${a.K}: ${a.decoded ? 'decodes' : 'fails'} (best accuracy ${a.bestAccuracy.toFixed(4)}, ${a.steps} steps, ${a.seconds.toFixed(1)} s)`);
      ({ K, result: r, totalSteps: steps } = f);
    }
    const seconds = (performance.now() - t0) / 1000;
    const back = await decode(model, { vectors: r.bestMem, K, tokens: ids.length, firstId: ids[0] });
    const diff = diffIds(ids, back.ids);
    saveMem(out, {
      vectors: r.bestMem, K, memDim: model.info.memDim, tokens: ids.length, firstId: ids[0],
      model: loaded.id, weightsHash: loaded.weightsHash, tokenizerHash: tokenizer.hash,
      idsSha256: idsSha256(ids), textSha256: sha256(text), cramlab: CRAMLAB_VERSION,
      extra: { accuracy: String(r.bestAccuracy), steps: String(steps), seconds: seconds.toFixed(2) },
    });
    console.log(`${input}: ${ids.length} tokens → ${K} vector${K > 1 ? 's' : ''} of ${model.info.memDim} (${(ids.length / K).toFixed(1)} tokens/vector)`);
    console.log(`steps ${steps}, ${seconds.toFixed(1)} s, best accuracy ${(100 * r.bestAccuracy).toFixed(2)}%, greedy decoding ${diff.equal ? 'reproduces the text exactly' : `differs from token ${diff.firstMismatch} on`}`);
    console.log(`wrote ${out} (${fs.statSync(out).size} bytes)`);
  },
};
