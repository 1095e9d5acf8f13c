// weightsHash: sha256 over config.json and every weight file, data included (two trainings of one
// architecture differ only in the data), so a run folder never takes a retrained model's records for its
// own. Hashing is the dearest part of a load (sha256 runs at ~1.7 GB/s here: 1.4 s for a 1B BF16 file,
// 9 s for 8B), so the digest is kept in a small cache keyed by each file's identity (device, inode, size,
// mtime, ctime: what git's index trusts), in $CRAMLAB_HASH_CACHE (a folder; `off`: no cache), else
// $XDG_CACHE_HOME/cramlab or ~/.cache/cramlab. A file changed within the last few seconds is hashed but
// not remembered (its timestamp may not yet tell two writes apart).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { streamFile } from './safetensors';
import { writeFileAtomic } from './write';

/** Files changed this recently (ms) are not remembered: a same-size rewrite may keep the timestamp. */
const RACY_MS = 3000;
const MAX_ENTRIES = 256;

type Entry = { hash: string; used: number };

/** The cache file, or undefined when CRAMLAB_HASH_CACHE is 'off' (or empty). */
export function hashCacheFile(): string | undefined {
  const env = process.env.CRAMLAB_HASH_CACHE;
  if (env === '' || env === 'off') return undefined;
  const dir = env ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'cramlab');
  return path.join(dir, 'weights-hash.json');
}

/** sha256 over config.json's bytes, then each weight file's, in order (from the cache when they are unchanged). */
export function weightsHash(configFile: string, weightFiles: string[]): string {
  const job = lookup(configFile, weightFiles);
  if (job.hash) return job.hash;
  const hash = createHash('sha256').update(job.config);
  // In chunks: a weight file may be past 2 GiB; same bytes, same hash.
  for (const f of weightFiles) streamFile(f, (bytes) => hash.update(bytes));
  return job.remember(hash.digest('hex'));
}

/**
 * weightsHash on a worker thread, so that it runs beside the native load on another core (the first
 * load of a 1B BF16 file: 1.8 s of reading and hashing hidden behind the weights' copy). `cancel` stops it.
 */
export function startWeightsHash(
  configFile: string,
  weightFiles: string[],
): { hash: Promise<string>; cancel: () => void } {
  const job = lookup(configFile, weightFiles);
  if (job.hash) return { hash: Promise.resolve(job.hash), cancel: () => {} };
  const worker = new Worker(HASH_WORKER, { eval: true, workerData: { config: job.config, files: weightFiles } });
  const hash = new Promise<string>((resolve, reject) => {
    worker.once('message', (m: { hash?: string; error?: string }) =>
      m.hash ? resolve(job.remember(m.hash)) : reject(new Error(m.error)),
    );
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`hashing the weights stopped (exit ${code})`)));
  });
  hash.catch(() => {}); // a cancelled or failed hash is reported where it is awaited
  return { hash, cancel: () => void worker.terminate() };
}

// The worker: the files' bytes in 64 MiB chunks into one sha256 (what streamFile does on the main thread).
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
try {
  const h = createHash('sha256').update(workerData.config);
  const buf = Buffer.allocUnsafeSlow(64 << 20);
  for (const f of workerData.files) {
    const fd = fs.openSync(f, 'r');
    try {
      for (let pos = 0, n; (n = fs.readSync(fd, buf, 0, buf.length, pos)) > 0; pos += n) h.update(buf.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
  }
  parentPort.postMessage({ hash: h.digest('hex') });
} catch (e) {
  parentPort.postMessage({ error: String(e && e.message || e) });
}
`;

/** The cached digest of these files as they are now, or how to remember the one computed. */
function lookup(configFile: string, weightFiles: string[]) {
  const config = fs.readFileSync(configFile);
  const stats = weightFiles.map((f) => fs.statSync(f, { bigint: true }));
  const key = createHash('sha256')
    .update(createHash('sha256').update(config).digest('hex'))
    .update(
      JSON.stringify(
        weightFiles.map((f, i) => {
          const s = stats[i];
          return [path.resolve(f), s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].map(String);
        }),
      ),
    )
    .digest('hex');
  const file = hashCacheFile();
  const cache = file ? readCache(file) : {};
  const now = Date.now();
  const hit = cache[key];
  // the last use, for trimming: refreshed daily rather than a write on every load
  if (file && hit && now - hit.used > 86400e3) writeCache(file, { ...cache, [key]: { ...hit, used: now } });
  const settled = stats.every(
    (s) => now - Number(s.mtimeNs / 1000000n) > RACY_MS && now - Number(s.ctimeNs / 1000000n) > RACY_MS,
  );
  return {
    config,
    hash: hit?.hash,
    remember(digest: string): string {
      if (file && settled) writeCache(file, { ...readCache(file), [key]: { hash: digest, used: now } });
      return digest;
    },
  };
}

function readCache(file: string): Record<string, Entry> {
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (c && typeof c === 'object' && !Array.isArray(c))
      return Object.fromEntries(
        Object.entries(c).filter(
          ([, e]: [string, any]) =>
            typeof e?.hash === 'string' && /^[0-9a-f]{64}$/.test(e.hash) && Number.isFinite(e.used),
        ),
      ) as Record<string, Entry>;
  } catch {
    /* absent or damaged: start afresh */
  }
  return {};
}

/** Best effort: a read-only home or a full disk only costs the next load its hash. */
function writeCache(file: string, cache: Record<string, Entry>): void {
  const kept = Object.entries(cache)
    .sort(([, a], [, b]) => b.used - a.used)
    .slice(0, MAX_ENTRIES);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomic(file, JSON.stringify(Object.fromEntries(kept)));
  } catch {
    /* not remembered */
  }
}
