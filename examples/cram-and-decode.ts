// Cram one sentence into two [mem] vectors of stories260K and decode it back.
// Run from the repository root: npx tsx examples/cram-and-decode.ts [MODEL_DIR] [TEXT]
import { loadModel, cram, measure, decode } from '../src';

async function main() {
  const { model, tokenizer } = await loadModel(process.argv[2] ?? '../shared/models/stories260K');
  // A sentence the model does not already know (alone it gets 7 of its 14 predicted tokens).
  const ids = tokenizer.encode(process.argv[3] ?? 'Tom found a blue key.');
  const [r] = await cram(model, [ids], { K: 2, quiet: true }); // r.bestMem, r.bestAccuracy, r.steps, r.status
  const m = await measure(model, ids, r); // CE with/without mem, information and token gain
  const back = await decode(model, { vectors: r.bestMem, K: 2, tokens: ids.length, firstId: ids[0] }, tokenizer);
  console.log(`decoded     ${JSON.stringify(back.text)} (${r.status} after ${r.steps} steps)`);
  console.log(
    `with mem    ${m.correctWithMem} of ${m.N - 1} tokens; model alone: ${m.correctWithoutMem} of ${m.N - 1}`,
  );
  console.log(`info gain   ${m.infoGainBits.toFixed(1)} bits in 2 vectors`);
  if (m.infoGainBits <= 0) console.log('warning: information gain ≤ 0: the model alone predicts this text as well');
}

main().catch((e) => {
  // A clone without ../shared still has the embedded model: say how to run the example on it.
  const hint = !process.argv[2] && /does not exist/.test(e.message) ? HINT : '';
  console.error(e.message + hint);
  process.exit(1);
});

const HINT = '; try the embedded model: npx tsx examples/cram-and-decode.ts ./models/cram-llama-d64 "Call me Ishmael."';
