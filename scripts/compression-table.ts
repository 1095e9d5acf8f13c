// node --import tsx scripts/compression-table.ts [--count 16] [--tokens 120] [--K 1]
// Classic compressors vs the model vs raw [mem] vectors on passages the models never trained on
// (datasets/unseen.jsonl, held-out Moby-Dick chapters), for the embedded cram-llama-d64 and the
// shared stories260K; stories260K also on its own sample stories. Per passage: gzip, brotli, xz
// bits, the model's CE without mem, the real arithmetic code under the model (decoded back and
// checked), K mem vectors at fp16/fp32; bits per character of each.
// Writes figures/compression.json (every passage) and figures/compression.md (means per set).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backend';
import { loadTexts } from '../src/datasets/index';
import { loadModel } from '../src/io/checkpoint';
import { compressionRow, type CompressionRow } from '../src/metrics/compression';
import { tableMarkdown } from '../src/plots';
import { modelPath, repoRoot, sharedModel } from '../src/workbook/paths';

const { values } = parseArgs({
  options: { count: { type: 'string' }, tokens: { type: 'string' }, K: { type: 'string' }, out: { type: 'string' } },
});
const COUNT = Number(values.count ?? 16);
const TOKENS = Number(values.tokens ?? 120);
const K = Number(values.K ?? 1);
const OUT = path.resolve(values.out ?? path.join(repoRoot(), 'figures'));

async function main() {
  await initBackend();
  const s260 = sharedModel('stories260K');
  const jobs: { model: string; dir: string; set: string; source: string }[] = [
    { model: 'cram-llama-d64', dir: modelPath('models/cram-llama-d64'), set: 'unseen', source: 'unseen' },
  ];
  if (s260) {
    jobs.push({ model: 'stories260K', dir: s260, set: 'unseen', source: 'unseen' });
    jobs.push({
      model: 'stories260K',
      dir: s260,
      set: 'own samples',
      source: path.join(s260, '..', '..', 'datasets', 'stories260k-samples.json'),
    });
  } else console.error('stories260K not found (CRAMLAB_MODELS or ../shared/models): its rows are left out');

  const rows: (CompressionRow & { model: string; set: string })[] = [];
  for (const job of jobs) {
    const { model, tokenizer } = await loadModel(job.dir);
    const texts = await loadTexts(job.source, {
      tokenizer,
      count: COUNT,
      maxTokens: Math.min(TOKENS, model.info.maxPositions),
    });
    const t0 = performance.now();
    for (const t of texts)
      rows.push({
        model: job.model,
        set: job.set,
        ...(await compressionRow(model, t.ids, tokenizer.decode(t.ids), K, t.id)),
      });
    console.error(
      `${job.model} / ${job.set}: ${texts.length} passages in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    model.dispose();
  }

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const summary = jobs.map(({ model, set }) => {
    const rs = rows.filter((r) => r.model === model && r.set === set);
    const m = (f: (r: CompressionRow) => number) => mean(rs.map(f));
    return {
      model,
      set,
      passages: rs.length,
      tokens: m((r) => r.tokens),
      chars: m((r) => r.chars),
      'raw bpc': m((r) => (8 * r.bytes) / r.chars),
      'gzip bpc': m((r) => r.bpc.gzip),
      'brotli bpc': m((r) => r.bpc.brotli),
      'xz bpc': m((r) => r.bpc.xz),
      'CE bpc': m((r) => r.bpc.ce),
      'arith bpc': m((r) => r.bpc.arith),
      'arith − CE (bits/passage)': m((r) => r.arithOverheadBits),
      [`${K} mem fp16 bpc`]: m((r) => r.bpc.memFp16),
      [`${K} mem fp32 bpc`]: m((r) => r.bpc.memFp32),
      'tokens per vector': m((r) => r.tokensPerVector),
    };
  });
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(
    path.join(OUT, 'compression.json'),
    JSON.stringify({ count: COUNT, maxTokens: TOKENS, K, summary, rows }, null, 1) + '\n',
  );
  const md = [
    '# Classic compressors vs the model vs [mem] vectors',
    '',
    `Means over ${COUNT} passages of at most ${TOKENS} tokens (scripts/compression-table.ts). bpc = bits per character of the`,
    'passage. gzip -9, brotli q11, xz -9 (liblzma) on its UTF-8 (their headers included, which dominate at this size);',
    "CE = the model's cross-entropy without mem; arith = the real arithmetic code under the model, decoded back to the",
    `ids; mem = the raw size of ${K} [mem] vector(s) of width d at fp16/fp32 (the size only: whether ${K} vector(s) hold a`,
    'whole passage is what cramming measures). The first token (BOS) is given to the arithmetic coder, as to mem decoding.',
    '',
    tableMarkdown(summary, 3),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(OUT, 'compression.md'), md);
  console.log(md);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
