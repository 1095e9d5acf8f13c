// Where a distributed sweep's queue lives: a Redis URL (redis:// or rediss:// for TLS), the queue a
// run folder gets, and the registry through which workers find the queues that have work.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { CramError } from '../cram/result';

export class QueueError extends CramError {
  constructor(msg: string) {
    super(msg);
    this.name = 'QueueError';
  }
}

/** The set of queue names with a coordinator waiting on them: workers serve every one. */
export const REGISTRY = 'cramlab:queues';

/** ioredis options from a redis://[user][:password@]host[:port][/db] or rediss:// URL. */
export function redisOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueError(`--queue '${maskUrl(url)}' is not a URL; use redis://[:password@]HOST:PORT[/DB]`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new QueueError(`--queue '${maskUrl(url)}' must start with redis:// or rediss:// (TLS)`);
  if (!u.hostname) throw new QueueError(`--queue '${maskUrl(url)}' names no host`);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0)
    throw new QueueError(`--queue '${maskUrl(url)}': the database must be an integer ≥ 0`);
  const port = u.port ? Number(u.port) : 6379;
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ's blocking calls need these; a lost connection is retried (a Redis restart).
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
}

/** The URL with its password hidden (logs, errors). */
export function maskUrl(url: string): string {
  return url.replace(/\/\/([^@/]*):[^@/]*@/, '//$1:***@');
}

/** The queue of a run folder: its name plus a hash of its absolute path (two 'runs/x' elsewhere differ). */
export function queueName(runDir: string): string {
  const abs = path.resolve(runDir);
  const base =
    path
      .basename(abs)
      .replace(/[^A-Za-z0-9_.-]/g, '_')
      .slice(0, 60) || 'run';
  return `cramlab-${base}-${createHash('sha256').update(abs).digest('hex').slice(0, 8)}`;
}

/** A connected client, or a one-line error naming the server after `timeoutMs`. */
export async function connect(url: string, timeoutMs = 10_000): Promise<Redis> {
  const client = new Redis({ ...(redisOptions(url) as object), lazyConnect: true });
  let last = '';
  client.on('error', (e) => (last = (e as any)?.code ?? String(e.message ?? e)));
  const timer = new Promise<never>((_, reject) =>
    setTimeout(
      () =>
        reject(
          new QueueError(`cannot reach Redis at ${maskUrl(url)}${last ? ` (${last})` : ''}; is redis-server running?`),
        ),
      timeoutMs,
    ).unref(),
  );
  try {
    await Promise.race([client.connect(), timer]);
    await Promise.race([client.ping(), timer]);
  } catch (e) {
    client.disconnect();
    if (e instanceof QueueError) throw e;
    const why = last || (e as Error).message;
    if (/NOAUTH/.test(why))
      throw new QueueError(`Redis at ${maskUrl(url)} needs a password: use redis://:PASSWORD@HOST:PORT`);
    if (/WRONGPASS|invalid password/i.test(why))
      throw new QueueError(`Redis at ${maskUrl(url)} refused the password (${why.split('.')[0]})`);
    throw new QueueError(`cannot reach Redis at ${maskUrl(url)} (${why}); is redis-server running there?`);
  }
  return client;
}
