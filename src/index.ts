// cramlab's public API: everything a script or notebook needs, from one import.
export { initBackend, currentBackend, measureMatmulGflops, estimateCpuPeakGflops } from './backend';
export type { BackendName } from './backend';
export { loadModel, modelFromTensors } from './io/checkpoint';
export type { LoadedModel } from './io/checkpoint';
export { readSafetensors, writeSafetensors } from './io/safetensors';
export { loadTokenizer } from './io/tokenizer';
export type { Tokenizer } from './io/tokenizer';
export type { CausalLM, ModelInfo } from './models/types';
export { greedyGenerate, prefixedEmbeds } from './generate';
export { scoreText, heldPrefix } from './score';
export type { TextScore } from './score';
export { cram, initialMem, embeddingStd, CramError } from './cram/cram';
export type { CramOptions, CramResult, CramStatus } from './cram/cram';
export { adamwStep, AUTHORS_ADAMW } from './cram/adamw';
export type { AdamWConfig } from './cram/adamw';
export { formatProgress, progressPrinter } from './cram/progress';
export type { ProgressInfo } from './cram/progress';
export { capacitySearch, fewestVectors } from './cram/capacity';
export type { CapacityAttempt, CapacitySearchOptions, FewestVectors, TextCapacity } from './cram/capacity';
export { progressiveCram } from './cram/progressive';
export type { ProgressiveOptions, ProgressiveResult, ProgressiveStage } from './cram/progressive';
export { capacitySweep } from './runs/sweep';
export type { SweepOptions, SweepText } from './runs/sweep';
export { RecordFile, readRunRecords, currentRecords, lockRunDir } from './runs/folder';
export { recordKey, recordPrint, seedOf, encodeMem, decodeMem, fromStored } from './runs/record';
export type { BisectRecord, CramRecord } from './runs/record';
export * as metrics from './metrics/index';
export { classicBits, compressionRow, arithEncode, arithDecode, memBits, CODECS } from './metrics/compression';
export type { CompressionRow, Codec } from './metrics/compression';
export {
  measure,
  textMetrics,
  capacitySummary,
  table1,
  decodingCapacity,
  groupByLength,
  theoreticalCapacity,
  lengthTable,
  capacityTable,
  bisectTable,
} from './metrics/index';
export type { TextMetrics, Table1Row, ModelShape, CapacitySummary, LengthGroup, CrossEntropy } from './metrics/index';
export { exactness, greedyHorizon, margins, heldBy } from './metrics/exactness';
export type { Exactness, AtPrecision, Margins } from './metrics/exactness';
export { textBits } from './metrics/bits';
export type { TextBits } from './metrics/bits';
export { exactCapacity } from './metrics/summary';
export { PRECISIONS, PRECISION_BITS, roundTo, vectorBits, parsePrecision } from './precision';
export type { Precision } from './precision';
export { decode, diffIds, formatDiff, DecodeError } from './decode';
export type { DecodeInput, IdDiff } from './decode';
export { saveMem, loadMem, checkModel, idsSha256, MemFileError, CRAMLAB_VERSION, FILE_PRECISIONS } from './mem-file';
export type { MemFile, ModelIdentity, FilePrecision } from './mem-file';
export { loadTexts, DatasetError } from './datasets/index';
export { mobyDickChapters } from './datasets/corpus';
export type { Text, LoadTextsOptions } from './datasets/index';
export { REGISTRY, lookupModel, requireModel, paperModels, capacityOf } from './models/registry';
export type { RegistryEntry, PaperFigures } from './models/registry';
export { DEFAULT_MODEL, SUITE } from './train/suite';
