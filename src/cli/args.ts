// A small, forgiving argument parser: --key value, --key=value, --flag, and positionals.
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

export function parseArgs(argv: string[], booleans: string[] = []): Args {
  const out: Args = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out._.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const key = (eq > 0 ? a.slice(2, eq) : a.slice(2)).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
      if (eq > 0) out[key] = a.slice(eq + 1);
      else if (booleans.includes(key) || i + 1 >= argv.length || argv[i + 1].startsWith('--')) out[key] = true;
      else out[key] = argv[++i];
    } else if (a.startsWith('-') && a.length === 2 && i + 1 < argv.length) {
      out[a.slice(1)] = argv[++i];
    } else out._.push(a);
  }
  return out;
}

export function str(args: Args, key: string, fallback?: string): string {
  const v = args[key];
  if (typeof v === 'string') return v;
  if (fallback !== undefined) return fallback;
  throw new UsageError(`--${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required`);
}

export function num(args: Args, key: string, fallback?: number): number {
  const v = args[key];
  if (v === undefined || v === true) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`--${key} is required`);
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${key} must be a number, got '${v}'`);
  return n;
}

export function numList(args: Args, key: string, fallback: number[]): number[] {
  const v = args[key];
  if (typeof v !== 'string') return fallback;
  return v.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n)) throw new UsageError(`--${key}: '${s}' is not a number`);
    return n;
  });
}
