// What the notebooks use besides cramlab's API: budgets, run folders, cached experiments, figures.
export * from './budget';
export * from './paths';
export * from './records';
export * from './experiments';
export * from '../plots/index';
