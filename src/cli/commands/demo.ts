// The embedded default: cram one unseen passage into one [mem] vector of the default suite model,
// decode it back greedily from that vector alone, and show that the text comes back unchanged.
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend } from '../../backend';
import { capacitySearch } from '../../cram/capacity';
import { cram } from '../../cram/cram';
import { loadTexts } from '../../datasets/index';
import { greedyGenerate } from '../../generate';
import { loadModel } from '../../io/checkpoint';
import { measure } from '../../metrics/text';
import { DEFAULT_MODEL } from '../../train/suite';
import { num, str, UsageError, type Args } from '../args';
import type { Command } from '../main';

/** The package root, so `npx cramlab demo` finds models/ from any working directory. */
const ROOT = path.join(__dirname, '..', '..', '..');

/** Longest prefix the default search tries (the unseen passages are longer). */
export const DEMO_MAX_TOKENS = 64;

export const command: Command = {
  name: 'demo',
  summary: 'cram an unseen Moby-Dick passage into one vector of the built-in model and decode it back (offline, < 1 min)',
  usage: `demo [--model ${DEFAULT_MODEL}] [--tokens auto|N] [--passage 0] [--mem 1] [--seed 0] [--max-steps 3000] [--json]`,
  booleans: ['json'],
  async run(args: Args) {
    const t0 = performance.now();
    const modelArg = str(args, 'model', path.join(ROOT, DEFAULT_MODEL));
    // --tokens auto (default): find the longest opening of the passage one vector holds; --tokens N: cram exactly N.
    const auto = args.tokens === undefined || args.tokens === 'auto';
    const N = auto ? DEMO_MAX_TOKENS : num(args, 'tokens');
    const passage = num(args, 'passage', 0);
    const K = num(args, 'mem', 1);
    const maxSteps = num(args, 'maxSteps', auto ? 1500 : 3000);
    const seed = num(args, 'seed', 0);
    if (!Number.isInteger(N) || N < 2) throw new UsageError(`--tokens must be 'auto' or an integer ≥ 2, got ${args.tokens}`);
    if (!Number.isInteger(passage) || passage < 0) throw new UsageError(`--passage must be an integer ≥ 0, got ${passage}`);
    const { model, tokenizer, dir } = await loadModel(modelArg);
    const texts = await loadTexts('unseen', { tokenizer, maxTokens: N, count: passage + 1 });
    if (passage >= texts.length) throw new UsageError(`--passage ${passage}: the unseen set has ${texts.length} passages`);
    const { id } = texts[passage];
    let ids = texts[passage].ids;
    const quiet = Boolean(args.json);
    let searchSteps = 0;
    let searchSeconds = 0;
    let initMem: Float32Array | undefined;
    if (auto) {
      if (!quiet) console.log(`searching the longest opening of unseen passage ${id} that ${K} vector(s) of ${path.basename(dir)} hold (up to ${ids.length} tokens)...`);
      const [found] = await capacitySearch(model, [ids], { K, seed, maxSteps, patience: Math.min(500, maxSteps), quiet: true });
      if (found.capacity < 2 || !found.mem) throw new Error(`no opening of passage ${id} decodes from ${K} vector(s) of ${path.basename(dir)} (${found.totalSteps} steps tried): try --mem higher or --max-steps higher`);
      ids = ids.slice(0, found.capacity);
      searchSteps = found.totalSteps;
      searchSeconds = found.seconds;
      initMem = found.mem;
      if (!quiet) console.log(`  ${found.attempts.map((a) => `N=${a.N}: ${a.decodedPrefix >= a.N ? 'decoded' : `${(100 * a.bestAccuracy).toFixed(0)}%`}`).join(', ')} → ${ids.length} tokens`);
    } else if (!quiet) console.log(`cramming ${ids.length} tokens of unseen passage ${id} into ${K} vector(s) of ${path.basename(dir)}...`);
    // With the search's mem as the start, this run only confirms it (it stops at 100% at once).
    const [r] = await cram(model, [ids], { K, seed, maxSteps, initMem, quiet: true });
    // Decode from the vectors alone: the model sees [mem; <s>] and continues greedily.
    const mem = tf.tensor2d(r.bestMem, [K, model.info.memDim]);
    const out = await greedyGenerate(model, ids.slice(0, 1), { prefix: mem, maxNewTokens: ids.length - 1, eosTokenIds: [] });
    mem.dispose();
    const m = await measure(model, ids, r, id);
    const original = tokenizer.decode(ids);
    const decoded = tokenizer.decode([ids[0], ...out]);
    const identical = out.length === ids.length - 1 && out.every((t, i) => t === ids[i + 1]);
    const seconds = (performance.now() - t0) / 1000;
    const report = {
      model: path.basename(dir),
      backend: currentBackend(),
      params: model.numParams,
      passage: id,
      original,
      decoded,
      identical,
      N: ids.length,
      K,
      memDim: model.info.memDim,
      steps: r.steps + searchSteps,
      stepsToBest: r.stepsToBest,
      cramSeconds: searchSeconds + r.seconds,
      seconds,
      accuracyWithMem: m.bestAccuracy,
      accuracyWithoutMem: m.correctWithoutMem / (ids.length - 1),
      ceWithoutMemBits: m.ceWithoutMem.totalBits,
      ceWithMemBits: m.ceWithMem.totalBits,
      infoGainBits: m.infoGainBits,
    };
    model.dispose();
    if (args.json) console.log(JSON.stringify(report));
    else {
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      console.log(`model             ${report.model} (${model.info.modelType}, ${report.params.toLocaleString('en-US')} parameters, d = ${report.memDim}), backend ${report.backend}`);
      console.log(`passage           ${id} (held-out Moby-Dick chapter: never seen in training)`);
      console.log(`original          ${JSON.stringify(original)}`);
      console.log(`decoded from mem  ${JSON.stringify(decoded)}`);
      console.log(`identical         ${identical ? 'yes' : 'NO'}`);
      console.log(`N, K              ${report.N} tokens (${report.N - 1} predicted) in ${K} vector(s) of ${report.memDim} numbers`);
      console.log(`steps             ${report.steps}${auto ? ' (all lengths searched)' : ` (best at ${r.stepsToBest})`}, status ${r.status}`);
      console.log(`seconds           ${report.cramSeconds.toFixed(1)} cramming, ${seconds.toFixed(1)} in all`);
      console.log(`greedy accuracy   ${pct(report.accuracyWithMem)} with mem, ${pct(report.accuracyWithoutMem)} without`);
      console.log(`information gain  ${report.infoGainBits.toFixed(1)} bits (CE ${report.ceWithoutMemBits.toFixed(1)} → ${report.ceWithMemBits.toFixed(1)} bits)`);
    }
    if (!identical) throw new Error(`the decoded text differs from the original (best accuracy ${(100 * r.bestAccuracy).toFixed(1)}% after ${r.steps} steps): try --max-steps higher or --tokens lower`);
  },
};
