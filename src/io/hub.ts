// Local folders and Hugging Face Hub ids, one code path.
// A Hub id ("org/name" or "org/name@revision") is downloaded file by file into the standard
// HF cache layout (<cache>/models--org--name/snapshots/<revision>/...), then used as a folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fsErrorMessage, writeFileAtomic } from './write';

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

/** `<cache>/models--org--name`: the repo's folder in the huggingface_hub layout. */
function repoDir(repo: string, type: RepoType): string {
  return path.join(hubCacheDir(), `${type}s--${repo.split('/').join('--')}`);
}

const COMMIT = /^[0-9a-f]{40}$/;

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

/**
 * A repo id maps to one cache folder and back: parts joined by '--', so a part holding '--' or
 * starting or ending with '-' could collide ('a--b/c' and 'a/b--c'). The Hub refuses such names too.
 */
export function checkRepoId(repo: string): void {
  checkRepoName(repo, 'Hub repo');
  const bad = repo.split('/').find((part) => part.includes('--') || part.startsWith('-') || part.endsWith('-'));
  if (bad !== undefined)
    throw new HubError(
      `refusing Hub repo ${JSON.stringify(repo)}: part ${JSON.stringify(bad)} contains '--' or starts or ends with '-' (the Hub allows neither; the cache folder name would be ambiguous)`,
    );
}

/** Seconds without a byte before a download is given up (not total time: large files take long). */
function idleTimeoutMs(): number {
  const s = Number(process.env.CRAMLAB_HUB_IDLE_TIMEOUT_S ?? 30);
  return (Number.isFinite(s) && s > 0 ? s : 30) * 1000;
}

const MAX_REDIRECTS = 10;
/** Errors that mean "no network": the only ones reported as offline. */
const OFFLINE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** What the Hub said about a file besides its bytes (huggingface_hub reads the same headers). */
interface FileMeta {
  commit?: string;
  /** sha256 (LFS files) or git blob sha1 (small files), when the Hub gave one. */
  etag?: string;
  size?: number;
}

/** GET `url`, following up to MAX_REDIRECTS http(s) redirects by hand; the headers of every hop are kept. */
async function getFollowing(
  url: string,
  id: string,
  file: string,
  signal: AbortSignal,
): Promise<{ res: Response; meta: FileMeta }> {
  const meta: FileMeta = {};
  let linkedSeen = false;
  const origin = new URL(url).origin;
  const token = process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = {};
    // The token goes to the Hub only, never to wherever it redirects.
    if (token && new URL(url).origin === origin) headers.authorization = `Bearer ${token}`;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal, redirect: 'manual' });
    } catch (e) {
      if (signal.aborted) throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.message ?? (e as Error).message;
      if (cause?.code && OFFLINE_CODES.has(cause.code))
        throw new HubError(
          `cannot reach the Hugging Face Hub to download '${id}' (${why}); ` +
            `you seem to be offline: download it elsewhere and pass the local folder instead (--model ./path/to/folder)`,
        );
      throw new HubError(`downloading '${file}' for '${id}' from ${url} failed: ${why}`);
    }
    const h = res.headers;
    meta.commit ??= h.get('x-repo-commit') ?? undefined;
    // As huggingface_hub reads them: X-Linked-Etag/-Size (LFS files, on the Hub's redirect), else the
    // ETag of the last answer from the Hub itself (a CDN's own ETag is not the file's hash).
    const linked = h.get('x-linked-etag');
    if (linked) meta.etag = normalizeEtag(linked);
    else if (!linkedSeen && new URL(url).origin === origin) meta.etag = normalizeEtag(h.get('etag') ?? '');
    linkedSeen ||= !!linked;
    const size = h.get('x-linked-size');
    if (size && meta.size === undefined && /^\d+$/.test(size)) meta.size = Number(size);
    if (![301, 302, 303, 307, 308].includes(res.status)) return { res, meta };
    await res.body?.cancel();
    const loc = h.get('location');
    if (!loc) throw new HubError(`downloading '${file}' for '${id}': HTTP ${res.status} redirect without a Location`);
    const next = new URL(loc, url);
    if (next.protocol !== 'https:' && next.protocol !== 'http:')
      throw new HubError(
        `downloading '${file}' for '${id}': the server redirected to ${JSON.stringify(next.href.slice(0, 200))}, not an http(s) URL; refusing`,
      );
    if (hop + 1 >= MAX_REDIRECTS)
      throw new HubError(
        `downloading '${file}' for '${id}': more than ${MAX_REDIRECTS} redirects (a redirect loop at ${url}?)`,
      );
    url = next.href;
  }
}

/** A strong ETag's hash (64 hex: sha256, 40 hex: git blob sha1); weak or other tags are not checked. */
function normalizeEtag(tag: string): string | undefined {
  if (!tag || tag.startsWith('W/')) return undefined;
  const t = tag.replace(/^"|"$/g, '').toLowerCase();
  return /^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(t) ? t : undefined;
}

/** The file's bytes against what the Hub promised; the reason it is refused, or null. */
function verify(tmp: string, got: number, sha256: string, res: Response, meta: FileMeta): string | null {
  const len = res.headers.get('content-length');
  const encoded = res.headers.get('content-encoding'); // fetch decompresses: Content-Length counts the wire bytes
  if (len && !encoded && /^\d+$/.test(len) && Number(len) !== got)
    return `the body ended after ${got} of ${len} bytes (connection closed mid-body?)`;
  if (meta.size !== undefined && meta.size !== got) return `got ${got} bytes, the Hub says the file has ${meta.size}`;
  if (got === 0) return 'the server sent an empty body';
  const type = res.headers.get('content-type') ?? '';
  const head = Buffer.alloc(Math.min(256, got));
  const fd = fs.openSync(tmp, 'r');
  try {
    fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (/text\/html/i.test(type) || /^\s*<(!doctype html|html)/i.test(head.toString()))
    return 'the server sent an HTML page instead of the file (a proxy or error page?)';
  if (meta.etag?.length === 64 && sha256 !== meta.etag) return `its sha256 is ${sha256}, the Hub says ${meta.etag}`;
  if (meta.etag?.length === 40 && got <= 64 * 1024 * 1024) {
    // A small (non-LFS) file: its ETag is the git blob id.
    const bytes = fs.readFileSync(tmp);
    const sha1 = createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
    if (sha1 !== meta.etag) return `its git sha1 is ${sha1}, the Hub says ${meta.etag}`;
  }
  return null;
}

/**
 * Download `url` into `dest` through a temporary name in the same folder, renamed only once the
 * bytes are complete and verified: a failed, cut or bogus download never sits under the final name.
 * Returns the Hub's metadata, or null for a 404 of an optional file.
 */
async function fetchFile(url: string, dest: string, id: string, optional: boolean): Promise<FileMeta | null> {
  const name = path.basename(dest);
  const idleMs = idleTimeoutMs();
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), idleMs);
  const poke = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(), idleMs);
  };
  const stalled = () =>
    new HubError(
      `downloading '${name}' for '${id}' stalled: no data for ${idleMs / 1000} s (CRAMLAB_HUB_IDLE_TIMEOUT_S)`,
    );
  let got: { res: Response; meta: FileMeta };
  try {
    got = await getFollowing(url, id, name, abort.signal);
  } catch (e) {
    clearTimeout(timer);
    if (abort.signal.aborted) throw stalled();
    throw e;
  }
  const { res, meta } = got;
  try {
    if (res.status === 404 && optional) return null;
    if (res.status === 401 || res.status === 403)
      throw new HubError(
        `the Hub refused '${id}' (HTTP ${res.status}): a gated model needs HF_TOKEN and accepted terms`,
      );
    if (!res.ok) throw new HubError(`downloading ${url} for '${id}' failed: HTTP ${res.status}`);
    const tmp = `${dest}.part-${process.pid}`;
    let fd: number;
    try {
      fd = fs.openSync(tmp, 'w');
    } catch (e) {
      throw new HubError(fsErrorMessage(dest, e, 'download into'));
    }
    let bytes = 0;
    const sha256 = createHash('sha256');
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        poke();
        try {
          fs.writeSync(fd, chunk);
        } catch (e) {
          throw new HubError(fsErrorMessage(dest, e, 'download into'));
        }
        sha256.update(chunk);
        bytes += chunk.length;
      }
      fs.fsyncSync(fd);
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      if (abort.signal.aborted) throw stalled();
      if (e instanceof HubError) throw e;
      throw new HubError(`downloading '${name}' for '${id}' failed midway (${(e as Error).message})`);
    }
    fs.closeSync(fd);
    const bad = verify(tmp, bytes, sha256.digest('hex'), res, meta);
    if (bad) {
      fs.rmSync(tmp, { force: true });
      throw new HubError(`downloading '${name}' for '${id}' from ${url}: ${bad}; nothing was cached, try again`);
    }
    fs.renameSync(tmp, dest);
    return meta;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `rel` under the cache, as a real path inside it: every level that exists is resolved with realpath
 * and must stay inside the cache's real path (a snapshot folder symlinked elsewhere would otherwise
 * receive the downloads). With `make`, `rel` is a folder, made one level at a time and checked the same way.
 */
function inCache(rel: string, make: boolean): string {
  try {
    return inCacheUnchecked(rel, make);
  } catch (e) {
    if (e instanceof HubError) throw e;
    throw new HubError(
      `${fsErrorMessage(path.join(hubCacheDir(), rel), e, 'use the cache folder')} (the Hub cache, CRAMLAB_CACHE)`,
    );
  }
}

function inCacheUnchecked(rel: string, make: boolean): string {
  const root = hubCacheDir();
  if (fs.existsSync(root) && !fs.statSync(root).isDirectory())
    throw new HubError(`the Hub cache ${root} is a file, not a folder (set by CRAMLAB_CACHE, HF_HUB_CACHE or HF_HOME)`);
  if (make) fs.mkdirSync(root, { recursive: true });
  if (!fs.existsSync(root)) return path.join(root, rel);
  const realRoot = fs.realpathSync(root);
  let cur = realRoot;
  const parts = rel.split(path.sep);
  for (let i = 0; i < parts.length; i++) {
    const next = path.join(cur, parts[i]);
    const last = i === parts.length - 1;
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(next);
    } catch {
      st = undefined;
    }
    if (!st) {
      if (!make) {
        cur = next;
        continue;
      }
      fs.mkdirSync(next); // `make`: rel is a folder, made level by level
    }
    if (st?.isSymbolicLink() && last) {
      // A final-name symlink (huggingface_hub's snapshot → ../../blobs/...) is checked, not followed for writing.
      let real: string;
      try {
        real = fs.realpathSync(next);
      } catch {
        real = next; // dangling: a download replaces it
      }
      if (!isInside(realRoot, real))
        throw new HubError(`refusing ${path.join(root, rel)}: it resolves to ${real}, outside the cache ${realRoot}`);
      cur = next;
      continue;
    }
    const real = fs.existsSync(next) ? fs.realpathSync(next) : next;
    if (!isInside(realRoot, real))
      throw new HubError(
        `refusing ${path.join(root, ...parts.slice(0, i + 1))}: it resolves to ${real}, outside the cache ${realRoot} (a symlink?)`,
      );
    cur = last ? next : real;
  }
  return cur;
}

/** The commit `revision` names in the cache: refs/<revision> (as huggingface_hub writes it), else itself. */
function cachedCommit(repo: string, revision: string, type: RepoType): string | undefined {
  if (COMMIT.test(revision)) return revision;
  const ref = path.join(repoDir(repo, type), 'refs', revision);
  if (!fs.existsSync(ref)) return undefined;
  inCache(path.relative(hubCacheDir(), ref), false);
  const commit = fs.readFileSync(ref, 'utf8').trim();
  if (!COMMIT.test(commit)) throw new HubError(`${ref}: not a commit hash (${JSON.stringify(commit.slice(0, 60))})`);
  return commit;
}

/**
 * Make `files` of a Hub repo available locally and return the snapshot folder.
 * `files` entries ending in '?' are optional. Files already cached are not fetched again.
 * Every file of a snapshot comes from one commit: the first download learns the commit the
 * revision names (X-Repo-Commit) and writes refs/<revision>; the rest are asked for by that commit,
 * into snapshots/<commit>/ (the huggingface_hub layout, so a Python cache is reused and vice versa).
 * HF_HUB_OFFLINE=1 (or CRAMLAB_OFFLINE=1) uses the cache only and fails at once when a file is missing.
 */
export async function hubSnapshot(id: string, files: string[], type: RepoType = 'model'): Promise<string> {
  const { repo, revision } = parseHubId(id);
  checkRepoId(repo);
  checkRepoName(revision, 'revision');
  for (const spec of files) checkRepoName(spec.replace(/\?$/, ''), `file name in '${id}'`);
  const offline = process.env.HF_HUB_OFFLINE === '1' || process.env.CRAMLAB_OFFLINE === '1';
  const base = path.relative(hubCacheDir(), repoDir(repo, type));
  let commit = cachedCommit(repo, revision, type);
  // No ref yet: a folder named after the revision itself (an older cramlab cache, or a commit).
  const snap = () => path.join(base, 'snapshots', commit ?? revision);
  const prefix = type === 'dataset' ? `${hubEndpoint()}/datasets/${repo}` : `${hubEndpoint()}/${repo}`;
  for (const spec of files) {
    const optional = spec.endsWith('?');
    const file = optional ? spec.slice(0, -1) : spec;
    const rel = path.join(snap(), file);
    const dest = inCache(rel, false);
    if (fs.existsSync(dest) || fs.existsSync(dest + '.absent')) continue;
    if (offline) {
      if (optional) continue;
      throw new HubError(
        `'${id}' is not in the cache (${path.join(hubCacheDir(), snap())}) and offline mode is on: pass a local folder instead`,
      );
    }
    const asked = commit ?? revision;
    const url = `${prefix}/resolve/${encodeURIComponent(asked)}/${file}`;
    inCache(path.dirname(rel), true);
    const meta = await fetchFile(url, dest, id, optional);
    if (commit === undefined && meta?.commit && COMMIT.test(meta.commit)) {
      // Learned the commit: keep this file in its folder and pin the rest of the load to it.
      commit = meta.commit;
      const pinned = inCache(path.join(snap(), file), false);
      if (pinned !== dest) {
        inCache(path.dirname(path.join(snap(), file)), true);
        fs.renameSync(dest, pinned);
        // The folders made for the unpinned name, now empty, go (a non-empty one stays).
        const snapshots = path.join(hubCacheDir(), base, 'snapshots');
        for (let d = path.dirname(dest); isInside(snapshots, d); d = path.dirname(d)) {
          try {
            fs.rmdirSync(d);
          } catch {
            break;
          }
        }
      }
      const ref = path.join(base, 'refs', revision);
      inCache(path.dirname(ref), true);
      writeFileAtomic(inCache(ref, false), commit);
      // Again, now by the ref: files skipped above (found under the revision's own name) come into the commit's folder too.
      return hubSnapshot(id, files, type);
    } else if (commit !== undefined && meta?.commit && meta.commit !== commit) {
      fs.rmSync(dest, { force: true });
      throw new HubError(`the Hub served '${file}' of '${id}' from commit ${meta.commit}, not the pinned ${commit}`);
    } else if (!meta) {
      const marker = inCache(path.join(snap(), file) + '.absent', false);
      inCache(path.dirname(path.join(snap(), file)), true);
      fs.writeFileSync(marker, ''); // remember the 404 so it is not asked again
    }
  }
  const dir = path.join(hubCacheDir(), snap());
  if (fs.existsSync(dir)) inCache(snap(), false);
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
