import { startWorker } from '../../runs/worker';
import { num, str, UsageError, type Args } from '../args';
import type { Command } from '../main';

export const command: Command = {
  name: 'worker',
  summary:
    "compute the jobs of distributed sweeps ('capacity --queue') until stopped (Ctrl-C finishes the job in hand)",
  usage: 'worker --queue redis://[:PASSWORD@]HOST:PORT[/DB] [--concurrency 1] [--models DIR[,DIR…]]',
  async run(args: Args) {
    if (args._.length) throw new UsageError(`unexpected argument '${args._[0]}'`);
    const models = typeof args.models === 'string' ? args.models.split(',').filter(Boolean) : [];
    // How long a killed worker keeps its job before others take it (tests shorten it).
    const lockMs = process.env.CRAMLAB_QUEUE_LOCK_MS ? Number(process.env.CRAMLAB_QUEUE_LOCK_MS) : undefined;
    if (lockMs !== undefined && !(lockMs >= 200))
      throw new UsageError(
        `CRAMLAB_QUEUE_LOCK_MS must be a number of ms ≥ 200, got '${process.env.CRAMLAB_QUEUE_LOCK_MS}'`,
      );
    const w = await startWorker({
      url: str(args, 'queue'),
      concurrency: num(args, 'concurrency', 1),
      models,
      lockMs,
    });
    // First signal: finish the job in hand, then exit 0. Second: hand it back now (its lock lapses).
    await new Promise<void>((resolve) => {
      let signals = 0;
      const stop = () => {
        if (signals++) {
          console.log('worker: stopping now; the job in hand goes back to the queue');
          void w.stop(true).then(resolve);
          return;
        }
        console.log('worker: finishing the job in hand (signal again to hand it back)');
        void w.stop().then(resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
};
