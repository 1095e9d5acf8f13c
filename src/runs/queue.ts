// The queue executor: a coordinator puts a sweep's units on a BullMQ queue in Redis (one queue per
// run folder, job id = a hash of the unit's record fingerprints, so submitting twice adds nothing),
// `cramlab worker`s (worker.ts) compute them, and the outcomes come back here to the one writer.
// Faults are BullMQ's: a worker that dies mid-job loses its lock and the job goes back to the queue
// (stalled-job check); a job that throws is retried `attempts` times, then reported as failed.
// A coordinator that restarts collects what finished while it was away (adopt) and submits the rest.
import * as os from 'node:os';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { unitLabel, type Executor, type Sink, type UnitFailure } from './executor';
import { fingerprint } from './record';
import { connect, maskUrl, QueueError, queueName, redisOptions, REGISTRY } from './redis';
import { decodeOutcomes, type Unit } from './unit';

export interface QueueExecutorOptions {
  runDir: string;
  log: (line: string) => void;
  /** Tries per job before it is reported as failed (default 3). */
  attempts?: number;
  /** How often to look for finished jobs, ms (default 250). */
  pollMs?: number;
}

// The prints decide everything a unit computes; K (and N) tell empty units apart.
export const jobIdOf = (u: Unit): string =>
  `${u.kind === 'cram' ? 'c' : 'b'}-${fingerprint({ prints: u.prints, K: u.K, N: u.kind === 'cram' ? u.N : u.maxN })}`;

const COORDINATOR_TTL_MS = 20_000;
// Renew the coordinator key only while it is still ours (a restarted coordinator may have taken it).
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e.code === 'EPERM';
  }
}

const tokensOf = (u: Unit): number => u.texts.reduce((s, t) => s + t.ids.length, 0);

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

export function queueExecutor(url: string, o: QueueExecutorOptions): Executor {
  const name = queueName(o.runDir);
  const attempts = o.attempts ?? 3;
  const pollMs = o.pollMs ?? 250;
  const me = `${os.hostname()}:${process.pid}`;
  const lockKey = `cramlab:coordinator:${name}`;
  let client: Redis | undefined;
  let queue: Queue | undefined;
  let renew: NodeJS.Timeout | undefined;
  const pending = new Map<string, Unit>();

  async function open(): Promise<Queue> {
    if (queue) return queue;
    const c = await connect(url);
    client = c;
    // One coordinator per queue, across machines (the run folder's .lock covers this one).
    for (;;) {
      if (await c.set(lockKey, me, 'PX', COORDINATOR_TTL_MS, 'NX')) break;
      const holder = (await c.get(lockKey)) ?? '';
      const [host, pid] = [holder.slice(0, holder.lastIndexOf(':')), Number(holder.slice(holder.lastIndexOf(':') + 1))];
      if (holder && !(host === os.hostname() && !alive(pid)))
        throw new QueueError(
          `queue ${name} of ${o.runDir} is coordinated by ${holder}; wait for it to finish or use another --out`,
        );
      await c.del(lockKey); // its process on this machine is gone
    }
    renew = setInterval(() => void c.eval(RENEW, 1, lockKey, me, COORDINATOR_TTL_MS).catch(() => {}), 5000);
    renew.unref();
    queue = new Queue(name, { connection: redisOptions(url) });
    queue.on('error', () => {}); // connection drops are retried; the poll loop reports what matters
    await queue.waitUntilReady();
    await c.sadd(REGISTRY, name);
    o.log(`queue ${name} on ${maskUrl(url)}: start workers with 'cramlab worker --queue ${maskUrl(url)} --models DIR'`);
    return queue;
  }

  async function collect(job: Job, sink: Sink): Promise<void> {
    // Listed while active, completed since: its return value is read now.
    if (typeof job.returnvalue !== 'string') job = ((await queue!.getJob(job.id!)) as Job | undefined) ?? job;
    if (typeof job.returnvalue !== 'string') throw new QueueError(`job ${job.id} completed without its outcomes`);
    const u = job.data as Unit;
    const outs = decodeOutcomes(job.returnvalue);
    for (const [i, out] of outs.entries()) await sink(u.prints[i], out);
    await job.remove().catch(() => {}); // filed: a restarted coordinator must not file it again (it would skip it anyway)
  }

  return {
    async adopt(wanted: Set<string>, sink: Sink): Promise<Set<string>> {
      const q = await open();
      const busy = new Set<string>();
      let done = 0;
      let kept = 0;
      const jobs = (await q.getJobs([
        'completed',
        'failed',
        'active',
        'waiting',
        'delayed',
        'prioritized',
        'waiting-children',
      ])) as Job[];
      for (const job of jobs) {
        if (!job?.id) continue;
        const state = await job.getState();
        if (state === 'completed') {
          await collect(job, sink);
          done++;
        } else if (state === 'failed') {
          await job.remove().catch(() => {}); // a restart gives it a fresh set of tries
        } else {
          const u = job.data as Unit;
          if (u.prints.some((p) => wanted.has(p))) {
            pending.set(job.id, u);
            u.prints.forEach((p) => busy.add(p));
            kept++;
          } else await job.remove().catch(() => {}); // another plan's leftover (an active one finishes and is dropped)
        }
      }
      if (done || kept) o.log(`queue: ${done} jobs finished while the coordinator was away, ${kept} still queued`);
      return busy;
    },

    async run(units: Unit[], sink: Sink): Promise<UnitFailure[]> {
      const q = await open();
      if (units.length)
        await q.addBulk(
          units.map((u) => ({
            name: u.kind,
            data: u,
            opts: { jobId: jobIdOf(u), attempts, backoff: { type: 'fixed', delay: 1000 } },
          })),
        );
      for (const u of units) pending.set(jobIdOf(u), u);
      const failures: UnitFailure[] = [];
      const total = pending.size;
      const totalTokens = [...pending.values()].reduce((s, u) => s + tokensOf(u), 0);
      if (total)
        o.log(`queue: ${units.length} jobs submitted, ${total - units.length} adopted (${totalTokens} tokens)`);
      const t0 = performance.now();
      let tokens = 0;
      let lastLine = '';
      let lastShown = 0;
      let lastCheck = performance.now();
      while (pending.size) {
        for (const job of (await q.getJobs(['completed'])) as Job[]) {
          const u = job?.id ? pending.get(job.id) : undefined;
          if (!u) continue;
          await collect(job, sink);
          pending.delete(job.id!);
          tokens += tokensOf(u);
        }
        for (const job of (await q.getJobs(['failed'])) as Job[]) {
          const u = job?.id ? pending.get(job.id) : undefined;
          if (!u) continue;
          failures.push({ unit: u, reason: `${job.failedReason} (after ${job.attemptsMade} tries)` });
          o.log(`queue: job ${job.id} (${unitLabel(u)}) failed after ${job.attemptsMade} tries: ${job.failedReason}`);
          await job.remove().catch(() => {});
          pending.delete(job.id!);
        }
        // A job that vanished (Redis restarted without its AOF) is submitted again.
        if (performance.now() - lastCheck > 5000) {
          lastCheck = performance.now();
          for (const [id, u] of pending)
            if (!(await q.getJob(id)))
              await q.add(u.kind, u, { jobId: id, attempts, backoff: { type: 'fixed', delay: 1000 } });
        }
        const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        const workers = await q.getWorkersCount().catch(() => 0);
        const secs = (performance.now() - t0) / 1000;
        const rate = tokens / Math.max(secs, 1e-9);
        const left = [...pending.values()].reduce((s, u) => s + tokensOf(u), 0);
        const line =
          `queue: ${c.waiting + c.delayed + c.prioritized} waiting · ${c.active} active · ${total - pending.size - failures.length} done · ` +
          `${failures.length} failed · ${workers} workers`;
        const now = performance.now();
        if (line !== lastLine || now - lastShown > 30_000) {
          o.log(`${line} · ${rate.toFixed(0)} tokens/s · ETA ${tokens ? duration(left / rate) : '?'}`);
          lastLine = line;
          lastShown = now;
        }
        if (pending.size) await new Promise((r) => setTimeout(r, pollMs));
      }
      return failures;
    },

    async close(): Promise<void> {
      if (renew) clearInterval(renew);
      try {
        await client?.srem(REGISTRY, name);
        await client?.eval(
          `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`,
          1,
          lockKey,
          me,
        );
      } catch {
        /* Redis gone: the key expires by itself */
      }
      await queue?.close().catch(() => {});
      client?.disconnect();
    },
  };
}
