// npm's install hook: build the native cram engine (native/) with node-gyp.
// BLAS: OpenBLAS when its cblas.h is found (Debian libopenblas-dev, or pkg-config openblas), Accelerate
// on macOS, else the built-in GEMM; CRAMLAB_BLAS=builtin forces the built-in one.
// Never fails the install: on any error it prints one line and the tfjs engine is used.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function findBlas() {
  const want = (process.env.CRAMLAB_BLAS ?? '').toLowerCase();
  if (want === 'builtin' || want === 'built-in') return { kind: 'builtin' };
  if (process.platform === 'darwin') return { kind: 'accelerate' };
  for (const dir of [
    '/usr/include/x86_64-linux-gnu',
    '/usr/include/aarch64-linux-gnu',
    '/usr/include/openblas',
    '/usr/include',
  ]) {
    if (fs.existsSync(path.join(dir, 'cblas.h')) && fs.existsSync(path.join(dir, 'openblas_config.h')))
      return { kind: 'openblas', include: dir };
  }
  try {
    const inc = execFileSync('pkg-config', ['--variable=includedir', 'openblas'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (inc && fs.existsSync(path.join(inc, 'cblas.h'))) return { kind: 'openblas', include: inc };
  } catch {}
  return { kind: 'builtin' };
}

function fail(reason) {
  console.log(`cramlab: native engine not built (${reason}); using the tfjs engine`);
  process.exit(0);
}

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  fail('node-gyp is not installed');
}
const blas = findBlas();
const args = [gyp, 'rebuild'];
// Building against the system's node headers needs no download (offline machines).
if (fs.existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
const env = { ...process.env, CRAMLAB_BLAS_RESOLVED: blas.kind, CRAMLAB_BLAS_INCLUDE: blas.include ?? '' };
const r = spawnSync(process.execPath, args, { cwd: path.join(root, 'native'), env, encoding: 'utf8' });
if (r.status !== 0) {
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n');
  const line = log.reverse().find((l) => /error/i.test(l)) ?? r.error?.message ?? `node-gyp exited with ${r.status}`;
  fail(line.trim().slice(0, 200));
}
console.log(`cramlab: native engine built (${blas.kind === 'openblas' ? 'OpenBLAS' : blas.kind})`);
