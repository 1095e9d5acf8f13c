// Run one bench side as a child process and measure it: exit status, stderr, peak RSS and CPU
// seconds (GNU time when present). A crash is data for a "failed: <reason>" row, not an exception.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const GNU_TIME = '/usr/bin/time';

/** The line worth showing from a dead child's stderr: its last error line, else its last line. */
export function reasonOf(stderr: string, fallback: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const err = [...lines].reverse().find((l) => /\b\w*Error\b|terminated by signal|Killed/.test(l));
  return (err ?? lines.at(-1) ?? fallback).slice(0, 200);
}

/** Run a child to completion; peak RSS and CPU seconds from GNU time when present. */
export function measured(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { ok: boolean; stderr: string; maxRssKB?: number; cpuS?: number } {
  const useTime = fs.existsSync(GNU_TIME);
  const stats = path.join(os.tmpdir(), `cramlab-bench-time-${process.pid}.txt`);
  const p = useTime
    ? spawnSync(GNU_TIME, ['-o', stats, '-f', 'MAXRSS_KB %M CPU_S %U %S', cmd, ...args], {
        encoding: 'utf8',
        env,
        maxBuffer: 64 << 20,
      })
    : spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  let stderr = p.stderr ?? p.error?.message ?? '';
  let maxRssKB: number | undefined, cpuS: number | undefined;
  if (useTime && fs.existsSync(stats)) {
    const s = fs.readFileSync(stats, 'utf8');
    fs.rmSync(stats, { force: true });
    const m = /MAXRSS_KB (\d+) CPU_S ([\d.]+) ([\d.]+)/.exec(s);
    if (m) [maxRssKB, cpuS] = [Number(m[1]), Number(m[2]) + Number(m[3])];
    const sig = /terminated by signal \d+/.exec(s);
    if (sig) stderr += `\nCommand ${sig[0]}`;
  }
  return { ok: p.status === 0, stderr, maxRssKB, cpuS };
}
