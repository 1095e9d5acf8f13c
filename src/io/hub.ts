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
  const home = process.env.HF_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
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

async function fetchFile(url: string, dest: string, id: string, optional: boolean): Promise<boolean> {
  const headers: Record<string, string> = {};
  const token = process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(Number(process.env.CRAMLAB_HUB_TIMEOUT_MS ?? 15000)) });
  } catch (e) {
    throw new HubError(
      `cannot reach the Hugging Face Hub to download '${id}' (${(e as Error).message}); ` +
        `you seem to be offline: download it elsewhere and pass the local folder instead (--model ./path/to/folder)`,
    );
  }
  if (res.status === 404 && optional) return false;
  if (res.status === 401 || res.status === 403) throw new HubError(`the Hub refused '${id}' (HTTP ${res.status}): a gated model needs HF_TOKEN and accepted terms`);
  if (!res.ok) throw new HubError(`downloading ${url} for '${id}' failed: HTTP ${res.status}`);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.part-${process.pid}`;
  const body = Buffer.from(await res.arrayBuffer());
  fs.writeFileSync(tmp, body);
  fs.renameSync(tmp, dest); // atomic: an interrupted download never leaves a half file in the cache
  return true;
}

/**
 * Make `files` of a Hub repo available locally and return the snapshot folder.
 * `files` entries ending in '?' are optional. Files already cached are not fetched again.
 * HF_HUB_OFFLINE=1 (or CRAMLAB_OFFLINE=1) uses the cache only and fails at once when a file is missing.
 */
export async function hubSnapshot(id: string, files: string[], type: RepoType = 'model'): Promise<string> {
  const { repo, revision } = parseHubId(id);
  const dir = snapshotDir(repo, revision, type);
  const offline = process.env.HF_HUB_OFFLINE === '1' || process.env.CRAMLAB_OFFLINE === '1';
  for (const spec of files) {
    const optional = spec.endsWith('?');
    const file = optional ? spec.slice(0, -1) : spec;
    const dest = path.join(dir, file);
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

export function expandHome(p: string): string {
  return p.startsWith('~') ? path.join(os.homedir(), p.slice(1)) : p;
}
