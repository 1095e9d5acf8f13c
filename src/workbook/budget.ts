// How much work a notebook does: CRAMLAB_BUDGET=ci (a smoke test: minutes on 2 CPU cores, for CI),
// small (a few tens of minutes: the committed figures/), paper (the authors' settings).
// A notebook reads the preset once; changing `BUDGET` in its first cell overrides the variable.

export type BudgetName = 'ci' | 'small' | 'paper' | 'interactive';

export interface Budget {
  name: BudgetName;
  /** Texts per set and model. */
  texts: number;
  /** Text lengths N (tokens, BOS included) for the accuracy-vs-N grid. */
  lengths: number[];
  /** Numbers of [mem] vectors for the scaling notebook. */
  mems: number[];
  /** Longest text tried in the K sweep (the capacity search stops there). */
  maxLength: number;
  /** Optimiser limits (the paper: 5000 steps, patience 2000). */
  maxSteps: number;
  patience: number;
  /**
   * A length grid stops once the mean best accuracy at some N falls below this: longer texts only
   * do worse, and a full vector's lost cause costs `patience` steps per text. 0: run the whole grid.
   */
  stopBelow: number;
}

export const BUDGETS: Record<BudgetName, Budget> = {
  ci: {
    name: 'ci',
    texts: 2,
    lengths: [4, 8, 16],
    mems: [1, 2],
    maxLength: 48,
    maxSteps: 100,
    patience: 50,
    stopBelow: 0,
  },
  small: {
    name: 'small',
    texts: 3,
    lengths: [4, 8, 16, 32, 64],
    mems: [1, 2, 4, 8],
    maxLength: 240,
    maxSteps: 1000,
    patience: 300,
    stopBelow: 0.2,
  },
  paper: {
    name: 'paper',
    texts: 50,
    lengths: [64, 128, 256, 512, 768, 1024, 1568, 2048],
    mems: [1, 2, 4, 8, 16, 32],
    maxLength: 8192,
    maxSteps: 5000,
    patience: 2000,
    stopBelow: 0,
  },
  // What a notebook opened in Jupyter runs: `small` with more patience. Under small's 300,
  // stories260K's 'Snu' (N = 4) stopped at step 345 with its best at 45 (it decodes at step 395), and
  // the Table-1 rule (mean over texts) then gave a decoding capacity of 0. figures/ stays `small`.
  interactive: {
    name: 'interactive',
    texts: 3,
    lengths: [4, 8, 16, 32, 64],
    mems: [1, 2, 4, 8],
    maxLength: 240,
    maxSteps: 1000,
    patience: 600,
    stopBelow: 0.2,
  },
};

/** What a notebook opened interactively runs: it shows the paper's effects (ci's 100 steps do not). */
export const DEFAULT_BUDGET: BudgetName = 'interactive';

let active: BudgetName | undefined;
/** The budget the notebook last asked for (figures and tables of a `ci` run say they are a smoke test). */
export const activeBudget = (): BudgetName | undefined => active;

/** The preset named by `name`, or CRAMLAB_BUDGET, or DEFAULT_BUDGET. */
export function budget(name?: string): Budget {
  const n = name ?? process.env.CRAMLAB_BUDGET ?? DEFAULT_BUDGET;
  if (!(n in BUDGETS))
    throw new Error(`CRAMLAB_BUDGET='${n}' is not a budget; use one of ${Object.keys(BUDGETS).join(', ')}`);
  active = n as BudgetName;
  return BUDGETS[n as BudgetName];
}

/** The label a `ci` run's figures and tables carry: its 100 steps cannot show the paper's effects. */
export const SMOKE_TEST = "smoke test (ci budget: too few steps for the paper's effects)";

/**
 * Lengths a capacity walk tries: every N from 2 to 6 (the byte-level suite models hold a few bytes
 * per vector, so small N need full resolution), then from 8 up to the budget's maxLength in steps
 * of about 25%.
 */
export function walkLengths(b: Budget, limit = Infinity): number[] {
  const top = Math.min(b.maxLength, limit);
  const out: number[] = [];
  for (let n = 2; n <= Math.min(6, top); n++) out.push(n);
  for (let n = 8; n <= top; n = Math.ceil((n * 1.25) / 4) * 4) out.push(n);
  return out;
}
