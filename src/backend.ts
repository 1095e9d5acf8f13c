// Where tensors live. One decision for the whole process:
//   CRAMLAB_BACKEND (tensorflow-gpu | tensorflow | wasm | cpu) if set, else
//   tfjs-node-gpu with a CUDA device > tfjs-node > wasm > cpu.
// The node/gpu packages are optional dependencies: nothing here requires them to install.
import * as tf from '@tensorflow/tfjs-core';
// Method chaining (x.reshape(...)) is only registered by the tfjs union package: do it here.
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
// Likewise the gradient functions: without them tf.grad fails ('gradient function not found').
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as os from 'node:os';
import * as path from 'node:path';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

let chosen: BackendName | undefined;
let pending: Promise<BackendName> | undefined;

function tryRequire(name: string): any | undefined {
  try {
    return require(name);
  } catch {
    return undefined;
  }
}

async function setWasm(): Promise<boolean> {
  const wasm = tryRequire('@tensorflow/tfjs-backend-wasm');
  if (!wasm) return false;
  // Node has no fetch for file paths: point the backend at the .wasm files on disk.
  const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  wasm.setWasmPaths(path.join(dir, 'dist') + path.sep);
  const threads = Number(process.env.CRAMLAB_THREADS ?? 0);
  if (threads > 0 && wasm.setThreadsCount) wasm.setThreadsCount(threads);
  try {
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

async function setCpu(): Promise<boolean> {
  tryRequire('@tensorflow/tfjs-backend-cpu');
  return tf.setBackend('cpu');
}

async function setNode(gpu: boolean): Promise<boolean> {
  // tfjs-node registers a backend named 'tensorflow'; the gpu build registers the same name.
  const mod = tryRequire(gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
  if (!mod) return false;
  try {
    if (!(await tf.setBackend('tensorflow'))) return false;
    if (gpu) {
      // A GPU build without a visible CUDA device silently falls back to the CPU: check.
      const devices = mod.backend?.().binding?.getDevices?.() ?? [];
      const hasGpu = Array.isArray(devices) ? devices.some((d: string) => /GPU/i.test(d)) : true;
      if (!hasGpu) return false;
    }
    return true;
  } catch {
    return false;
  }
}

const setters: Record<BackendName, () => Promise<boolean>> = {
  'tensorflow-gpu': () => setNode(true),
  tensorflow: () => setNode(false),
  wasm: setWasm,
  cpu: setCpu,
};

/** Choose and initialise the backend once; later calls return the same answer. */
export function initBackend(prefer?: BackendName): Promise<BackendName> {
  if (chosen && !prefer) return Promise.resolve(chosen);
  if (pending && !prefer) return pending;
  pending = (async () => {
    const forced = (prefer ?? process.env.CRAMLAB_BACKEND) as BackendName | undefined;
    if (forced) {
      if (!(forced in setters)) {
        throw new Error(`CRAMLAB_BACKEND='${forced}' is not a backend; use one of ${Object.keys(setters).join(', ')}`);
      }
      if (!(await setters[forced]()))
        throw new Error(`backend '${forced}' could not be initialised (is its package installed?)`);
      chosen = forced;
      return forced;
    }
    for (const name of ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as BackendName[]) {
      if (await setters[name]()) {
        chosen = name;
        return name;
      }
    }
    throw new Error('no TensorFlow.js backend could be initialised');
  })();
  return pending;
}

export function currentBackend(): BackendName | undefined {
  return chosen;
}

/** Measured fp32 matmul throughput of the current backend, in GFLOP/s (median of a few runs). */
export async function measureMatmulGflops(n = 256, reps = 5): Promise<number> {
  await initBackend();
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const times: number[] = [];
  for (let i = 0; i < reps + 1; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    if (i > 0) times.push(performance.now() - t0); // first run warms up kernels
  }
  a.dispose();
  b.dispose();
  times.sort((x, y) => x - y);
  const ms = times[Math.floor(times.length / 2)];
  return (2 * n * n * n) / (ms * 1e6);
}

/**
 * Rough fp32 peak of this CPU: cores × clock × FLOPs per cycle. Counted at AVX2+FMA width
 * (2 FMA units × 8 lanes × 2 = 32 FLOP/cycle) even where AVX-512 is listed: many parts and VMs
 * run 512-bit ops at half rate, and no tfjs backend here issues them anyway.
 */
export function estimateCpuPeakGflops(): {
  cores: number;
  ghz: number;
  flopsPerCycle: number;
  gflops: number;
  model: string;
  avx512: boolean;
} {
  const cpus = os.cpus();
  const cores = cpus.length;
  let info = '';
  try {
    info = require('node:fs').readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux */
  }
  const mhz = Number(/cpu MHz\s*:\s*([\d.]+)/.exec(info)?.[1] ?? cpus[0]?.speed ?? 0);
  const ghz = mhz > 0 ? mhz / 1000 : 2.5;
  const flopsPerCycle = /\bfma\b/.test(info) && /avx2/.test(info) ? 32 : /\bavx\b/.test(info) ? 16 : 8;
  return {
    cores,
    ghz,
    flopsPerCycle,
    gflops: cores * ghz * flopsPerCycle,
    model: cpus[0]?.model ?? 'unknown',
    avx512: /avx512f/.test(info),
  };
}

export function packageVersion(name: string): string | undefined {
  // Some packages do not export ./package.json: find it by walking up from the entry point.
  try {
    let dir = path.dirname(require.resolve(name));
    while (dir !== path.dirname(dir)) {
      const file = path.join(dir, 'package.json');
      const fs = require('node:fs');
      if (fs.existsSync(file)) {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
        if (pkg.name === name) return pkg.version;
      }
      dir = path.dirname(dir);
    }
  } catch {
    /* not installed */
  }
  return undefined;
}

export class MemoryLimitError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'MemoryLimitError';
  }
}

/**
 * Bytes the current backend can give one computation's live intermediates. tfjs-wasm has a 32-bit
 * heap (4 GiB, shared by every tensor) and aborts the whole process past it: allow half. Native
 * backends: half of the machine's memory.
 */
export function memoryLimitBytes(): number {
  return (chosen ?? tf.getBackend()) === 'wasm' ? 2 ** 31 : os.totalmem() / 2;
}

/** Memory the OS can give this process now without swapping: /proc/meminfo's MemAvailable (Linux),
 *  else os.freemem() (which leaves out reclaimable page cache, so it says less). */
export function availableMemoryBytes(): { bytes: number; source: string } {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(require('node:fs').readFileSync('/proc/meminfo', 'utf8'));
    if (m) return { bytes: Number(m[1]) * 1024, source: 'MemAvailable' };
  } catch {
    /* not Linux */
  }
  return { bytes: os.freemem(), source: 'os.freemem' };
}

/** Refuse, with one line, a computation whose intermediates would not fit (instead of an abort). */
export function assertFitsMemory(bytes: number, what: string): void {
  const limit = memoryLimitBytes();
  const gib = (b: number) => (b / 2 ** 30).toFixed(b < 2 ** 30 ? 3 : 1);
  if (!(bytes <= limit))
    throw new MemoryLimitError(
      `${what} needs about ${gib(bytes)} GiB, more than the ${gib(limit)} GiB the ${chosen ?? tf.getBackend()} backend can hold: give a shorter input or a smaller batch`,
    );
}
