import * as tf from '@tensorflow/tfjs-core';
import { estimateCpuPeakGflops, initBackend, measureMatmulGflops, packageVersion } from '../../backend';
import { engineInfo } from '../../native/index';
import type { Command } from '../main';

export const command: Command = {
  name: 'env',
  summary: 'the compute backend and cram engine chosen, package versions, measured matmul GFLOP/s and the CPU peak',
  usage: 'env',
  async run() {
    const backend = await initBackend();
    const pkgs = [
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-backend-wasm',
      '@tensorflow/tfjs-backend-cpu',
      '@tensorflow/tfjs-node',
      '@tensorflow/tfjs-node-gpu',
      '@huggingface/transformers',
    ];
    console.log(`backend         ${backend} (tf.getBackend() = ${tf.getBackend()}; override with CRAMLAB_BACKEND)`);
    const eng = engineInfo();
    console.log(`cram engine     ${eng.engine} (${eng.reason}; override with CRAMLAB_ENGINE=native|tfjs)`);
    console.log(
      `native blas     ${eng.blas ? `${eng.blas}, ${eng.threads} threads` : 'none (native engine not loaded)'}`,
    );
    console.log(`node            ${process.version}`);
    for (const p of pkgs) console.log(`${p.padEnd(32)} ${packageVersion(p) ?? 'not installed'}`);
    const peak = estimateCpuPeakGflops();
    const g256 = await measureMatmulGflops(256);
    const g512 = await measureMatmulGflops(512, 3);
    console.log(
      `cpu             ${peak.model}: ${peak.cores} cores × ${peak.ghz.toFixed(2)} GHz × ${peak.flopsPerCycle} FLOP/cycle ≈ ${peak.gflops.toFixed(0)} GFLOP/s fp32 peak`,
    );
    console.log(`matmul 256³     ${g256.toFixed(2)} GFLOP/s (${((100 * g256) / peak.gflops).toFixed(1)}% of peak)`);
    console.log(`matmul 512³     ${g512.toFixed(2)} GFLOP/s (${((100 * g512) / peak.gflops).toFixed(1)}% of peak)`);
  },
};
