// Keeps the config store in step with files and directories on disk, the way istiod follows the Kubernetes API:
// edits are applied as they are saved (debounced, since editors write in several steps), only what changed reaches
// the store, and a bad edit never takes a working object away. If a file stops yielding an object because of an
// error, the last good version of that object stays in force until the file is fixed; a deleted file or a document
// removed from a valid file does remove its objects.
import { existsSync, readdirSync, realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { displayName, resourceKey, type Resource } from '../api/types.js';
import { formatIssue, loadPaths } from '../config/loader.js';
import type { ConfigStore } from '../model/store.js';
import type { Logger } from './log.js';

interface Known {
  resource: Resource;
  file: string;
}

export interface ReloadReport {
  added: number;
  updated: number;
  removed: number;
  /** Objects kept at their last good version because their file or document now has errors. */
  kept: string[];
  errors: number;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** `dir` and every directory below it, following symlinks as the loader does (each real directory once). */
function directoriesUnder(dir: string, seen = new Set<string>()): string[] {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return [];
  }
  if (seen.has(real)) return [];
  seen.add(real);
  const out = [dir];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    if (isDirectory(p)) out.push(...directoriesUnder(p, seen));
  }
  return out;
}

export class ConfigWatcher {
  private current = new Map<string, Known>();
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  /** Issues printed by the previous reload: each is printed once, not again on every unrelated save. */
  private printed = new Set<string>();
  private closed = false;

  constructor(
    private readonly paths: string[],
    private readonly store: ConfigStore,
    private readonly log: Logger,
    private readonly debounceMs = 200,
    /** Called after every reload that changed the store (tests wait on it). */
    private readonly onReload?: (r: ReloadReport) => void,
  ) {}

  /** Loads everything once, then follows changes. */
  async start(): Promise<ReloadReport> {
    const report = await this.reload();
    this.syncWatches();
    return report;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /**
   * Watches every directory that holds a configured path or lies under a configured directory, without inotify's
   * recursive emulation (which loses files replaced by rename on Linux). Called after each reload, so directories
   * created since are picked up and vanished ones dropped.
   */
  private syncWatches(): void {
    const wanted = new Set<string>();
    for (const p of this.paths.map((x) => resolve(x))) {
      if (isDirectory(p)) for (const d of directoriesUnder(p)) wanted.add(d);
      // A file, or a path not there yet, is watched through its directory, which also sees editors' rename-saves.
      else wanted.add(dirname(p));
    }
    for (const [dir, w] of this.watchers) {
      if (!wanted.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of wanted) {
      if (this.watchers.has(dir) || !isDirectory(dir)) continue;
      try {
        const w = watch(dir, () => this.schedule());
        w.on('error', (e) => {
          this.log.warn(`stopped watching ${dir}: ${e.message}`);
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch (e) {
        this.log.warn(`cannot watch ${dir} for configuration changes: ${(e as Error).message}`);
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.runReload(), this.debounceMs);
  }

  private async runReload(): Promise<void> {
    // One reload at a time; saves during a reload trigger exactly one more.
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.reload()
      .then((r) => {
        if (!this.closed) this.syncWatches();
        if (r.added || r.updated || r.removed || r.errors) this.onReload?.(r);
      })
      .catch((e: unknown) => this.log.error(`reload failed: ${(e as Error).stack ?? e}`));
    await this.running;
    this.running = undefined;
    if (this.again && !this.closed) {
      this.again = false;
      await this.runReload();
    }
  }

  /** Reads all paths and applies the difference to the store. */
  async reload(): Promise<ReloadReport> {
    // Files stand in for a cluster: an object with an unknown field is refused as kube-apiserver refuses it, while
    // kinds no cluster of the mesh serves are skipped with a warning, as istiod ignores kinds it does not watch.
    const { objects, issues } = await loadPaths(this.paths, undefined, { unknownKinds: 'warning' });
    const printed = new Set<string>();
    for (const issue of issues) {
      const line = formatIssue(issue);
      printed.add(line);
      if (this.printed.has(line)) continue;
      if (issue.severity === 'error') this.log.error(line);
      else this.log.warn(line);
    }
    this.printed = printed;

    const next = new Map<string, Known>();
    for (const o of objects) next.set(resourceKey(o.resource), { resource: o.resource, file: o.location.file });

    // An error that names its object hides only that object; one that does not (YAML syntax) may hide any object of
    // its file.
    const errors = issues.filter((i) => i.severity === 'error');
    const brokenObjects = new Set(errors.flatMap((i) => (i.object ? [i.object] : [])));
    const brokenFiles = new Set(errors.flatMap((i) => (i.object ? [] : [i.location.file])));
    const kept: string[] = [];
    for (const [key, old] of this.current) {
      if (next.has(key) || !existsSync(old.file)) continue;
      if (brokenFiles.has(old.file) || brokenObjects.has(displayName(old.resource))) {
        next.set(key, old);
        kept.push(displayName(old.resource));
      }
    }

    const removedKeys = [...this.current.keys()].filter((k) => !next.has(k));
    this.current = next;
    const applied = this.store.apply([...next.values()].map((k) => k.resource));
    const removed = this.store.remove(removedKeys);
    const report = { added: applied.added.length, updated: applied.updated.length, removed: removed.removed.length, kept, errors: errors.length };
    if (report.added || report.updated || report.removed || kept.length) {
      this.log.info(
        `applied ${report.added} added, ${report.updated} updated, ${report.removed} removed` +
          (kept.length ? `; kept last good version of ${kept.join(', ')} until its errors are fixed` : ''),
      );
    }
    return report;
  }
}
