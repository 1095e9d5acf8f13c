import * as fs from 'node:fs';
import { fewestVectors, type FewestVectors } from '../../cram/capacity';
import { cram, CramError, CRAM_DEFAULTS } from '../../cram/cram';
import type { CausalLM } from '../../models/types';
import { scoreText } from '../../score';
import { measure } from '../../metrics/text';
import { progressiveCram } from '../../cram/progressive';
import { decode, diffIds } from '../../decode';
import { loadModel } from '../../io/checkpoint';
import { FILE_PRECISIONS, saveCram, type FilePrecision } from '../../mem-file';
import { parsePrecision, PRECISIONS, roundTo } from '../../precision';
import { exactness, type Exactness } from '../../metrics/exactness';
import { num, str, UsageError, type Args } from '../args';
import { checkOutFile, readTextFile } from '../input';
import type { Command } from '../main';
import { PROGRESSIVE_USAGE, progressiveFlags, RANK_BOOLEANS, SCHEDULE_USAGE, scheduleFlags } from './cram';
import { encodeWithin } from '../../io/tokenizer';

/** What the file's metadata says about exactness: the smallest margin and the precisions that still decode. */
const exactExtras = (x: Exactness) => ({
  minMargin: String(x.minMargin),
  exactAt: PRECISIONS.filter((p) => x.precisions[p].exact).join(',') || 'none',
});

const atPrecision = (p: FilePrecision) => (p === 'fp32' ? '' : ` from the ${p} vectors`);

export const command: Command = {
  name: 'encode',
  summary:
    'cram a text file into [mem] vectors saved as a .cram file (without --mem: the fewest vectors that decode it exactly; --progressive: K vectors grown to their horizon)',
  usage: `encode FILE.txt -o FILE.cram --model M [--mem K] [--precision fp32|bf16|fp16|int8] [--margin 0] [--max-steps 5000] [--patience 2000] [--seed 0] ${SCHEDULE_USAGE} [${PROGRESSIVE_USAGE}] [--max-minutes M] [--utf8 strict|replace] [--quiet]`,
  booleans: ['quiet', 'progressive', ...RANK_BOOLEANS],
  async run(args: Args) {
    const input = args._[0];
    if (!input) throw new UsageError('give the text file to encode: encode FILE.txt -o FILE.cram --model M');
    const out = str(args, 'o', typeof args.out === 'string' ? args.out : input.replace(/\.[^./]*$/, '') + '.cram');
    checkOutFile(out, input);
    const text = readTextFile(input, args);
    if (!text) throw new UsageError(`${input} is empty`);
    let precision: FilePrecision;
    try {
      precision = parsePrecision(str(args, 'precision', 'fp32'), FILE_PRECISIONS) as FilePrecision;
    } catch (e) {
      throw new UsageError(`--precision: ${(e as Error).message}`);
    }
    const loaded = await loadModel(str(args, 'model'));
    const { model, tokenizer } = loaded;
    const K0 = args.mem === undefined ? 1 : num(args, 'mem');
    const ids = encodeWithin(tokenizer, text, model.info.maxPositions - K0, input);
    const opts = {
      maxSteps: num(args, 'maxSteps', CRAM_DEFAULTS.maxSteps),
      patience: num(args, 'patience', CRAM_DEFAULTS.patience),
      margin: num(args, 'margin', 0),
      seed: num(args, 'seed', 0),
      quiet: Boolean(args.quiet),
      ...scheduleFlags(args),
    };
    const t0 = performance.now();
    if (args.progressive) {
      // The target grows --stride tokens per stage (or doubles, then bisects: --growth geometric) from K vectors
      // (default 1); the file holds the final mem and the horizon (the longest prefix it reproduces), so
      // `decode` gives back exactly that prefix.
      const flags = progressiveFlags(args);
      const [p] = await progressiveCram(model, [ids], {
        K: K0,
        ...flags,
        ...scheduleFlags(args),
        seed: num(args, 'seed', 0),
        quiet: Boolean(args.quiet),
      });
      const seconds = (performance.now() - t0) / 1000;
      const held = ids.slice(0, p.horizon);
      const stored = roundTo(p.mem, K0, precision);
      const back = await decode(model, { vectors: stored, K: K0, tokens: p.horizon, firstId: ids[0] });
      const diff = diffIds(held, back.ids);
      saveCram(out, loaded, {
        precision,
        vectors: p.mem,
        K: K0,
        ids: held,
        text,
        extra: {
          progressive: 'true',
          growth: flags.growth,
          horizon: String(p.horizon),
          textTokens: String(ids.length),
          stages: String(p.stages.length),
          steps: String(p.totalSteps),
          seconds: seconds.toFixed(2),
          ...(held.length >= 2 ? exactExtras(await exactness(model, held, p.mem, K0)) : {}),
        },
      });
      console.log(
        `${input}: horizon ${p.horizon} of ${ids.length} tokens${p.censored ? ' (the whole text)' : ''} → ${K0} vector${K0 > 1 ? 's' : ''} of ${model.info.memDim} (${(p.horizon / K0).toFixed(1)} tokens/vector), ${p.stages.length} stages`,
      );
      console.log(
        `steps ${p.totalSteps}, ${seconds.toFixed(1)} s, greedy decoding${atPrecision(precision)} ${diff.equal ? `reproduces the first ${p.horizon} tokens exactly` : `differs from token ${diff.firstMismatch} on`}`,
      );
      console.log(`wrote ${out} (${fs.statSync(out).size} bytes)`);
      if (!diff.equal) process.exitCode = 1;
      return;
    }
    let K: number;
    let r;
    let steps: number;
    if (args.mem !== undefined) {
      K = num(args, 'mem');
      [r] = await cram(model, [ids], { ...opts, K });
      steps = r.steps;
    } else {
      const f = await searchK(model, ids, opts, args, input);
      ({ K, result: r, totalSteps: steps } = f);
    }
    const seconds = (performance.now() - t0) / 1000;
    const back = await decode(model, {
      vectors: roundTo(r.bestMem, K, precision),
      K,
      tokens: ids.length,
      firstId: ids[0],
    });
    const diff = diffIds(ids, back.ids);
    saveCram(out, loaded, {
      precision,
      vectors: r.bestMem,
      K,
      ids,
      text,
      extra: {
        accuracy: String(r.bestAccuracy),
        steps: String(steps),
        seconds: seconds.toFixed(2),
        ...exactExtras(await exactness(model, ids, r.bestMem, K)),
      },
    });
    console.log(
      `${input}: ${ids.length} tokens → ${K} vector${K > 1 ? 's' : ''} of ${model.info.memDim} (${(ids.length / K).toFixed(1)} tokens/vector)`,
    );
    console.log(
      `steps ${steps}, ${seconds.toFixed(1)} s, best accuracy ${(100 * r.bestAccuracy).toFixed(2)}%, greedy decoding${atPrecision(precision)} ${diff.equal ? 'reproduces the text exactly' : `differs from token ${diff.firstMismatch} on`}`,
    );
    console.log(`wrote ${out} (${fs.statSync(out).size} bytes)`);
    if (!diff.equal && precision !== 'fp32') {
      console.error(
        `${out}: the vectors stored at ${precision} do not decode the text exactly (token ${diff.firstMismatch} differs): try --margin 1 or a wider --precision`,
      );
      process.exitCode = 1;
    }
  },
};

/**
 * Without --mem: first a quick probe (K = 1, a few hundred steps) gives the bits one vector holds; with
 * the text's CE that estimates the K needed, refused at once when the context cannot hold it. Then the
 * fewest-K search, each try announced with the range left, stopped at --max-minutes.
 */
async function searchK(
  model: CausalLM,
  ids: number[],
  opts: { maxSteps: number; patience: number; seed: number; quiet: boolean },
  args: Args,
  input: string,
): Promise<FewestVectors> {
  const maxK = Math.min(64, model.info.maxPositions - ids.length);
  const deadline = args.maxMinutes === undefined ? Infinity : performance.now() + num(args, 'maxMinutes') * 60_000;
  const probeSteps = Math.min(300, opts.maxSteps);
  const [probe] = await cram(model, [ids], { ...opts, K: 1, maxSteps: probeSteps, patience: 100, quiet: true });
  // Bits one vector moves: the probe's information gain (CE without − with mem). A vector decodes a
  // text only once its gains cover the text's CE, so CE / gain is a rough lower bound on K (gains per
  // vector shrink as K grows, and on random text a vector lowers CE well before it decodes anything).
  const ceBits = (await scoreText(model, ids)).totalBits;
  const perVector = Math.max((await measure(model, ids, probe)).infoGainBits, 1e-3);
  const estimate = probe.status === 'decoded' ? 1 : Math.ceil(ceBits / perVector);
  const why = `the text's CE is ${ceBits.toFixed(0)} bits and one vector gained ${perVector.toFixed(1)} bits in a ${probe.steps}-step probe, so at least about ${estimate} vectors are needed`;
  if (estimate > maxK)
    throw new CramError(
      `${input}: will not fit: ${why}, but the context (${model.info.maxPositions} positions, ${ids.length} tokens of text) leaves room for ${maxK}; try --progressive for the longest prefix a vector holds, or a shorter text`,
    );
  console.log(`estimate: ${why} (room for ${maxK})`);
  const guess = 2 ** Math.max(0, Math.floor(Math.log2(Math.min(estimate, maxK) / 2)));
  let trying = '';
  try {
    const f = await fewestVectors(model, ids, {
      ...opts,
      maxK,
      guess,
      onTry: (K, { lo, hi }) => {
        trying = `K=${K} (the fewest K lies in ${lo}..${hi})`;
        const left = Math.ceil(Math.log2(Math.max(1, hi - lo + 1)));
        console.log(`trying K=${K}: the fewest K lies in ${lo}..${hi}, about ${left} tries left after this one`);
      },
      // Checked at every progress report, so a long try stops too (cram cleans up on a throw).
      onProgress: () => {
        if (performance.now() > deadline)
          throw new CramError(`stopped at --max-minutes ${args.maxMinutes} while trying ${trying}`);
      },
    });
    for (const a of f.attempts)
      console.log(
        `  K=${a.K}: ${a.decoded ? 'decodes' : 'fails'} (best accuracy ${a.bestAccuracy.toFixed(4)}, ${a.steps} steps, ${a.seconds.toFixed(1)} s)`,
      );
    return f;
  } catch (e) {
    if (e instanceof CramError)
      throw new CramError(`${e.message}; --progressive gives the longest prefix K vectors hold, in seconds`);
    throw e;
  }
}
