// Local folders and Hugging Face Hub ids, one code path.
// A Hub id ("org/name" or "org/name@revision") is downloaded file by file into the standard
// HF cache layout (<cache>/models--org--name/snapshots/<revision>/...), then used as a folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type RepoType = 'model' | 'dataset';

export function hubCacheDir(): string {
  if (process.env.CRAMLAB_CACHE) return process.env.CRAMLAB_CACHE;
  if (process.env.HF_HUB_CACHE) return process.env.HF_HUB_CACHE;
  const home =
    process.env.HF_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

export function hubEndpoint(): string {
  return (process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
}

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+(@[\w./-]+)?$/;

/** True when `s` names something on disk, false when it looks like a Hub id; a path that exists always wins. */
export function isLocal(s: string): boolean {
  if (fs.existsSync(s)) return true;
  if (s.startsWith('.') || s.startsWith('/') || s.startsWith('~') || s.includes('\\')) return true;
  // 'models/cram-llama-d46' (a typo under an existing local folder) is a path, not a Hub id to fetch.
  const top = s.split('/')[0];
  if (s.includes('/') && fs.existsSync(top) && fs.statSync(top).isDirectory()) return true;
  return !HUB_ID.test(s);
}

export function parseHubId(s: string): { repo: string; revision: string } {
  const [repo, revision] = s.split('@');
  return { repo, revision: revision ?? 'main' };
}

export class HubError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'HubError';
  }
}

function snapshotDir(repo: string, revision: string, type: RepoType): string {
  return path.join(hubCacheDir(), `${type}s--${repo.replace('/', '--')}`, 'snapshots', revision);
}

/**
 * Refuse a Hub file name or revision that could leave its folder: absolute, '..', '.', empty
 * segments, '?', '#', backslash, NUL. Checked before anything is read or written.
 */
export function checkRepoName(name: string, what: string): void {
  const bad =
    !name ||
    name.startsWith('/') ||
    /[?#\\\0]/.test(name) ||
    name.split('/').some((seg) => seg === '' || seg === '.' || seg === '..');
  if (bad)
    throw new HubError(
      `refusing ${what} ${JSON.stringify(name)}: it must be a plain relative name (no '..', '/', '?', '#', '\\', empty segments)`,
    );
}

/** Seconds without a byte before a download is given up (not total time: large files take long). */
function idleTimeoutMs(): number {
  const s = Number(process.env.CRAMLAB_HUB_IDLE_TIMEOUT_S ?? 30);
  return (Number.isFinite(s) && s > 0 ? s : 30) * 1000;
}

async function fetchFile(url: string, dest: string, id: string, optional: boolean): Promise<boolean> {
  const headers: Record<string, string> = {};
  const token = process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  if (token) headers.authorization = `Bearer ${token}`;
  const idleMs = idleTimeoutMs();
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), idleMs);
  const poke = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(), idleMs);
  };
  const stalled = () =>
    new HubError(
      `downloading '${path.basename(dest)}' for '${id}' stalled: no data for ${idleMs / 1000} s (CRAMLAB_HUB_IDLE_TIMEOUT_S)`,
    );
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: abort.signal });
  } catch (e) {
    clearTimeout(timer);
    if (abort.signal.aborted) throw stalled();
    throw new HubError(
      `cannot reach the Hugging Face Hub to download '${id}' (${(e as Error).message}); ` +
        `you seem to be offline: download it elsewhere and pass the local folder instead (--model ./path/to/folder)`,
    );
  }
  try {
    if (res.status === 404 && optional) return false;
    if (res.status === 401 || res.status === 403)
      throw new HubError(
        `the Hub refused '${id}' (HTTP ${res.status}): a gated model needs HF_TOKEN and accepted terms`,
      );
    if (!res.ok) throw new HubError(`downloading ${url} for '${id}' failed: HTTP ${res.status}`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    // Stream into a temporary name in the same folder, rename when complete: a killed download
    // never leaves a final-named partial file in the cache.
    const tmp = `${dest}.part-${process.pid}`;
    const fd = fs.openSync(tmp, 'w');
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        poke();
        fs.writeSync(fd, chunk);
      }
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      if (abort.signal.aborted) throw stalled();
      throw new HubError(`downloading '${path.basename(dest)}' for '${id}' failed midway (${(e as Error).message})`);
    }
    fs.closeSync(fd);
    fs.renameSync(tmp, dest);
    return true;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Make `files` of a Hub repo available locally and return the snapshot folder.
 * `files` entries ending in '?' are optional. Files already cached are not fetched again.
 * HF_HUB_OFFLINE=1 (or CRAMLAB_OFFLINE=1) uses the cache only and fails at once when a file is missing.
 */
export async function hubSnapshot(id: string, files: string[], type: RepoType = 'model'): Promise<string> {
  const { repo, revision } = parseHubId(id);
  checkRepoName(repo, 'Hub repo');
  checkRepoName(revision, 'revision');
  const dir = snapshotDir(repo, revision, type);
  for (const spec of files) checkRepoName(spec.replace(/\?$/, ''), `file name in '${id}'`);
  const offline = process.env.HF_HUB_OFFLINE === '1' || process.env.CRAMLAB_OFFLINE === '1';
  for (const spec of files) {
    const optional = spec.endsWith('?');
    const file = optional ? spec.slice(0, -1) : spec;
    const dest = path.join(dir, file);
    if (!isInside(hubCacheDir(), dest))
      throw new HubError(
        `refusing file ${JSON.stringify(file)} of '${id}': it resolves outside the cache ${hubCacheDir()}`,
      );
    if (fs.existsSync(dest) || fs.existsSync(dest + '.absent')) continue;
    if (offline) {
      if (optional) continue;
      throw new HubError(`'${id}' is not in the cache (${dir}) and offline mode is on: pass a local folder instead`);
    }
    const prefix = type === 'dataset' ? `${hubEndpoint()}/datasets/${repo}` : `${hubEndpoint()}/${repo}`;
    const ok = await fetchFile(`${prefix}/resolve/${encodeURIComponent(revision)}/${file}`, dest, id, optional);
    if (!ok) {
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.writeFileSync(dest + '.absent', ''); // remember the 404 so it is not asked again
    }
  }
  return dir;
}

/** True when `p` lies strictly inside folder `root` (both resolved, no symlinks followed). */
export function isInside(root: string, p: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(p));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

export function expandHome(p: string): string {
  return p.startsWith('~') ? path.join(os.homedir(), p.slice(1)) : p;
}
