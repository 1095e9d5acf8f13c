// Every file the CLI writes goes through here: bytes land in a temporary file in the target's own
// folder and are renamed over the target only once complete and synced, so a crash or a full disk
// never leaves a half file under the final name, and a symlink at the target is replaced, not written
// through. Errors name the file and say what is wrong in words (not ENOSPC).
import * as fs from 'node:fs';
import * as path from 'node:path';

export class WriteError extends Error {
  /** The file-system error's code (ENOSPC, …), for callers that add their own advice. */
  constructor(
    msg: string,
    readonly code?: string,
  ) {
    super(msg);
    this.name = 'WriteError';
  }
}

const WHY: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'it is a folder',
  ENOTDIR: 'a part of its path is a file, not a folder',
  ENOENT: 'its folder does not exist',
  EEXIST: 'it already exists',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
};

/** One line naming `file` for a file-system error (the code's meaning in words, then the code). */
export function fsErrorMessage(file: string, e: unknown, verb = 'write'): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  const why = (code && WHY[code]) ?? (e as Error)?.message ?? String(e);
  return `cannot ${verb} ${file}: ${why}${code && WHY[code] ? ` (${code})` : ''}`;
}

/** Write `data` to `file` atomically (temp file in the same folder, fsync, rename). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  let fd: number | undefined;
  try {
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw Object.assign(new Error(), { code: 'EISDIR' });
    fd = fs.openSync(tmp, 'wx', 0o644);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* never made (its folder is missing or a file) */
    }
    throw new WriteError(fsErrorMessage(file, e), (e as NodeJS.ErrnoException)?.code);
  }
  try {
    // The rename itself reaches the disk only with the folder's entry: sync it (best effort).
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    /* some file systems refuse fsync on a folder */
  }
}

/** True when `a` and `b` name the same file (through symlinks and hard links); false when either is missing. */
export function sameFile(a: string, b: string): boolean {
  try {
    const [sa, sb] = [fs.statSync(a), fs.statSync(b)];
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/**
 * Refuse to write into `dir` when it holds anything but the files this command writes itself
 * (`own`: names or patterns) — a model checkpoint, someone's notes — or when `ours` says the folder
 * lacks this command's mark (a model folder's config.json is not a run's), unless `force`.
 */
export function refuseForeignFolder(
  dir: string,
  o: { own: (string | RegExp)[]; ours?: () => boolean; what: string; force?: boolean; hint: string },
): void {
  if (o.force || !fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw new WriteError(`cannot use ${dir}: it is a file, not a folder`);
  const names = fs.readdirSync(dir).filter((n) => !/^\..*\.tmp-\d+-/.test(n));
  if (!names.length) return;
  const mine = (n: string) => o.own.some((p) => (typeof p === 'string' ? p === n : p.test(n)));
  const foreign = names.filter((n) => !mine(n));
  const checkpoint = names.find((n) => /\.(safetensors|bin|pt|pth|ckpt|gguf)$/.test(n));
  if (foreign.length || (o.ours && !o.ours())) {
    const held = checkpoint
      ? `a checkpoint (${checkpoint})`
      : foreign.length
        ? `files cramlab did not write (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''})`
        : `files of something else (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''})`;
    throw new WriteError(`refusing to write ${o.what} into ${dir}: it holds ${held}; ${o.hint}`);
  }
}
