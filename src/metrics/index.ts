// Metrics of crammed texts (per text) and of a model over many texts (Table 1 conventions).
export { crossEntropy, measure, textMetrics } from './text';
export type { CrossEntropy, TextMetrics } from './text';
export {
  capacitySummary,
  table1,
  decodingCapacity,
  DECODED_THRESHOLD,
  groupByLength,
  theoreticalCapacity,
} from './summary';
export type { CapacitySummary, LengthGroup, ModelShape, Table1Row } from './summary';
export { bisectTable, capacityTable, lengthTable } from './table';
