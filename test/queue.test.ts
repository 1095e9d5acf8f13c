// Distributed sweeps on a real redis-server (a private one per test, loopback, AOF on) with real
// `cramlab worker` processes: faults are what a queue is for, so they are what these tests do — a
// worker kill -9'd mid-job, the coordinator killed and restarted, Redis killed and restarted, a
// poisoned job, a second coordinator, a job naming a model outside the worker's --models.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/io/checkpoint';
import { RecordFile } from '../src/runs/folder';
import { budget } from '../src/workbook/budget';
import { capacityWalk, openModels } from '../src/workbook/experiments';
import { queueExecutor } from '../src/runs/queue';
import { SweepPlan } from '../src/runs/plan';
import { connect, maskUrl, queueName, redisOptions } from '../src/runs/redis';
import type { Outcome, Unit } from '../src/runs/unit';
import { resolveModel } from '../src/runs/worker';
import { REDIS_MISSING, startRedis } from './helpers/redis';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'cramlab.js');
const MODEL = path.join(ROOT, 'models', 'cram-llama-d32');
// Each process one thread (2 cores, 5 processes); a killed worker's job comes back within ~3 s.
const ENV = { ...process.env, OMP_NUM_THREADS: '1', CRAMLAB_QUEUE_LOCK_MS: '2000' };
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `cramlab-queue-${p}-`));

/** A CLI process whose output lines are kept and can be waited on. */
function cli(args: string[], cwd = ROOT) {
  const p = spawn(process.execPath, [CLI, ...args], { cwd, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const onData = (d: Buffer) => {
    for (const l of d.toString().split('\n').filter(Boolean)) {
      lines.push(l);
      for (const w of waiters.filter((w) => w.re.test(l))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  };
  p.stdout!.on('data', onData);
  p.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  return {
    p,
    lines,
    exited,
    waitFor(re: RegExp, ms = 120_000): Promise<string> {
      const hit = lines.find((l) => re.test(l));
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line ${re} in:\n${lines.join('\n')}`)), ms);
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) });
      });
    },
  };
}

const kill = async (c: { p: ChildProcess; exited: Promise<unknown> }, sig: NodeJS.Signals = 'SIGKILL') => {
  if (c.p.exitCode === null && c.p.signalCode === null) c.p.kill(sig);
  await c.exited;
};

/** A run folder's records by (id, N, K), timings left out; fails on a key filed twice. */
function records(runDir: string): Map<string, any> {
  const out = new Map<string, any>();
  for (const l of fs.readFileSync(path.join(runDir, 'results.jsonl'), 'utf8').split('\n').filter(Boolean)) {
    const { seconds: _s, ...r } = JSON.parse(l);
    const k = `${r.id}|${r.N}|${r.K}`;
    assert.ok(!out.has(k), `record ${k} written twice`);
    out.set(k, r);
  }
  return out;
}

const lineCount = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).length : 0);

test(
  '3 workers, one kill -9ed mid-job, the coordinator and Redis killed and restarted: the records of a local run',
  { skip: REDIS_MISSING },
  async () => {
    // 12 texts × N 8,16 × K 1,2 in jobs of 3 texts: 16 jobs.
    const sweep = (out: string) => [
      'capacity',
      '--model',
      'models/cram-llama-d32',
      '--texts',
      'books',
      '--count',
      '12',
      '--mem',
      '1,2',
      '--lengths',
      '8,16',
      '--max-steps',
      '200',
      '--batch',
      '3',
      '--quiet',
      '--out',
      out,
    ];
    const local = tmp('local');
    const l = cli(sweep(local));
    assert.equal(await l.exited, 0, l.lines.join('\n'));

    const redis = await startRedis();
    const workers: ReturnType<typeof cli>[] = [];
    try {
      const models = path.join(ROOT, 'models');
      for (let i = 0; i < 3; i++) workers.push(cli(['worker', '--queue', redis.url, '--models', models]));
      await Promise.all(workers.map((w) => w.waitFor(/^worker on /)));
      const runDir = tmp('dist');
      const file = path.join(runDir, 'results.jsonl');
      const first = cli([...sweep(runDir), '--queue', redis.url]);

      // Worker 0 dies (kill -9) in the middle of its first job.
      const started = await workers[0].waitFor(/^job \S+ .*started/);
      await kill(workers[0]);
      const lost = started.split(' ')[1];
      assert.ok(!workers[0].lines.some((x) => x.startsWith(`job ${lost}: done`)), 'the job finished before the kill');

      // The coordinator dies once a third of the records are in; Redis is killed and restarted (AOF).
      while (lineCount(file) < 16 && first.p.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      await kill(first);
      await redis.restart();
      const second = cli([...sweep(runDir), '--queue', redis.url]);
      assert.equal(await second.exited, 0, second.lines.join('\n'));
      assert.ok(
        second.lines.some((x) => /^resuming: \d+ records/.test(x)),
        second.lines.join('\n'),
      );
      // The lost job came back (stalled-job check) and another worker did it.
      assert.ok(
        workers.slice(1).some((w) => w.lines.some((x) => x.startsWith(`job ${lost}: done`))),
        `job ${lost} was not redone:\n${workers.map((w) => w.lines.join('\n')).join('\n---\n')}`,
      );

      const want = records(local);
      const got = records(runDir);
      assert.equal(got.size, 48);
      assert.deepEqual(got, want);

      // SIGTERM: a worker finishes and exits 0.
      for (const w of workers.slice(1)) await kill(w, 'SIGTERM');
      for (const w of workers.slice(1)) assert.equal(await w.exited, 0, w.lines.join('\n'));
    } finally {
      for (const w of workers) await kill(w);
      await redis.stop();
    }
  },
);

test(
  'a poisoned job fails with its reason after its retries while the rest finishes; a path outside --models is refused',
  { skip: REDIS_MISSING },
  async () => {
    const redis = await startRedis();
    const dir = tmp('models');
    fs.cpSync(MODEL, path.join(dir, 'cram-llama-d32'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'broken'));
    fs.writeFileSync(path.join(dir, 'broken', 'config.json'), '{"model_type": "llama", "hidden_size": ');
    const outside = tmp('outside');
    fs.cpSync(MODEL, outside, { recursive: true });
    const worker = cli(['worker', '--queue', redis.url, '--models', dir]);
    const runDir = tmp('poison');
    const exec = queueExecutor(redis.url, { runDir, log: () => {} });
    try {
      await worker.waitFor(/^worker on /);
      const m = await loadModel(MODEL);
      const texts = Array.from({ length: 4 }, (_, i) => ({
        id: `t${i}`,
        ids: m.tokenizer.encode(`text number ${i} here`),
      }));
      const ref = { id: 'models/cram-llama-d32', weightsHash: m.weightsHash };
      const plan = new SweepPlan(texts, { lengths: [8], Ks: [1], batch: 2, model: ref, options: { maxSteps: 20 } });
      const good = plan.cramUnits(plan.cells);
      const poisoned: Unit = { ...good[0], model: { id: 'broken', weightsHash: 'x'.repeat(64) }, prints: ['p0', 'p1'] };
      const far: Unit = { ...good[0], model: { id: outside, weightsHash: m.weightsHash }, prints: ['q0', 'q1'] };
      const got: [string, Outcome][] = [];
      await exec.adopt!(new Set(), () => {});
      const failed = await exec.run([...good, poisoned, far], (p, o) => void got.push([p, o]));
      assert.deepEqual(
        got.map(([p]) => p).sort(),
        plan.cells.map((c) => c.fingerprint).sort(),
        'the good jobs finished',
      );
      assert.equal(failed.length, 2);
      const why = (u: Unit) => failed.find((f) => f.unit === u)?.reason ?? '';
      assert.match(why(poisoned), /config\.json.*\(after 3 tries\)$/);
      assert.match(why(far), new RegExp(`model path '${outside}' is outside this worker's --models \\(${dir}\\)`));
      assert.equal(worker.lines.filter((x) => /: failed: .*outside this worker's --models/.test(x)).length, 3);
      assert.equal(worker.p.exitCode, null, 'the worker crashed');
    } finally {
      await exec.close!();
      await kill(worker);
      await redis.stop();
    }
  },
);

test(
  'two coordinators on one run folder: the second is refused (the folder lock; the queue lock across machines)',
  { skip: REDIS_MISSING },
  async () => {
    const redis = await startRedis();
    const runDir = tmp('two');
    const args = [
      'capacity',
      '--model',
      'models/cram-llama-d32',
      '--texts',
      'books',
      '--count',
      '2',
      '--lengths',
      '8',
      '--max-steps',
      '5',
      '--out',
      runDir,
      '--queue',
      redis.url,
    ];
    const first = cli(args); // no workers: it waits
    try {
      await first.waitFor(/^queue: 1 jobs submitted/);
      const second = cli(args);
      assert.equal(await second.exited, 1);
      assert.match(second.lines.join('\n'), new RegExp(`in use by process ${first.p.pid} .*use another --out`));
      await kill(first);
      // Another machine coordinating the same queue (its key in Redis) refuses this one too.
      const other = queueExecutor(redis.url, { runDir, log: () => {} });
      const client = await connect(redis.url);
      await client.set(`cramlab:coordinator:${queueName(runDir)}`, 'elsewhere:1', 'PX', 60_000);
      client.disconnect();
      await assert.rejects(
        other.adopt!(new Set(), () => {}),
        /is coordinated by elsewhere:1; wait for it to finish or use another --out/,
      );
      await other.close!();
    } finally {
      await kill(first);
      await redis.stop();
    }
  },
);

test('worker model paths: inside --models (by path or folder name) or a Hub id; anything else refused', () => {
  const root = tmp('resolve');
  const models = path.join(root, 'models');
  fs.mkdirSync(path.join(models, 'a'), { recursive: true });
  fs.mkdirSync(path.join(root, 'secret'));
  fs.symlinkSync(path.join(root, 'secret'), path.join(models, 'link'));
  assert.equal(resolveModel(path.join(models, 'a'), [models]), fs.realpathSync(path.join(models, 'a')));
  assert.equal(resolveModel('/elsewhere/on/the/coordinator/a', [models]), fs.realpathSync(path.join(models, 'a')));
  assert.equal(resolveModel('org/name', [models]), 'org/name');
  assert.throws(() => resolveModel(path.join(root, 'secret'), [models]), /outside this worker's --models/);
  assert.throws(() => resolveModel('link', [models]), /outside this worker's --models/, 'a symlink out of --models');
  assert.throws(() => resolveModel('../secret', [models]), /outside this worker's --models/);
  assert.throws(() => resolveModel('./x', []), /none given/);
});

test('queue URLs: redis:// and rediss://, the password never shown, a bad one named', () => {
  assert.deepEqual(
    (({ host, port, db, password }) => ({ host, port, db, password }))(redisOptions('redis://:s3cret@10.0.0.5:6380/2')),
    { host: '10.0.0.5', port: 6380, db: 2, password: 's3cret' },
  );
  assert.ok(redisOptions('rediss://h').tls);
  assert.equal(maskUrl('redis://:s3cret@h:1/0'), 'redis://:***@h:1/0');
  assert.throws(() => redisOptions('http://h'), /must start with redis:\/\/ or rediss:\/\//);
  assert.throws(
    () => redisOptions('redis://:pw@h/x'),
    (e: Error) => /database/.test(e.message) && !/pw/.test(e.message),
  );
});

test(
  'the workbook takes its queue from CRAMLAB_QUEUE: capacityWalk (warm starts, curves) gives the records of a local walk',
  { skip: REDIS_MISSING },
  async () => {
    const redis = await startRedis();
    const worker = cli(['worker', '--queue', redis.url, '--models', path.join(ROOT, 'models')]);
    try {
      await worker.waitFor(/^worker on /);
      const [m] = await openModels([MODEL]);
      const texts = ['The sea was calm.', 'Call me Ishmael, said he.'].map((text, i) => ({
        id: `w${i}`,
        text,
        ids: m.tokenizer.encode(text),
      }));
      const b = { ...budget('ci'), maxSteps: 200, patience: 200 };
      const walk = async (dir: string) => {
        const file = new RecordFile(dir);
        const caps = await capacityWalk(m, texts, {
          K: 1,
          set: 's',
          budget: b,
          file,
          lengths: [2, 4, 6],
          curveEvery: 5,
          quiet: true,
        });
        return { caps, recs: records(dir) };
      };
      const local = await walk(tmp('wb-local'));
      process.env.CRAMLAB_QUEUE = redis.url;
      const queued = await walk(tmp('wb-queue')).finally(() => delete process.env.CRAMLAB_QUEUE);
      assert.ok(
        worker.lines.some((l) => /^job c-\S+: done/.test(l)),
        'the worker did not do the jobs',
      );
      assert.deepEqual(queued, local);
      assert.ok([...local.recs.values()].some((r) => r.warmStart) && [...local.recs.values()].every((r) => r.curve));
    } finally {
      await kill(worker);
      await redis.stop();
    }
  },
);
