import { AUTHORS_ADAMW } from '../../cram/adamw';
import { cram, CRAM_DEFAULTS } from '../../cram/cram';
import { GROWTHS, progressiveCram, type Growth, type ProgressiveResult } from '../../cram/progressive';
import { loadModel } from '../../io/checkpoint';
import { measure, type TextMetrics } from '../../metrics/text';
import { PRECISIONS } from '../../precision';
import { exactness, type Exactness } from '../../metrics/exactness';
import { theoreticalCapacity } from '../../metrics/summary';
import { num, str, UsageError, type Args } from '../args';
import { readTextFile } from '../input';
import type { Command } from '../main';
import { encodeWithin } from '../../io/tokenizer';
import { LR_SCHEDULES, type LrSchedule, type ScheduleOptions } from '../../cram/schedule';
import { decode, diffIds, formatDiff } from '../../decode';
import { saveCram } from '../../mem-file';
import { checkOutFile } from '../input';

/** The flags of a progressive run, shared by `cram --progressive` and `encode --progressive`. */
export const PROGRESSIVE_USAGE =
  '--progressive [--growth stride|geometric] [--stride 8] [--stage-steps 1000] [--stage-patience 200] [--probe-patience P] [--probe-start success|failure]';

/** The anchor's loss and schedule flags (cram/schedule.ts), off by default; cram and encode take them. */
export const SCHEDULE_USAGE =
  '[--leading-weight 1 --leading-count 0] [--lr-schedule constant|cosine] [--min-lr 0] [--clip-grad-norm 0] [--rank k [--rank-train] [--rank-shared]]';

/** --rank-train: W and b trained with z (native engine); --rank-shared: one W, b for the batch. */
export const RANK_BOOLEANS = ['rankTrain', 'rankShared'];

export function scheduleFlags(
  args: Args,
): ScheduleOptions & { rank?: number; rankTrain?: boolean; rankShared?: boolean } {
  const lrSchedule = str(args, 'lrSchedule', 'constant');
  if (!(LR_SCHEDULES as readonly string[]).includes(lrSchedule))
    throw new UsageError(`--lr-schedule must be constant or cosine, got ${lrSchedule}`);
  return {
    leadingWeight: num(args, 'leadingWeight', 1),
    leadingCount: num(args, 'leadingCount', 0),
    lrSchedule: lrSchedule as LrSchedule,
    minLr: num(args, 'minLr', 0),
    clipGradNorm: num(args, 'clipGradNorm', 0),
    ...(args.rank === undefined ? {} : { rank: num(args, 'rank') }),
    ...(args.rankTrain ? { rankTrain: true } : {}),
    ...(args.rankShared ? { rankShared: true } : {}),
  };
}

/** --growth, --stride, --stage-steps, --stage-patience (progressiveCram checks each). */
export function progressiveFlags(args: Args): {
  growth: Growth;
  stride: number;
  stageSteps: number;
  stagePatience: number;
  probePatience?: number;
  probeStart?: 'success' | 'failure';
} {
  const growth = str(args, 'growth', 'stride');
  if (!(GROWTHS as readonly string[]).includes(growth))
    throw new UsageError(`--growth must be stride or geometric, got ${growth}`);
  return {
    growth: growth as Growth,
    stride: num(args, 'stride', 8),
    stageSteps: num(args, 'stageSteps', 1000),
    stagePatience: num(args, 'stagePatience', 200),
    ...(args.probePatience === undefined ? {} : { probePatience: num(args, 'probePatience') }),
    ...(args.probeStart === undefined ? {} : { probeStart: probeStart(str(args, 'probeStart')) }),
  };
}

function probeStart(v: string): 'success' | 'failure' {
  if (v !== 'success' && v !== 'failure') throw new UsageError(`--probe-start must be success or failure, got ${v}`);
  return v;
}

export const command: Command = {
  name: 'cram',
  summary: 'optimise K [mem] vectors for one text and print what they achieve (accuracy, CE, gains)',
  usage: `cram --model M (--text TEXT | --file F) [--mem K] [--max-steps 5000] [--patience 2000] [--margin 0] [--lr 0.01] [--seed 0] ${SCHEDULE_USAGE} [${PROGRESSIVE_USAGE}] [--utf8 strict|replace] [-o FILE.cram] [--json] [--quiet]`,
  booleans: ['json', 'quiet', 'progressive', ...RANK_BOOLEANS],
  async run(args: Args) {
    const text = typeof args.file === 'string' ? readTextFile(args.file, args) : str(args, 'text', '');
    if (!text) throw new UsageError('give --text TEXT or --file F');
    const out = typeof args.o === 'string' ? args.o : typeof args.out === 'string' ? args.out : undefined;
    if (out && args.progressive)
      throw new UsageError(
        '-o with --progressive: use encode FILE.txt -o FILE.cram --progressive (it stores the horizon)',
      );
    if (out) checkOutFile(out, ...(typeof args.file === 'string' ? [args.file] : []));
    const loaded = await loadModel(str(args, 'model'));
    const { model, tokenizer } = loaded;
    const K = num(args, 'mem', 1);
    const ids = encodeWithin(
      tokenizer,
      text,
      model.info.maxPositions - K,
      typeof args.file === 'string' ? args.file : '--text',
    );
    if (args.progressive) {
      const [p] = await progressiveCram(model, [ids], {
        K,
        ...progressiveFlags(args),
        ...scheduleFlags(args),
        lr: num(args, 'lr', AUTHORS_ADAMW.lr),
        seed: num(args, 'seed', 0),
        quiet: Boolean(args.quiet || args.json),
      });
      // what the final mem holds, asked strictly: margins and exactness per storage precision of the held prefix
      const held = ids.slice(0, p.horizon);
      const x = held.length >= 2 ? await exactness(model, held, p.mem, K) : undefined;
      printProgressive(p, ids.length, Boolean(args.json), loaded.id, x);
      return;
    }
    const [r] = await cram(model, [ids], {
      K,
      maxSteps: num(args, 'maxSteps', CRAM_DEFAULTS.maxSteps),
      patience: num(args, 'patience', CRAM_DEFAULTS.patience),
      ...scheduleFlags(args),
      margin: num(args, 'margin', 0),
      lr: num(args, 'lr', AUTHORS_ADAMW.lr),
      seed: num(args, 'seed', 0),
      quiet: Boolean(args.quiet || args.json),
    });
    const m = await measure(model, ids, r, undefined, undefined, { text: tokenizer.decode(ids) });
    // Back again: what the best vectors make the model write, from them alone.
    const back = await decode(model, { vectors: r.bestMem, K, tokens: ids.length, firstId: ids[0] }, tokenizer);
    const same = diffIds(ids, back.ids).equal;
    if (out)
      saveCram(out, loaded, {
        vectors: r.bestMem,
        K,
        ids,
        text,
        extra: { accuracy: String(r.bestAccuracy), steps: String(r.steps), seconds: r.seconds.toFixed(2) },
      });
    const original = tokenizer.decode(ids);
    if (args.json) {
      console.log(
        JSON.stringify({
          ...m,
          trainable: r.trainable,
          model: loaded.id,
          original,
          decodedText: back.text,
          identical: same,
          file: out,
        }),
      );
      return;
    }
    console.log(`original           ${JSON.stringify(original)}`);
    console.log(`decoded from mem   ${JSON.stringify(back.text)}`);
    console.log(`diff               ${same ? 'identical' : formatDiff(tokenizer, ids, back.ids)}`);
    const theory = K * theoreticalCapacity(model.info.memDim, model.info.vocabSize);
    const ce = (c: typeof m.ceWithMem) =>
      `${c.totalBits.toFixed(2)} bits (${c.perTokenBits.toFixed(3)}/token), ${c.totalNats.toFixed(2)} nats`;
    console.log(
      `tokens N           ${m.N} (${m.N - 1} predicted), K = ${K}, compression ${m.compression.toFixed(1)} tokens/vector`,
    );
    console.log(
      `trainable          ${r.trainable} numbers${args.rank === undefined ? '' : args.rankTrain ? ' (K·rank + d·rank + d: mem = W z + b, W and b trained)' : ' (K·rank: mem = W z + b, W and b fixed)'}`,
    );
    console.log(
      `status             ${m.status} after ${m.steps} steps (best at step ${m.stepsToBest}), ${m.seconds.toFixed(1)} s`,
    );
    console.log(
      `best accuracy      ${(100 * m.bestAccuracy).toFixed(2)}% (${m.correctWithMem}/${m.N - 1})${m.decoded ? ': decoded exactly' : ''}`,
    );
    console.log(
      `without mem        accuracy ${((100 * m.correctWithoutMem) / (m.N - 1)).toFixed(2)}%, CE ${ce(m.ceWithoutMem)}`,
    );
    console.log(`with best mem      CE ${ce(m.ceWithMem)}`);
    console.log(
      `information gain   ${m.infoGainBits.toFixed(2)} bits (${m.infoGainNats.toFixed(2)} nats); paper convention (mean loss − min loss) × N: ${m.paperInfoGainNats.toFixed(2)} nats`,
    );
    console.log(`token gain         ${m.tokenGain}`);
    console.log(`model alone        ${modelAlone(m)}`);
    if (m.infoGainBits <= 0) console.log(GAIN_WARNING);
    printExactness(m);
    console.log(
      `theoretical cap.   ${theory.toFixed(1)} tokens for ${K} × ${model.info.memDim} 16-bit numbers, vocab ${model.info.vocabSize}`,
    );
    if (out) console.log(`wrote              ${out}`);
  },
};

/** How much of the text the model gets right with no vectors at all (greedy, the first token given). */
export const modelAlone = (m: { correctWithoutMem: number; N: number }): string =>
  `${m.correctWithoutMem} of ${m.N - 1} predicted tokens right with no vectors (greedy)`;

export const GAIN_WARNING =
  'warning            information gain ≤ 0: the model alone already predicts this text as well; the vectors show nothing (pick a text it does not know)';

/** Greedy horizon, margin, exactness per storage precision, and the bits next to classic compressors. */
export function printExactness(m: Pick<TextMetrics, 'N' | 'exactness' | 'bits'>): void {
  const x = m.exactness;
  if (!x) return;
  console.log(
    `greedy decode      ${x.greedyExact ? 'exact' : `horizon ${x.greedyHorizon} of ${m.N} tokens`}; teacher-forced ${(100 * x.teacherForced).toFixed(2)}%; min margin ${x.minMargin.toFixed(3)}`,
  );
  const at = PRECISIONS.map((p) => {
    const a = x.precisions[p];
    return `${p} ${a.exact ? 'exact' : `horizon ${a.horizon}`} (${a.bits} bits)`;
  });
  console.log(`stored as          ${at.join(', ')}`);
  const b = m.bits;
  if (b)
    console.log(
      `bits               vectors ${b.vectorBits ?? 'none exact'} vs text UTF-8 ${b.utf8}, gzip ${b.gzip}, brotli ${b.brotli}, xz ${b.xz}, model arithmetic code ${b.arith}; token ratio ${b.tokenRatio.toFixed(1)}, bit ratio ${b.bitRatio === null ? '-' : b.bitRatio.toFixed(3)}`,
    );
}

/** A progressive run: the horizon (longest prefix reproduced), how it grew, and the decode check. */
function printProgressive(p: ProgressiveResult, N: number, json: boolean, model: string, x?: Exactness): void {
  if (json) {
    const { mem: _mem, ...rest } = p;
    console.log(JSON.stringify({ ...rest, N, model, exactness: x }));
    return;
  }
  const grew = p.stages.map((s) => `${s.N}:${s.status === 'decoded' ? 'ok' : s.status}`).join(' ');
  console.log(
    `horizon            ${p.horizon} of ${N} tokens${p.censored ? ' (the whole text)' : ''}, K = ${p.K}, ${(p.horizon / p.K).toFixed(1)} tokens/vector`,
  );
  console.log(`stages             ${p.stages.length} (${grew})`);
  console.log(`steps              ${p.totalSteps}, ${p.seconds.toFixed(1)} s`);
  console.log(
    `greedy decode      ${p.check.equal ? `reproduces the first ${p.horizon} tokens exactly` : 'DIFFERS from the prefix (a bug: please report)'}`,
  );
  printExactness({ N: p.horizon, exactness: x });
  if (!p.check.equal) process.exitCode = 1;
}
