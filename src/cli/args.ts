// A small argument parser: --key value, --key=value, --flag, -o value, and positionals.
// With a list of known flags it refuses unknown ones (naming the nearest) and value flags given no value.
export interface Args {
  _: string[];
  [key: string]: string | boolean | string[] | undefined;
}

export class UsageError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'UsageError';
  }
}

const camel = (s: string): string => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
const dashed = (key: string): string =>
  (key.length === 1 ? '-' : '--') + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** The flags (camelCase keys) that a usage line names: `--max-steps 5000` → maxSteps, `-o F` → o. */
export function flagsOfUsage(usage: string): string[] {
  const out = new Set<string>();
  for (const m of usage.matchAll(/(?:^|[\s[(|])--([a-z][a-z0-9-]*)/g)) out.add(camel(m[1]));
  for (const m of usage.matchAll(/(?:^|[\s[(|])-([a-zA-Z])\b/g)) out.add(m[1]);
  return [...out];
}

export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

function unknownFlag(want: string, known: string[]): UsageError {
  const near = known.map((k) => ({ k, d: editDistance(want, dashed(k)) })).sort((x, y) => x.d - y.d)[0];
  const hint =
    near && near.d <= Math.max(2, Math.floor(want.length / 3))
      ? `; did you mean ${dashed(near.k)}?`
      : known.length
        ? `; known flags: ${known.map(dashed).join(' ')}`
        : '';
  return new UsageError(`unknown flag ${want}${hint}`);
}

/** `known`: the value-taking flags allowed (undefined: any); `booleans` take no value. */
export function parseArgs(argv: string[], booleans: string[] = [], known?: string[]): Args {
  const out: Args = { _: [] };
  const all = known && [...new Set([...known, ...booleans])];
  const check = (key: string, raw: string) => {
    if (all && !all.includes(key))
      throw unknownFlag(
        raw,
        all.filter((k) => k !== 'help'),
      );
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out._.push(...argv.slice(i + 1));
      break;
    }
    const long = a.startsWith('--');
    const short = !long && /^-[a-zA-Z]$/.test(a);
    if (!long && !short) {
      out._.push(a);
      continue;
    }
    const eq = long ? a.indexOf('=') : -1;
    const key = long ? camel(eq > 0 ? a.slice(2, eq) : a.slice(2)) : a.slice(1);
    check(key, eq > 0 ? a.slice(0, eq) : a);
    // A flag given twice is an error, never a silent pick of one (lists take commas: --mem 1,2).
    const alias = key === 'o' ? 'out' : key === 'out' ? 'o' : key;
    if (Object.hasOwn(out, key) || (all?.includes(alias) && Object.hasOwn(out, alias)))
      throw new UsageError(`${dashed(key)} is given twice; give it once (a list as one comma-separated value)`);
    if (eq > 0) {
      if (booleans.includes(key)) throw new UsageError(`${dashed(key)} takes no value`);
      out[key] = a.slice(eq + 1);
    } else if (booleans.includes(key)) out[key] = true;
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[key] = argv[++i];
    else if (all) throw new UsageError(`${dashed(key)} needs a value`);
    else out[key] = true;
  }
  return out;
}

export function str(args: Args, key: string, fallback?: string): string {
  const v = args[key];
  if (typeof v === 'string') return v;
  if (fallback !== undefined) return fallback;
  throw new UsageError(`${dashed(key)} is required`);
}

// One home for what each numeric flag may be; num() and numList() enforce it for every command.
interface NumRule {
  int?: boolean;
  min?: number;
  max?: number;
  above?: number;
  word?: string;
}
const POSITIVE_INT: NumRule = { int: true, min: 1 };
const COUNT: NumRule = { int: true, min: 0 };
// K vectors share the model's context with the text: no model here has a million positions.
const MEM_COUNT: NumRule = { int: true, min: 1, max: 1_000_000 };
const NUM_RULES: Record<string, NumRule> = {
  mem: MEM_COUNT,
  K: MEM_COUNT,
  batch: POSITIVE_INT,
  concurrency: POSITIVE_INT,
  steps: POSITIVE_INT,
  maxSteps: POSITIVE_INT,
  patience: POSITIVE_INT,
  count: POSITIVE_INT,
  stride: POSITIVE_INT,
  stageSteps: POSITIVE_INT,
  stagePatience: POSITIVE_INT,
  probePatience: POSITIVE_INT,
  leadingWeight: { above: 0 },
  rank: POSITIVE_INT,
  leadingCount: COUNT,
  minLr: { min: 0 },
  clipGradNorm: { min: 0 },
  lengths: { int: true, min: 2 },
  layers: POSITIVE_INT,
  d: POSITIVE_INT,
  maxTokens: POSITIVE_INT,
  tokens: { int: true, min: 2, word: 'auto' },
  vocabSize: POSITIVE_INT,
  seqLen: POSITIVE_INT,
  evalEvery: POSITIVE_INT,
  checkpointEvery: POSITIVE_INT,
  logEvery: POSITIVE_INT,
  maxNewTokens: COUNT,
  seed: COUNT,
  passage: COUNT,
  warmup: COUNT,
  lr: { above: 0 },
  clip: { above: 0 },
  maxMinutes: { above: 0 },
  weightDecay: { min: 0 },
  bosProb: { min: 0, max: 1 },
};

/** Plain decimal numbers only: '0x2', '0b1', 'Infinity' and '1_000' are refused rather than read as JS would. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function checkNum(key: string, raw: string, n: number): number {
  const r = NUM_RULES[key] ?? {};
  if (r.word !== undefined && raw === r.word) return NaN;
  const what = r.int
    ? r.min === 1
      ? 'a positive integer'
      : r.min === 0
        ? 'an integer ≥ 0'
        : `an integer ≥ ${r.min}`
    : r.above !== undefined
      ? `a number > ${r.above}`
      : r.max !== undefined
        ? `a number in [${r.min}, ${r.max}]`
        : r.min !== undefined
          ? `a number ≥ ${r.min}`
          : 'a number';
  const ok =
    Number.isFinite(n) &&
    DECIMAL.test(raw.trim()) &&
    (!r.int || Number.isSafeInteger(n)) &&
    (r.min === undefined || n >= r.min) &&
    (r.max === undefined || n <= r.max) &&
    (r.above === undefined || n > r.above);
  if (!ok && r.int && r.max !== undefined && Number.isSafeInteger(n) && n > r.max && DECIMAL.test(raw.trim()))
    throw new UsageError(`${dashed(key)} must be at most ${r.max}, got '${raw}'`);
  if (!ok) throw new UsageError(`${dashed(key)} must be ${r.word ? `'${r.word}' or ` : ''}${what}, got '${raw}'`);
  return n;
}

export function num(args: Args, key: string, fallback?: number): number {
  const v = args[key];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`${dashed(key)} is required`);
  }
  if (typeof v !== 'string') throw new UsageError(`${dashed(key)} needs a value`);
  return checkNum(key, v, Number(v));
}

export function numList(args: Args, key: string, fallback: number[]): number[] {
  const v = args[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'string') throw new UsageError(`${dashed(key)} needs a value`);
  return v.split(',').map((s) => checkNum(key, s, Number(s)));
}

/** Check every numeric flag given, before a command loads models or reads texts (lists: each item). */
export function checkNumbers(args: Args): void {
  for (const [key, v] of Object.entries(args)) {
    if (key === '_' || !(key in NUM_RULES)) continue;
    if (typeof v !== 'string') throw new UsageError(`${dashed(key)} needs a value`);
    for (const s of v.split(',')) checkNum(key, s, Number(s));
  }
}

/** How many positionals a usage line takes: the words between the command and its first flag ('encode FILE.txt -o ...' → 1). */
export function positionalsOfUsage(usage: string): number {
  const words = usage.split(/\s+/).slice(1);
  const first = words.findIndex((w) => /^[-[(]/.test(w));
  return first < 0 ? words.length : first;
}

/** Flags that name the same input two ways: giving both is an error, not a silent pick. */
const EXCLUSIVE: [string, string][] = [['text', 'file']];

/** Refuse stray positionals (beyond what `usage` takes) and both of two exclusive flags. */
export function checkShape(args: Args, usage: string): void {
  const n = positionalsOfUsage(usage);
  if (args._.length > n)
    throw new UsageError(
      `unexpected argument '${args._[n]}'${
        n
          ? ` (takes ${n}: ${usage
              .split(/\s+/)
              .slice(1, n + 1)
              .join(' ')})`
          : ''
      }; flags start with --`,
    );
  for (const [a, b] of EXCLUSIVE)
    if (args[a] !== undefined && args[b] !== undefined)
      throw new UsageError(`give ${dashed(a)} or ${dashed(b)}, not both`);
}
