// tslab fires iopub sends without waiting; zeromq 6 throws EBUSY on overlapping sends and the kernel
// dies (seen on long notebook crams). serializeTslabSends queues them. Each case runs in a child
// process so the patch never leaks into other tests. What is tested is EBUSY and order, not zeromq's
// flow control: a Publisher drops past its send high-water mark (default 1000) when the reader lags
// (it did once under load: "received 1000"), so the test's publisher has no limit (0), and the reader
// reads only after the whole burst, so its speed cannot matter.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const ROOT = path.join(__dirname, '..');

function burst(patch: boolean, port: number, size = 1): { status: number | null; out: string } {
  const script = `
    ${patch ? "require('tslab/dist/jupyter.js'); require('tsx/cjs'); console.log('patched', require('./src/workbook/tslab-sends').serializeTslabSends());" : ''}
    const z = require('zeromq');
    (async () => {
      const pub = new z.Publisher({ sendHighWaterMark: 0 }); await pub.bind('tcp://127.0.0.1:${port}');
      const sub = new z.Subscriber({ receiveHighWaterMark: 10 }); sub.connect('tcp://127.0.0.1:${port}'); sub.subscribe();
      await new Promise((r) => setTimeout(r, 300));
      const pad = 'x'.repeat(${size});
      let last;
      try { for (let i = 0; i < 2000; i++) last = pub.send(['m' + i, pad]); } catch (e) { console.log('threw', e.code); process.exit(0); }
      await last; await new Promise((r) => setTimeout(r, 1000)); // the frontend is busy elsewhere
      let n = 0, ordered = true;
      setTimeout(() => { console.log('received', n, ordered); process.exit(0); }, 10000);
      for await (const [m] of sub) { ordered = ordered && m.toString() === 'm' + n; if (++n === 2000) { console.log('received', n, ordered); process.exit(0); } }
    })();`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('zeromq 6 alone throws EBUSY on a burst of sends (the failure being fixed)', () => {
  const r = burst(false, 45871);
  assert.match(r.out, /threw EBUSY/);
});

test('serializeTslabSends: inside tslab a burst of 2000 sends all arrive, in order, at a slow reader', () => {
  const r = burst(true, 45872, 20_000);
  assert.match(r.out, /patched true/);
  assert.match(r.out, /received 2000 true/);
});

test('serializeTslabSends is a no-op outside tslab', () => {
  const r = spawnSync(
    process.execPath,
    ['-e', "require('tsx/cjs'); console.log(require('./src/workbook/tslab-sends').serializeTslabSends())"],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(r.stdout.trim(), 'false');
});
