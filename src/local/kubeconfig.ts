// The local cluster in the user's kubeconfig, as kind puts its clusters there: `ambit up` merges the cluster's own
// kubeconfig (written by the supervisor into the state directory) as context `ambit-<cluster>` and makes it current;
// `ambit down` takes it out again. The user's file is edited, never regenerated: other entries, unknown fields and
// comments stay as they were (the layout becomes kubectl's), and a file we cannot parse is refused, not overwritten.
import { randomBytes } from 'node:crypto';
import { chown, mkdir, open, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parse, parseDocument, type Document, type Node, type YAMLSeq } from 'yaml';

/** The name of a local cluster's context, cluster and user entries in a kubeconfig. */
export function contextName(cluster: string): string {
  return `ambit-${cluster}`;
}

export interface KubeconfigOptions {
  /** Where HOME, KUBECONFIG and KUBECACHEDIR come from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for another writer's `<file>.lock` to go away (default 5 s). */
  lockTimeoutMs?: number;
}

// kubectl holds its lock only while it rewrites the file, so a lock that stays this long belongs to a process that died.
const DEFAULT_LOCK_TIMEOUT_MS = 5000;
const LOCK_RETRY_MS = 50;

// Like kind (and client-go on Linux), $HOME and not the password database: under `sudo -E` that is the invoking
// user's home, under plain sudo root's, so the context lands where the kubectl of the same environment looks.
function homeDir(env: NodeJS.ProcessEnv): string {
  return env.HOME || homedir();
}

/**
 * The kubeconfig files kubectl would read, as kind lists them: the explicit `--kubeconfig` path alone; else the
 * entries of `$KUBECONFIG` (split on ':', empty and repeated entries dropped); else `~/.kube/config`.
 */
export function kubeconfigPaths(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  if (explicit) return [explicit];
  const listed = [...new Set((env.KUBECONFIG ?? '').split(':').filter(Boolean))];
  return listed.length ? listed : [join(homeDir(env), '.kube', 'config')];
}

/**
 * The one file a context is merged into, as kind chooses it (and kubectl for entries it adds): the only path, else
 * the first that exists, else the last.
 */
export async function kubeconfigPathForMerge(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const paths = kubeconfigPaths(explicit, env);
  for (const p of paths) if (await exists(p)) return p;
  return paths[paths.length - 1]!;
}

function discoveryRoot(env: NodeJS.ProcessEnv): string {
  return join(env.KUBECACHEDIR || join(homeDir(env), '.kube', 'cache'), 'discovery');
}

/**
 * kubectl's discovery cache directory for an API server: `$KUBECACHEDIR` (else `~/.kube/cache`) `/discovery/` plus
 * the server without its scheme, each character other than word characters, '/', '.', '(' and ')' replaced by '_'
 * (client-go's rule), e.g. `127.0.0.1_6443`.
 */
export function discoveryCacheDir(server: string, env: NodeJS.ProcessEnv = process.env): string {
  const host = server.replace('https://', '').replace('http://', '');
  return join(discoveryRoot(env), host.replace(/[^\w/.()]/g, '_'));
}

/**
 * Deletes kubectl's cached discovery for `server`. kubectl trusts that cache for 6 hours, so a new cluster on the
 * same address would otherwise be asked for the resources of the previous one. The `http/` cache beside it is left:
 * its entries are revalidated with the server by ETag on every use.
 */
export async function clearDiscoveryCache(server: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const dir = discoveryCacheDir(server, env);
  // A server such as `https://h/../..` keeps its dots and slashes; never delete outside the discovery directory.
  const within = relative(discoveryRoot(env), dir);
  if (!within || within.startsWith('..') || isAbsolute(within)) return;
  await rm(dir, { recursive: true, force: true });
}

type Entry = Record<string, unknown> & { name: string };

/** A cluster's own kubeconfig, checked: one context whose cluster and user entries carry its name. */
export interface ClusterKubeconfig {
  /** The context name, also the name of its cluster and user entries (`ambit-<cluster>`). */
  context: string;
  server: string;
  entries: { clusters: Entry; users: Entry; contexts: Entry };
}

/** Parses the kubeconfig the supervisor wrote; `source` names it in errors. */
export function parseClusterKubeconfig(text: string, source: string): ClusterKubeconfig {
  let config: unknown;
  try {
    config = parse(text);
  } catch (err) {
    throw new Error(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const bad = (why: string) => new Error(`${source}: not a usable cluster kubeconfig: ${why}`);
  if (!isRecord(config)) throw bad('not a mapping');
  const name = config['current-context'];
  if (typeof name !== 'string' || !name) throw bad('no current-context');
  const find = (key: string): Entry => {
    const list = config[key];
    const entry = Array.isArray(list) ? list.find((e): e is Entry => isRecord(e) && e.name === name) : undefined;
    if (!entry) throw bad(`no entry "${name}" in ${key} (the context, its cluster and its user share one name)`);
    return entry;
  };
  const contexts = find('contexts');
  const context = contexts.context;
  if (!isRecord(context) || context.cluster !== name || context.user !== name) {
    throw bad(`context "${name}" must name cluster "${name}" and user "${name}"`);
  }
  const clusters = find('clusters');
  const server = isRecord(clusters.cluster) ? clusters.cluster.server : undefined;
  if (typeof server !== 'string' || !server) throw bad(`cluster "${name}" has no server`);
  return { context: name, server, entries: { clusters, users: find('users'), contexts } };
}

/**
 * Adds the cluster's entries to the kubeconfig at `path`, replacing entries of the same names and appending to the
 * others, and makes its context current. The file is created (with its directory) when missing, and written whole
 * with mode 0600 under the `<path>.lock` that kubectl and kind also take. Returns the context's name.
 */
export async function mergeContext(path: string, cluster: ClusterKubeconfig, options: KubeconfigOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  await makeDirectory(dirname(resolve(path)));
  await withLock(path, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, async () => {
    const { doc, at } = await load(path);
    if (!doc.has('apiVersion')) doc.set('apiVersion', 'v1');
    if (!doc.has('kind')) doc.set('kind', 'Config');
    for (const key of ['clusters', 'users', 'contexts'] as const) {
      const list = entryList(doc, key, path, at, true)!;
      // A hand-edited file may repeat a name; client-go would let the last one win, so leave only ours.
      const first = list.items.findIndex((item) => named(item, cluster.context));
      list.items = list.items.filter((item) => !named(item, cluster.context));
      list.items.splice(first < 0 ? list.items.length : first, 0, doc.createNode(cluster.entries[key]));
    }
    doc.set('current-context', cluster.context);
    await writeAtomically(path, serialize(doc));
  });
  await clearDiscoveryCache(cluster.server, env);
  return cluster.context;
}

/**
 * Removes the cluster's context, cluster and user entries from every file of `paths` that has them, and clears
 * `current-context` where it named that context, as kind does on delete. kubectl's discovery cache of each removed
 * cluster's server, and of `servers` (the cluster's own kubeconfig may know it when the user's file no longer does),
 * is deleted. Returns the files that changed; a file that fails does not stop the others, its error is thrown after.
 */
export async function removeContext(
  paths: string[],
  clusterName: string,
  options: KubeconfigOptions & { servers?: string[] } = {},
): Promise<string[]> {
  const env = options.env ?? process.env;
  const name = contextName(clusterName);
  const servers = new Set(options.servers);
  const changed: string[] = [];
  const errors: string[] = [];
  for (const path of paths) {
    // A file that does not exist holds nothing to remove, and gets no lock file (nor directory) made for it.
    if (!(await exists(path))) continue;
    try {
      await withLock(path, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, async () => {
        const { doc, at } = await load(path);
        let edited = false;
        for (const key of ['clusters', 'users', 'contexts'] as const) {
          const list = entryList(doc, key, path, at, false);
          if (!list) continue;
          const kept = list.items.filter((item) => {
            if (!named(item, name)) return true;
            const server = key === 'clusters' && isMap(item) ? item.getIn(['cluster', 'server']) : undefined;
            if (typeof server === 'string') servers.add(server);
            return false;
          });
          if (kept.length === list.items.length) continue;
          list.items = kept;
          edited = true;
        }
        if (doc.get('current-context') === name) {
          doc.set('current-context', '');
          edited = true;
        }
        if (!edited) return;
        await writeAtomically(path, serialize(doc));
        changed.push(path);
      });
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  for (const server of servers) await clearDiscoveryCache(server, env);
  if (errors.length) throw new Error(errors.join('\n'));
  return changed;
}

/** The file as a YAML document to edit in place; `at` gives a node's `file:line:col`. */
async function load(path: string): Promise<{ doc: Document; at: (node: Node) => string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    text = '';
  }
  const lines = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lines });
  const error = doc.errors[0];
  if (error) {
    const pos = error.linePos?.[0];
    // The yaml package appends " at line L, column C:" and a source excerpt; the position is given up front instead.
    const message = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:$/, '');
    throw new Error(`${path}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML (${message}); fix the file, kubectl cannot read it either (it was left unchanged)`);
  }
  const at = (node: Node) => {
    const pos = node.range ? lines.linePos(node.range[0]) : undefined;
    return pos ? `${path}:${pos.line}:${pos.col}` : path;
  };
  // kubectl reads an empty file (or one of comments only) as an empty kubeconfig.
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) doc.contents = doc.createNode({});
  if (!isMap(doc.contents)) throw new Error(`${at(doc.contents)}: not a kubeconfig (the top level is not a mapping); it was left unchanged`);
  return { doc, at };
}

// kubectl's layout (sequences not indented under their key), which most kubeconfigs have since kubectl wrote them;
// no line folding, so long values stay on one line.
function serialize(doc: Document): string {
  return doc.toString({ indentSeq: false, lineWidth: 0 });
}

/** The `clusters`, `users` or `contexts` list; created when missing or null (as kubectl writes an empty one) if asked. */
function entryList(doc: Document, key: string, path: string, at: (node: Node) => string, create: boolean): YAMLSeq | undefined {
  const node = doc.get(key, true) as Node | undefined;
  if (node === undefined || (isScalar(node) && node.value === null)) {
    if (!create) return undefined;
    const list = doc.createNode([]);
    doc.set(key, list);
    return list;
  }
  if (!isSeq(node)) throw new Error(`${at(node)}: "${key}" is not a list; ${path} was left unchanged`);
  return node;
}

function named(item: unknown, name: string): boolean {
  return isMap(item) && item.get('name') === name;
}

/**
 * Waits for `<path>.lock`, created with O_EXCL as kubectl and kind do, so none of them rewrites the file from a
 * stale read; runs `fn` holding it.
 */
async function withLock<T>(path: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await (await open(lock, 'wx', 0o600)).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() >= deadline) {
        throw new Error(
          `cannot write ${path}: it is locked by ${lock} (another kubectl, kind or ambit writing it) and stayed locked for ` +
            `${timeoutMs / 1000}s; if no such command is running, remove ${lock} and try again`,
        );
      }
      await new Promise((r) => setTimeout(r, LOCK_RETRY_MS));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/**
 * Replaces the file by renaming a complete new one over it, so a reader never sees half a kubeconfig. A symlinked
 * kubeconfig stays a symlink: its target is replaced.
 */
async function writeAtomically(path: string, text: string): Promise<void> {
  const target = await realpath(path).catch(() => path);
  const owner = await ownerFor(target);
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(temp, 'wx', 0o600);
  try {
    await file.writeFile(text);
    // The mode given to open() is narrowed by the umask; the file holds a client key, so exactly 0600.
    await file.chmod(0o600);
    if (owner) await file.chown(owner.uid, owner.gid);
    await file.sync();
    await file.close();
    await rename(temp, target);
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Root (`sudo -E ambit up` keeps the user's HOME) must not leave the user a kubeconfig only root can read: the
 * rewritten file keeps its owner, and a new one gets its directory's. Other users cannot give files away, and need not.
 */
async function ownerFor(file: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const st = await stat(file).catch(() => stat(dirname(file)));
  return { uid: st.uid, gid: st.gid };
}

/** mkdir -p (0755, as kubectl makes ~/.kube); as root, what it creates belongs to the owner of the first parent that existed. */
async function makeDirectory(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o755 });
  if (first === undefined || process.getuid?.() !== 0) return;
  const { uid, gid } = await stat(dirname(first));
  for (let d = dir; d.length >= first.length; d = dirname(d)) await chown(d, uid, gid);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
