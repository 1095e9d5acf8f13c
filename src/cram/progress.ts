// A live progress line: '\r' updates on a terminal and in Jupyter (tslab passes stdout through),
// plain lines every few seconds when stdout is a file or a pipe.

export interface ProgressInfo {
  /** Iterations done by the batch loop (each advances every active text by one AdamW step). */
  step: number;
  maxSteps: number;
  /** Mean loss and current greedy accuracy over the texts still optimising. */
  loss: number;
  accuracy: number;
  /** Mean best accuracy over all texts so far. */
  bestAccuracy: number;
  done: number;
  total: number;
  active: number;
  stepsPerSecond: number;
  seconds: number;
}

export function formatProgress(p: ProgressInfo): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return (
    `cram step ${p.step}/${p.maxSteps}  loss ${Number.isFinite(p.loss) ? p.loss.toFixed(4) : '-'}  ` +
    `acc ${Number.isFinite(p.accuracy) ? pct(p.accuracy) : '-'} (best ${pct(p.bestAccuracy)})  ` +
    `done ${p.done}/${p.total}  ${p.stepsPerSecond.toFixed(1)} steps/s  ${p.seconds.toFixed(1)}s`
  );
}

function inJupyter(): boolean {
  return Boolean(process.env.JPY_PARENT_PID) || Object.keys(require.cache).some((k) => /[\\/]tslab[\\/]/.test(k));
}

/** A printer for ProgressInfo; call end() once to finish the line. */
export function progressPrinter(
  stream: NodeJS.WriteStream = process.stdout,
  everySeconds = 5,
): { update(p: ProgressInfo): void; end(): void } {
  const live = Boolean(stream.isTTY) || inJupyter();
  let last = 0;
  let shown = false;
  let width = 0;
  return {
    update(p) {
      const line = formatProgress(p);
      if (live) {
        // At most 4 redraws a second: each is a message to the notebook front end.
        if (shown && p.seconds - last < 0.25 && p.done < p.total) return;
        last = p.seconds;
        stream.write('\r' + line + ' '.repeat(Math.max(0, width - line.length)));
        width = line.length;
        shown = true;
      } else if (p.seconds - last >= everySeconds || p.done === p.total) {
        stream.write(line + '\n');
        last = p.seconds;
      }
    },
    end() {
      if (live && shown) stream.write('\n');
      shown = false;
    },
  };
}
