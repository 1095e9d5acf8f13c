// What the notebooks use besides cramlab's API: budgets, run folders, cached experiments, figures.
export * from './budget';
export * from './paths';
export { RecordFile, readRunRecords, currentRecords } from '../runs/folder';
export { decodeMem, encodeMem, type CramRecord } from '../runs/record';
export { table1, type Table1Row } from '../metrics/summary';
export * from './experiments';
export { gridEstimate, roughly, stepCost } from './estimate';
export * from '../plots/index';
// Explicit exports win over the star export above: a ci run's figures and tables are labelled.
export { show, showTable } from './labelled';
export { serializeTslabSends } from './tslab-sends';

import { serializeTslabSends } from './tslab-sends';
// Loaded by every notebook: keep tslab's kernel alive through long, chatty runs.
serializeTslabSends();
