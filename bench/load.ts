// loadModel's wall time against reading the checkpoint from a warm page cache, first load (weights hash
// computed, on a worker thread beside the native load) and later loads (hash remembered), each in a
// fresh process as a CLI run would be:
//   node --import tsx bench/load.ts DIR [--tokenizer-from DIR2] [--rounds 2]
// DIR is a model folder. The bench's random-init checkpoints (bench/checkpoints/*) have no tokenizer:
// --tokenizer-from copies one in (e.g. ../shared/models/stories260K; a small vocabulary is accepted, and
// a real 128k tokenizer would add its own parse time). The hash cache is a fresh temporary folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const argv = process.argv.slice(2);
const opt = (name: string, def?: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};

async function child(dir: string): Promise<void> {
  const { loadModel } = await import('../src/io/checkpoint');
  const { initBackend } = await import('../src/backend');
  await initBackend();
  const t0 = performance.now();
  const { model } = await loadModel(dir);
  const loadS = (performance.now() - t0) / 1000;
  model.dispose();
  console.log(JSON.stringify({ loadS }));
}

/** Seconds to read the folder's weight files once more from the page cache (64 MiB reads; second pass). */
function warmReadS(dir: string): number {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  const buf = Buffer.allocUnsafeSlow(64 << 20);
  const pass = () => {
    const t = performance.now();
    for (const f of files) {
      const fd = fs.openSync(path.join(dir, f), 'r');
      while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
      fs.closeSync(fd);
    }
    return (performance.now() - t) / 1000;
  };
  pass();
  return pass();
}

async function main(): Promise<void> {
  if (argv[0] === '--child') return child(argv[1]);
  const src = argv[0];
  if (!src || !fs.existsSync(path.join(src, 'config.json')))
    throw new Error('usage: bench/load.ts DIR [--tokenizer-from DIR2]');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cramlab-load-'));
  try {
    let dir = src;
    const from = opt('tokenizer-from');
    if (from) {
      // hard links where the file system allows (no copy of the weights), else copies
      dir = path.join(tmp, 'model');
      fs.mkdirSync(dir);
      for (const f of fs.readdirSync(src)) {
        if (f === 'tokenizer.json' || f === 'tokenizer_config.json') continue;
        try {
          fs.linkSync(path.join(src, f), path.join(dir, f));
        } catch {
          fs.copyFileSync(path.join(src, f), path.join(dir, f));
        }
      }
      for (const f of ['tokenizer.json', 'tokenizer_config.json'])
        if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(dir, f));
      // a new link changes the file's ctime, and a file changed in the last 3 s is not remembered
      await new Promise((r) => setTimeout(r, 3500));
    }
    const run = (cache: string) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', dir], {
        env: { ...process.env, CRAMLAB_HASH_CACHE: cache },
        encoding: 'utf8',
      });
      const line = r.stdout.trim().split('\n').pop() ?? '';
      if (r.status !== 0 || !line.startsWith('{'))
        throw new Error(`loadModel failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
      return JSON.parse(line).loadS as number;
    };
    console.log(
      `uptime: ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}; ${dir}`,
    );
    for (let round = 0; round < Number(opt('rounds', '2')); round++) {
      const cache = path.join(tmp, `hash-cache-${round}`);
      const first = run(cache);
      const later = run(cache);
      const read = warmReadS(dir);
      console.log(
        `round ${round + 1}: loadModel first ${first.toFixed(2)} s (hash computed), later ${later.toFixed(2)} s (hash remembered); warm read ${read.toFixed(2)} s; later / read ${(later / read).toFixed(1)}×`,
      );
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench/load: ${(e as Error).message}`);
  process.exit(1);
});
