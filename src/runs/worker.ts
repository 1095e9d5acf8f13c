// A `cramlab worker`: serves every queue a coordinator has registered in Redis (redis.ts REGISTRY),
// `concurrency` jobs at a time in all, loading each model once and keeping it. It loads models only
// from its --models folders or by Hub id (its cache, else the Hub): a job naming any other path fails
// with the reason, and a model whose weights differ from the coordinator's is refused, so a worker can
// never file records of another model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadModel, type LoadedModel } from '../io/checkpoint';
import { isLocal } from '../io/hub';
import { unitLabel } from './executor';
import { connect, maskUrl, QueueError, redisOptions, REGISTRY } from './redis';
import { encodeOutcomes, runUnit, type ModelRef, type Unit } from './unit';

export interface WorkerOptions {
  url: string;
  /** Jobs at a time, over all queues (default 1). */
  concurrency?: number;
  /** Folders models may be loaded from. */
  models?: string[];
  /** A job's lock, ms: a worker silent this long (killed) loses its job to the others (default 60 s). */
  lockMs?: number;
  log?: (line: string) => void;
}

/** Where a job's model is on this machine: inside --models (by its path there, or its folder name), or a Hub id. */
export function resolveModel(ref: string, models: string[]): string {
  const roots = models.filter((d) => fs.existsSync(d)).map((d) => fs.realpathSync(d));
  const inside = (p: string) => roots.some((r) => p === r || p.startsWith(r + path.sep));
  const candidates = [
    ...(path.isAbsolute(ref) ? [ref] : []),
    ...roots.flatMap((r) => [path.join(r, ref), path.join(r, path.basename(ref))]),
  ];
  for (const c of candidates) {
    if (!fs.existsSync(c)) continue;
    const real = fs.realpathSync(c);
    if (inside(real) && fs.statSync(real).isDirectory()) return real;
  }
  // A Hub id goes to the cache or the Hub; a path (or a name found relative to here) is refused.
  if (!isLocal(ref) && !fs.existsSync(ref)) return ref;
  throw new QueueError(
    `model path '${ref}' is outside this worker's --models (${models.join(', ') || 'none given'}); ` +
      `copy the model into one of them or start the worker with --models covering it`,
  );
}

/** A promise-based counter: at most `n` holders at once. */
function semaphore(n: number) {
  let free = n;
  const waiting: (() => void)[] = [];
  return {
    async take(): Promise<void> {
      if (free > 0) {
        free--;
        return;
      }
      await new Promise<void>((r) => waiting.push(r));
    },
    give(): void {
      const next = waiting.shift();
      if (next) next();
      else free++;
    },
  };
}

export interface RunningWorker {
  /** Finish the jobs in hand (force: hand them back at once), then disconnect. */
  stop(force?: boolean): Promise<void>;
}

export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const log = o.log ?? ((s: string) => console.log(s));
  const models = o.models ?? [];
  const concurrency = o.concurrency ?? 1;
  const lockDuration = o.lockMs ?? 60_000;
  const client: Redis = await connect(o.url);
  const slots = semaphore(concurrency);
  const loaded = new Map<string, Promise<LoadedModel>>();
  const workers = new Map<string, Worker>();
  let stopping = false;

  const modelFor = (ref: ModelRef): Promise<LoadedModel> => {
    const key = `${ref.id}|${ref.weightsHash}`;
    let p = loaded.get(key);
    if (!p) {
      p = (async () => {
        const where = resolveModel(ref.id, models);
        const m = await loadModel(where);
        if (m.weightsHash !== ref.weightsHash) {
          m.model.dispose();
          throw new QueueError(
            `model '${ref.id}' here (${m.dir}) has other weights than the coordinator's ` +
              `(sha256 ${m.weightsHash.slice(0, 12)}… here, ${ref.weightsHash.slice(0, 12)}… there)`,
          );
        }
        log(`loaded ${ref.id} from ${m.dir}`);
        return m;
      })();
      p.catch(() => loaded.delete(key)); // a retry tries again (the folder may have been fixed)
      loaded.set(key, p);
    }
    return p;
  };

  const work = async (job: Job): Promise<string> => {
    await slots.take();
    const t0 = performance.now();
    const u = job.data as Unit;
    try {
      log(`job ${job.id} (${unitLabel(u)}): started, try ${job.attemptsMade + 1}`);
      const m = await modelFor(u.model);
      let shown = 0;
      const outs = await runUnit(m.model, u, {
        quiet: true,
        onProgress: (p) => {
          const now = performance.now();
          if (now - shown < 1000) return;
          shown = now;
          void job.updateProgress({ step: p.step, maxSteps: p.maxSteps }).catch(() => {});
        },
      });
      log(`job ${job.id}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return encodeOutcomes(outs);
    } catch (e) {
      const msg = String((e as Error)?.message ?? e).split('\n')[0];
      log(`job ${job.id}: failed: ${msg}`);
      throw new Error(msg);
    } finally {
      slots.give();
    }
  };

  const serve = (name: string) => {
    const w = new Worker(name, work, {
      connection: redisOptions(o.url),
      concurrency,
      lockDuration,
      stalledInterval: Math.max(500, Math.floor(lockDuration / 2)),
      maxStalledCount: 3,
    });
    w.on('error', (e) => log(`queue ${name}: ${(e as Error).message}`));
    workers.set(name, w);
    log(`serving queue ${name}`);
  };

  // Follow the registry: a coordinator adds its queue when it starts and removes it when it is done.
  const follow = async () => {
    if (stopping) return;
    try {
      const names = new Set(await client.smembers(REGISTRY));
      for (const n of names) if (!workers.has(n)) serve(n);
      for (const [n, w] of workers)
        if (!names.has(n)) {
          workers.delete(n);
          void w.close(); // waits for its job in hand
        }
    } catch {
      /* Redis restarting: try again next tick */
    }
  };
  await follow();
  const timer = setInterval(follow, 1000);
  log(`worker on ${maskUrl(o.url)}: concurrency ${concurrency}, models from ${models.join(', ') || '(Hub ids only)'}`);

  return {
    async stop(force = false) {
      stopping = true;
      clearInterval(timer);
      await Promise.all([...workers.values()].map((w) => w.close(force)));
      client.disconnect();
    },
  };
}
