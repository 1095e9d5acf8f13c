// cramlab's public API: everything a script or notebook needs, from one import.
export { initBackend, currentBackend, measureMatmulGflops, estimateCpuPeakGflops } from './backend';
export type { BackendName } from './backend';
export { loadModel, modelFromTensors } from './io/checkpoint';
export type { LoadedModel } from './io/checkpoint';
export { readSafetensors, writeSafetensors } from './io/safetensors';
export { loadTokenizer } from './tokenizer';
export type { Tokenizer } from './tokenizer';
export type { CausalLM, ModelInfo } from './models/types';
export { greedyGenerate, prefixedEmbeds } from './generate';
export { scoreText } from './score';
export type { TextScore } from './score';
export { cram, initialMem, embeddingStd, CramError } from './cram/cram';
export type { CramOptions, CramResult, CramStatus } from './cram/cram';
export { adamwStep, AUTHORS_ADAMW } from './cram/adamw';
export type { AdamWConfig } from './cram/adamw';
export { formatProgress, progressPrinter } from './cram/progress';
export type { ProgressInfo } from './cram/progress';
