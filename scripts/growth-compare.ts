// node --import tsx scripts/growth-compare.ts [--count 16] [--Ks 1,2,4] [--tokens 128] [--stride 4] [--steps 300] [--patience 60]
//   [--methods stride,geometric,bisection,...] [--leading-weight 4 --leading-count 8] [--model stories260K] [--name search-methods]
// The 2026 anchor's search methods against today's, on the same texts, per K, from one run. A method is
//   stride | geometric | bisection, then optional modifiers in this order:
//   -probeP  geometric only: patience P for bisection probes (stages below a failed target; progressive.ts)
//   -fromfail geometric only: probes start from the failed stage's mem above them (probeStart 'failure')
//   -rK      low-rank mem, rank K (W, b fixed per text; stages warm-start z; lowrank.ts)
//   +lead    leading-token weighting (--leading-weight/--leading-count)
//   @LR      AdamW learning rate LR instead of the authors' 1e-2
// Each method is compared with bisection (the reference capacity) and with its baseline: the method less
// its last modifier (geometric's baseline is stride). Same per-stage budget (steps, patience) and seeds for
// all. Every horizon is checked by greedy decoding from the final mem (the script fails otherwise).
// Writes figures/<name>.{json,md}.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/backend';
import { capacitySearch } from '../src/cram/capacity';
import { progressiveCram, type Growth } from '../src/cram/progressive';
import { decode } from '../src/decode';
import { loadTexts } from '../src/datasets/index';
import { loadModel } from '../src/io/checkpoint';
import { tableMarkdown } from '../src/plots';
import { repoRoot, sharedModel } from '../src/workbook/paths';

const opt = {
  count: { type: 'string' },
  Ks: { type: 'string' },
  tokens: { type: 'string' },
  stride: { type: 'string' },
  steps: { type: 'string' },
  patience: { type: 'string' },
  out: { type: 'string' },
  methods: { type: 'string' },
  'leading-weight': { type: 'string' },
  'leading-count': { type: 'string' },
  model: { type: 'string' },
  texts: { type: 'string' },
  name: { type: 'string' },
} as const;
const { values } = parseArgs({ options: opt });
const COUNT = Number(values.count ?? 16);
const KS = (values.Ks ?? '1,2,4').split(',').map(Number);
const TOKENS = Number(values.tokens ?? 128);
const STRIDE = Number(values.stride ?? 4);
const STEPS = Number(values.steps ?? 300);
const PATIENCE = Number(values.patience ?? 60);
const METHODS = (values.methods ?? 'stride,geometric,bisection').split(',');
const LEADING = {
  leadingWeight: Number(values['leading-weight'] ?? 4),
  leadingCount: Number(values['leading-count'] ?? 8),
};
const NAME = values.name ?? 'search-methods';
const OUT = path.resolve(values.out ?? path.join(repoRoot(), 'figures'));

interface Method {
  name: string;
  kind: Growth | 'bisection';
  probe?: number;
  fromFail: boolean;
  rank?: number;
  /** AdamW lr (default the authors' 1e-2). */
  lr?: number;
  lead: boolean;
  /** The method less its last modifier (geometric → stride); undefined for stride and bisection. */
  baseline?: string;
}

function parseMethod(name: string): Method {
  const m = /^(stride|geometric|bisection)(?:-probe(\d+))?(-fromfail)?(?:-r(\d+))?(\+lead)?(?:@([0-9.e-]+))?$/.exec(
    name,
  );
  if (!m)
    throw new Error(`method '${name}': expected (stride|geometric|bisection)[-probeP][-fromfail][-rK][+lead][@lr]`);
  const [, kind, probe, fromFail, rank, lead, lr] = m;
  if ((probe || fromFail) && kind !== 'geometric')
    throw new Error(`method '${name}': -probe and -fromfail are for geometric growth`);
  if (rank && kind === 'bisection') throw new Error(`method '${name}': bisection takes no rank (full mems only)`);
  const baseline = lr
    ? name.replace(/@[^@]*$/, '')
    : lead
      ? name.slice(0, -'+lead'.length)
      : rank
        ? name.replace(/-r\d+$/, '')
        : fromFail
          ? name.slice(0, -'-fromfail'.length)
          : probe
            ? 'geometric'
            : kind === 'geometric'
              ? 'stride'
              : undefined;
  return {
    name,
    kind: kind as Method['kind'],
    probe: probe ? Number(probe) : undefined,
    fromFail: Boolean(fromFail),
    lr: lr ? Number(lr) : undefined,
    rank: rank ? Number(rank) : undefined,
    lead: Boolean(lead),
    baseline,
  };
}

type PerText = {
  horizon: number;
  steps: number;
  failedSteps: number;
  stages: number;
  curve?: { steps: number[]; held: number[] };
};

async function main() {
  const methods = METHODS.map(parseMethod);
  await initBackend();
  const modelName = values.model ?? 'stories260K';
  const dir = fs.existsSync(modelName) ? modelName : sharedModel(modelName);
  if (!dir) throw new Error(`${modelName} not found (a folder, or a model under CRAMLAB_MODELS / ../shared/models)`);
  const { model, tokenizer } = await loadModel(dir);
  const textsFile =
    values.texts ?? path.join(sharedModel('stories260K') ?? '', '..', '..', 'datasets', 'stories260k-samples.json');
  const texts = await loadTexts(textsFile, { tokenizer, count: COUNT, maxTokens: TOKENS });
  const ids = texts.map((t) => t.ids);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const run = async (K: number, m: Method): Promise<{ r: PerText[]; seconds: number }> => {
    const t0 = performance.now();
    const lead = { ...(m.lead ? LEADING : {}), ...(m.lr ? { lr: m.lr } : {}) };
    if (m.kind === 'bisection') {
      const c = await capacitySearch(model, ids, {
        K,
        startN: 8,
        maxSteps: STEPS,
        patience: PATIENCE,
        seed: 0,
        quiet: true,
        ...lead,
      });
      const seconds = (performance.now() - t0) / 1000;
      for (const x of c) {
        if (x.capacity < 2) continue;
        const { ids: back } = await decode(model, { vectors: x.mem!, K, tokens: x.capacity, firstId: ids[x.index][0] });
        if (back.some((t, k) => t !== ids[x.index][k]))
          throw new Error(`K=${K} ${m.name}: text ${x.index}'s mem does not decode its capacity ${x.capacity}`);
      }
      const r = c.map((x) => ({
        horizon: x.capacity,
        steps: x.totalSteps,
        failedSteps: x.attempts.reduce((n, a) => n + (a.decodedPrefix < a.N ? a.steps : 0), 0),
        stages: x.attempts.length,
      }));
      return { r, seconds };
    }
    const p = await progressiveCram(model, ids, {
      K,
      growth: m.kind,
      stride: STRIDE,
      stageSteps: STEPS,
      stagePatience: PATIENCE,
      ...(m.probe ? { probePatience: m.probe } : {}),
      ...(m.fromFail ? { probeStart: 'failure' as const } : {}),
      ...(m.rank ? { rank: m.rank } : {}),
      seed: 0,
      quiet: true,
      ...lead,
    });
    const seconds = (performance.now() - t0) / 1000;
    const bad = p.find((x) => !x.check.equal);
    if (bad) throw new Error(`K=${K} ${m.name}: text ${bad.index}'s mem does not decode its horizon ${bad.horizon}`);
    const r = p.map((x) => ({
      horizon: x.horizon,
      steps: x.totalSteps,
      failedSteps: x.stages.reduce((n, s) => n + (s.held < s.N ? s.steps : 0), 0),
      stages: x.stages.length,
      curve: x.curve,
    }));
    return { r, seconds };
  };
  const rows = [];
  const perText: Record<string, unknown>[] = [];
  for (const K of KS) {
    const got = new Map<string, { r: PerText[]; seconds: number }>();
    for (const m of methods) {
      got.set(m.name, await run(K, m));
      console.error(
        `K=${K} ${m.name}: mean ${mean(got.get(m.name)!.r.map((x) => x.horizon)).toFixed(2)}, ${got.get(m.name)!.seconds.toFixed(0)} s`,
      );
    }
    const versus = (a: PerText[], b?: PerText[]) =>
      b
        ? `${a.filter((x, i) => x.horizon > b[i].horizon).length}/${a.filter((x, i) => x.horizon === b[i].horizon).length}/${a.filter((x, i) => x.horizon < b[i].horizon).length}`
        : '–';
    // bisection at the method's lr (bisection@LR), else at the default
    const bis = (name: string) => (got.get(`bisection${/@[^@]*$/.exec(name)?.[0] ?? ''}`) ?? got.get('bisection'))?.r;
    for (const m of methods) {
      const { r, seconds } = got.get(m.name)!;
      const base = m.baseline ? got.get(m.baseline) : undefined;
      rows.push({
        K,
        method: m.name,
        'mean horizon': mean(r.map((x) => x.horizon)),
        'steps / text': mean(r.map((x) => x.steps)),
        'in failed stages': mean(r.map((x) => x.failedSteps)),
        stages: mean(r.map((x) => x.stages)),
        'wall s': seconds,
        'vs baseline > / = / <': base ? `${versus(r, base.r)} (${m.baseline})` : '–',
        'vs bisection > / = / <': m.kind === 'bisection' ? '–' : versus(r, bis(m.name)),
        'trainable / text': K * (m.rank ?? model.info.memDim),
      });
      perText.push({ K, method: m.name, texts: r.map((x, i) => ({ id: texts[i].id, ...x })) });
    }
  }
  model.dispose();
  const budget = {
    model: modelName,
    textsFile: path.basename(textsFile),
    count: COUNT,
    Ks: KS,
    maxTokens: TOKENS,
    stride: STRIDE,
    stageSteps: STEPS,
    stagePatience: PATIENCE,
    seed: 0,
    methods: METHODS,
    leading: LEADING,
  };
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, `${NAME}.json`), JSON.stringify({ budget, rows, perText }, null, 1) + '\n');
  const md = [
    `# Search methods: stride vs geometric vs bisection, full vs low-rank, leading-token weighting (${modelName})`,
    '',
    `${COUNT} texts (${path.basename(textsFile)}), first ${TOKENS} tokens, seed 0, at most ${STEPS} steps / patience ${PATIENCE} per stage`,
    `(bisection: per attempt). stride: +${STRIDE} tokens per stage, stop at the first failure. geometric: first target ${1 + STRIDE}, then`,
    '2·held on success, bisection between held and the shortest failure; -probeP: bisection probes get patience P;',
    '-fromfail: probes start from the best mem of the failed stage above them (not the last success). bisection:',
    'capacitySearch (doubling from 8, then bisecting). -rK: mem = W z + b with rank K, W and b fixed per text (trainable K·rank',
    `per text). +lead: the first ${LEADING.leadingCount} predictions weigh ${LEADING.leadingWeight}. @LR: AdamW lr LR (default 1e-2). All warm-start from the last success; every`,
    'horizon is checked by greedy decoding from the final mem. Horizons are tokens, BOS included; steps are cram steps per text',
    '(mean), those of failed stages apart; wall seconds for all texts on this machine (shared CPU, OMP_NUM_THREADS=1).',
    "'vs baseline': texts where the method's horizon is > / = / < its baseline's (the method less its last modifier);",
    "'vs bisection': the same against bisection (at the method's lr when the run has bisection@LR).",
    '',
    tableMarkdown(rows, 2),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(OUT, `${NAME}.md`), md);
  console.log(md);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
