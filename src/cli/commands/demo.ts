// The embedded default, at its best honest size, on one unseen (held-out Moby-Dick) passage:
//   1. the progressive horizon with ONE [mem] vector: how many tokens one vector of the default model holds;
//   2. a whole short passage (the opening sentence, or the opening cut at a word boundary, that fits the
//      length budget) with the FEWEST vectors that decode it exactly: K doubled from a guess taken from
//      step 1, then bisected; every success checked by greedy generation from the vectors alone;
//   then the text back, a character diff, steps, seconds, bits held per vector (information gain / K:
//   CE without mem − CE with mem, in bits) and the classic compressors' bits for the same text.
// The default model has a context of 128 positions and the passage plus its K vectors must fit in it,
// so a ~200-character passage cannot be crammed whole (byte-level: its 200 tokens alone exceed 128).
// The default budget (--chars 56 bytes) is what keeps the whole run under a minute on 2 CPU cores: the passage's
// next word ('shrieks', --chars 64) already takes 50 vectors and 54.5 s wall at load 3.9–4.7.
// The output says why the passage is this short.
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend } from '../../backend';
import { fewestVectors, type FewestVectors } from '../../cram/capacity';
import { cram, CramError, type CramResult } from '../../cram/cram';
import { progressiveCram } from '../../cram/progressive';
import { loadTexts } from '../../datasets/index';
import { decode, diffIds, formatDiff } from '../../decode';
import { loadModel } from '../../io/checkpoint';
import { classicBits } from '../../metrics/compression';
import type { CausalLM } from '../../models/types';
import { engineFor } from '../../native/index';
import { scoreText } from '../../score';
import type { Tokenizer } from '../../io/tokenizer';
import { DEFAULT_MODEL } from '../../train/suite';
import { num, str, UsageError, type Args } from '../args';
import type { Command } from '../main';

/** The package root, so `npx cramlab demo` finds models/ from any working directory. */
const ROOT = path.join(__dirname, '..', '..', '..');

/** Default length budget of the whole passage, in UTF-8 bytes (the default model is byte-level). */
export const DEMO_PASSAGE_BYTES = 56;

/** The opening of `text` that fits `maxBytes`: its first sentence when that fits, else cut at the last word boundary. */
export function passageOpening(text: string, maxBytes: number): { text: string; sentence: boolean } {
  const fits = (s: string) => Buffer.byteLength(s, 'utf8') <= maxBytes;
  const sentence = text.match(/^.*?[.!?;](?=\s|$)/s)?.[0];
  if (sentence && fits(sentence)) return { text: sentence, sentence: true };
  let cut = '';
  for (const m of text.matchAll(/\S+/g)) {
    const next = text.slice(0, m.index! + m[0].length);
    if (!fits(next)) break;
    cut = next;
  }
  if (!cut) cut = [...text].reduce((s, ch) => (fits(s + ch) ? s + ch : s), '');
  return { text: cut.replace(/[\s,;:—-]+$/, ''), sentence: false };
}

/** The text's cross-entropy under the model (bits, N-1 predicted tokens) without mem and behind `mem`. */
async function ceBits(
  model: CausalLM,
  ids: number[],
  mem: Float32Array,
  K: number,
): Promise<{ without: number; with: number }> {
  const without = await scoreText(model, ids);
  const prefix = tf.tensor2d(mem, [K, model.info.memDim]);
  try {
    return { without: without.totalBits, with: (await scoreText(model, ids, prefix)).totalBits };
  } finally {
    prefix.dispose();
  }
}

function charDiff(tokenizer: Tokenizer, original: number[], decoded: number[]): string {
  return diffIds(original, decoded).equal ? 'identical' : formatDiff(tokenizer, original, decoded);
}

export const command: Command = {
  name: 'demo',
  summary:
    "the built-in model at its best honest size: one vector's horizon on an unseen passage, then the fewest vectors that hold a whole short passage (offline, < 1 min)",
  usage: `demo [--model ${DEFAULT_MODEL}] [--passage 0] [--chars ${DEMO_PASSAGE_BYTES}] [--mem auto|K] [--seed 0] [--max-steps 1000] [--json]`,
  booleans: ['json'],
  async run(args: Args) {
    const t0 = performance.now();
    const modelArg = str(args, 'model', path.join(ROOT, DEFAULT_MODEL));
    const passage = num(args, 'passage', 0);
    const chars = num(args, 'chars', DEMO_PASSAGE_BYTES);
    const autoK = args.mem === undefined || args.mem === 'auto';
    const fixedK = autoK ? 0 : num(args, 'mem');
    const maxSteps = num(args, 'maxSteps', 1000);
    const seed = num(args, 'seed', 0);
    if (!Number.isInteger(chars) || chars < 2)
      throw new UsageError(`--chars must be an integer ≥ 2, got ${args.chars}`);
    if (!Number.isInteger(passage) || passage < 0)
      throw new UsageError(`--passage must be an integer ≥ 0, got ${passage}`);
    if (!autoK && !(Number.isInteger(fixedK) && fixedK >= 1))
      throw new UsageError(`--mem must be 'auto' or an integer ≥ 1, got ${args.mem}`);
    if (!Number.isInteger(maxSteps) || maxSteps < 1)
      throw new UsageError(`--max-steps must be a positive integer, got ${args.maxSteps}`);
    const { model, tokenizer, dir } = await loadModel(modelArg);
    const ctx = model.info.maxPositions;
    const texts = await loadTexts('unseen', { tokenizer, maxTokens: ctx - 1, count: passage + 1 });
    if (passage >= texts.length)
      throw new UsageError(`--passage ${passage}: the unseen set has ${texts.length} passages`);
    const { id } = texts[passage];
    const full = tokenizer.decode(texts[passage].ids);
    const quiet = Boolean(args.json);
    const name = path.basename(dir);

    // 1. One vector: the progressive horizon (the target grows 2 tokens per stage, warm-started).
    if (!quiet) console.log(`1/2 progressive horizon of unseen passage ${id} with 1 vector of ${name}...`);
    const hIds = texts[passage].ids.slice(0, Math.min(texts[passage].ids.length, 64));
    const [p] = await progressiveCram(model, [hIds], {
      K: 1,
      stride: 2,
      stageSteps: 1500,
      stagePatience: 500,
      seed,
      quiet: true,
    });
    const hHeld = hIds.slice(0, p.horizon);
    const hce = p.horizon >= 2 ? await ceBits(model, hHeld, p.mem, 1) : { without: 0, with: 0 };
    const horizon = {
      K: 1,
      tokens: p.horizon,
      original: tokenizer.decode(hHeld),
      decoded: tokenizer.decode(p.check.ids),
      identical: p.check.equal,
      diff: charDiff(tokenizer, hHeld, p.check.ids),
      stages: p.stages.length,
      steps: p.totalSteps,
      seconds: p.seconds,
      ceWithoutMemBits: hce.without,
      ceWithMemBits: hce.with,
      bitsPerVector: hce.without - hce.with,
    };

    // 2. A whole passage within the budget, with the fewest vectors that decode it.
    const opening = passageOpening(full, Math.min(chars, ctx - 2));
    let ids = tokenizer.encode(opening.text);
    if (ids.length > ctx - 1) ids = ids.slice(0, ctx - 1);
    const original = tokenizer.decode(ids);
    // Guess K from one vector's horizon (h tokens = h-1 predicted per vector), rounded up to a power of two.
    const perVector = Math.max(1, p.horizon - 1);
    const guess = 2 ** Math.ceil(Math.log2(Math.max(1, (ids.length - 1) / perVector)));
    if (!quiet)
      console.log(
        `2/2 fewest vectors of ${name} that hold the whole ${opening.sentence ? 'opening sentence' : 'opening'} (${Buffer.byteLength(original)} bytes, ${ids.length} tokens; K from ${autoK ? guess : fixedK})...`,
      );
    const t2 = performance.now();
    let K: number;
    let r: CramResult;
    let attempts: FewestVectors['attempts'];
    if (autoK) {
      ({
        K,
        result: r,
        attempts,
      } = await fewestVectors(model, ids, {
        guess,
        failsAt: p.horizon >= ids.length ? 0 : 1,
        maxK: model.info.maxPositions - ids.length,
        maxSteps,
        patience: Math.max(50, Math.round(maxSteps / 5)),
        seed,
        quiet: true,
      }).catch((e: unknown) => {
        // The library's message says no K decoded; the demo knows which of its flags would help.
        if (e instanceof CramError) throw new CramError(`${e.message}: try --chars lower or --max-steps higher`);
        throw e;
      }));
    } else {
      K = fixedK;
      if (ids.length + K > ctx)
        throw new UsageError(`--mem ${K}: ${ids.length} tokens + ${K} vectors exceed the context of ${ctx}`);
      [r] = await cram(model, [ids], { K, maxSteps, seed, quiet: true });
      attempts = [
        { K, decoded: r.status === 'decoded', bestAccuracy: r.bestAccuracy, steps: r.steps, seconds: r.seconds },
      ];
    }
    const wholeSeconds = (performance.now() - t2) / 1000;
    const back = await decode(model, { vectors: r.bestMem, K, tokens: ids.length, firstId: ids[0] });
    const ce = await ceBits(model, ids, r.bestMem, K);
    const classic = await classicBits(original);
    const identical = diffIds(ids, back.ids).equal;
    const whole = {
      sentence: opening.sentence,
      chars: [...original].length,
      bytes: Buffer.byteLength(original, 'utf8'),
      tokens: ids.length,
      K,
      original,
      decoded: tokenizer.decode(back.ids),
      identical,
      diff: charDiff(tokenizer, ids, back.ids),
      attempts,
      steps: attempts.reduce((n, a) => n + a.steps, 0),
      seconds: wholeSeconds,
      accuracyWithMem: r.bestAccuracy,
      ceWithoutMemBits: ce.without,
      ceWithMemBits: ce.with,
      infoGainBits: ce.without - ce.with,
      bitsPerVector: (ce.without - ce.with) / K,
      memFp16Bits: K * model.info.memDim * 16,
      gzipBits: classic.gzip,
      brotliBits: classic.brotli,
      xzBits: classic.xz,
    };
    const seconds = (performance.now() - t0) / 1000;
    const report = {
      model: name,
      modelType: model.info.modelType,
      /** Where the cramming ran: the native C engine where it runs the model, else tfjs. */
      engine: engineFor(model),
      /** The tfjs backend (scoring, and cramming when the engine is tfjs). */
      backend: currentBackend(),
      params: model.numParams,
      memDim: model.info.memDim,
      context: ctx,
      passage: id,
      budgetBytes: chars,
      horizon,
      whole,
      seconds,
    };
    model.dispose();
    if (args.json) console.log(JSON.stringify(report));
    else {
      const b = (x: number) => `${x.toFixed(1)} bits`;
      console.log(
        `model             ${name} (${report.modelType}, ${report.params.toLocaleString('en-US')} parameters, d = ${report.memDim}, context ${ctx})`,
      );
      console.log(
        `engine            ${report.engine === 'native' ? 'native (C)' : 'tfjs'} for cramming; tfjs backend ${report.backend} for scoring`,
      );
      console.log(`passage           ${id} (held-out Moby-Dick chapter: never seen in training)`);
      console.log('');
      console.log(`── one vector: progressive horizon`);
      console.log(`original          ${JSON.stringify(horizon.original)}`);
      console.log(`decoded from mem  ${JSON.stringify(horizon.decoded)}`);
      console.log(`diff              ${horizon.diff}`);
      console.log(
        `horizon           ${horizon.tokens} tokens (${horizon.tokens - 1} predicted) in 1 vector, ${horizon.stages} stages`,
      );
      console.log(`steps, seconds    ${horizon.steps} steps, ${horizon.seconds.toFixed(1)} s`);
      console.log(
        `bits per vector   ${b(horizon.bitsPerVector)} (CE ${horizon.ceWithoutMemBits.toFixed(1)} → ${horizon.ceWithMemBits.toFixed(1)} bits)`,
      );
      console.log('');
      console.log(`── the whole ${opening.sentence ? 'opening sentence' : 'opening, cut at a word'}: fewest vectors`);
      // Whether a ~200-character passage would fit this model's context (it does for stories260K's 512).
      // The passage was loaded cut to ctx - 1 tokens, so reaching that length means it did not fit.
      const t200 = tokenizer.encode(full.slice(0, 200)).length;
      console.log(
        t200 >= ctx - 1
          ? `why this long     context ${ctx} positions = text + K vectors, so a ~200-character passage does not fit;`
          : `why this long     a ~200-character passage (${t200} tokens) fits the context of ${ctx} positions, but needs many vectors and minutes;`,
      );
      console.log(
        chars === DEMO_PASSAGE_BYTES
          ? `                  the default budget, ${chars} bytes (--chars), keeps the whole run under a minute on 2 CPU cores`
          : `                  budget ${chars} bytes set by --chars (the default, ${DEMO_PASSAGE_BYTES}, keeps the run under a minute on 2 CPU cores)`,
      );
      console.log(`original          ${JSON.stringify(original)}`);
      console.log(`decoded from mem  ${JSON.stringify(whole.decoded)}`);
      console.log(`diff              ${whole.diff}`);
      console.log(
        `K                 ${K} vectors of ${report.memDim} for ${whole.tokens} tokens (${whole.chars} chars); ${autoK ? `search ${attempts.map((a) => `K=${a.K}:${a.decoded ? 'ok' : `${(100 * a.bestAccuracy).toFixed(0)}%`}`).join(' ')}` : 'given by --mem'}`,
      );
      console.log(`steps, seconds    ${whole.steps} steps, ${whole.seconds.toFixed(1)} s`);
      console.log(
        `bits per vector   ${b(whole.bitsPerVector)} (CE ${whole.ceWithoutMemBits.toFixed(1)} → ${whole.ceWithMemBits.toFixed(1)} bits = ${b(whole.infoGainBits)} over ${K} vectors)`,
      );
      console.log(
        `same text as      gzip ${whole.gzipBits}, brotli ${whole.brotliBits}, xz ${whole.xzBits} bits; model CE alone ${b(whole.ceWithoutMemBits)}; the ${K} vectors raw (fp16) ${whole.memFp16Bits} bits`,
      );
      console.log('');
      console.log(`seconds in all    ${seconds.toFixed(1)}`);
    }
    if (!horizon.identical || !identical)
      throw new Error(
        `the decoded text differs from the original (${!identical ? `whole passage, K = ${K}` : 'horizon'}): try --max-steps higher or --chars lower`,
      );
  },
};
